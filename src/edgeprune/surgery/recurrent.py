"""Recurrent layers torch-pruning has no rule for (``nn.GRU``, ``nn.RNN``; it has one for ``nn.LSTM``).

On CPU a GRU runs as matmuls, splits and gates that torch-pruning traces one by one, and its index mapping of the
gate splits fails (an index out of range): structured pruning refused the whole model. Here the layer is one opaque
operation while torch-pruning traces (:func:`opaque`) and has a rule of its own: the input width of its first layer
follows the layer before it (the columns of ``weight_ih_l0``), as torch-pruning does for an LSTM; its hidden width
stays (no plan names it).
"""

from __future__ import annotations

from contextlib import contextmanager
from functools import cache

import torch
from torch import nn

from edgeprune.surgery.lazy import tp

RULELESS = (nn.GRU, nn.RNN)


@cache
def recurrent_pruners() -> dict:
    """torch-pruning's ``customized_pruners`` for the recurrent layers it has no rule for."""

    class RecurrentInputs(tp.pruner.function.BasePruningFunc):
        def prune_out_channels(self, layer: nn.RNNBase, idxs: list):
            raise NotImplementedError(f"the hidden width of {type(layer).__name__} is kept")

        def prune_in_channels(self, layer: nn.RNNBase, idxs: list) -> nn.Module:
            keep = sorted(set(range(layer.input_size)) - set(idxs))
            for suffix in ("", "_reverse") if layer.bidirectional else ("",):
                name = f"weight_ih_l0{suffix}"  # RNNBase.__setattr__ keeps its flat weights in step
                setattr(layer, name, self._prune_parameter_and_grad(getattr(layer, name), keep, 1))
            layer.input_size = len(keep)
            return layer

        def get_out_channels(self, layer: nn.RNNBase) -> int:
            return layer.hidden_size * (2 if layer.bidirectional else 1)

        def get_in_channels(self, layer: nn.RNNBase) -> int:
            return layer.input_size

    rule = RecurrentInputs()
    return {kind: rule for kind in RULELESS}


class _Opaque(torch.autograd.Function):
    """A recurrent layer's forward as one node of the autograd graph (for the trace only: no gradient flows)."""

    @staticmethod
    def forward(ctx, x, run):
        with torch.no_grad():
            out, hidden = run(x)
        return out, hidden

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError("a recurrent layer made opaque for torch-pruning's trace has no gradient")


@contextmanager
def opaque(model: nn.Module):
    """While torch-pruning traces ``model``: each GRU and RNN runs as one operation from its input to its output."""
    layers = [m for m in model.modules() if isinstance(m, RULELESS)]
    for layer in layers:
        layer.forward = lambda x, hx=None, layer=layer: _Opaque.apply(x, lambda v: type(layer).forward(layer, v, hx))
    try:
        yield
    finally:
        for layer in layers:
            del layer.forward

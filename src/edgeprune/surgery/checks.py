"""Whether a model still works after surgery: it runs, its output keeps its shape, and where it fails.

A coupling torch-pruning cannot see (a reshape by a head count, a width kept in an attribute) leaves a model
that fails at its next forward or whose output changed shape. Every removal here is checked with
:func:`check_still_runs` (raises) or :func:`failure` (one line, or None) before the model is returned;
:func:`failing_module` names the innermost module a failure came from, which the retries then keep whole.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from edgeprune.errors import ModelError
from edgeprune.surgery.graph import dense_forward
from edgeprune.surgery.groups import one_line
from edgeprune.tasks import output_tensors


def shapes(output) -> tuple | None:
    """The shapes of every output tensor (a segmentation model's ``out`` and ``aux``, a detector's heads), None
    for an output without one."""
    return tuple(tuple(t.shape) for t in output_tensors(output)) or None


@torch.no_grad()
def _forward(model: nn.Module, example: torch.Tensor):
    """``model``'s deployable forward on ``example`` in eval mode (its train/eval mode restored)."""
    was_training = model.training
    model.eval()
    try:
        return dense_forward(model, example)
    finally:
        model.train(was_training)


def output_shape(model: nn.Module, example: torch.Tensor) -> tuple | None:
    """Shapes of ``model``'s output tensors on one example (None: an output without tensors, or a forward that
    fails)."""
    try:
        return shapes(_forward(model, example[:1]))
    except Exception:  # noqa: BLE001  (the model's own problem: the trace or the first attempt reports it)
        return None


class ForwardFailed(ModelError):
    """The pruned model fails in its forward; ``module``: the innermost of its modules that raised (None: the
    model's own forward, or no module on the traceback)."""

    def __init__(self, what: str, exc: Exception, module: str | None):
        self.cause = one_line(exc)
        self.module = module or None
        self.why = (f"the pruned model fails in their forward ({self.cause}), a split or reshape by a width or head count "
                    "torch-pruning cannot see")
        super().__init__(f"structured pruning of {what} is not supported: the pruned model fails ({self.cause}), a "
                         "coupling torch-pruning cannot see (e.g. a reshape by the head count)")


def failing_module(model: nn.Module, exc: Exception) -> str | None:
    """Name of the innermost submodule of ``model`` whose code is on ``exc``'s traceback."""
    names = {id(m): n for n, m in model.named_modules()}
    found, tb = None, exc.__traceback__
    while tb is not None:
        owner = tb.tb_frame.f_locals.get("self")
        if isinstance(owner, nn.Module) and id(owner) in names:
            found = names[id(owner)]
        tb = tb.tb_next
    return found


def check_still_runs(model: nn.Module, example: torch.Tensor, what: str, shape: tuple | None = None) -> None:
    """A ModelError (:class:`ForwardFailed` naming the failing module) unless ``model`` runs on one example and,
    when ``shape`` is given, its output keeps those shapes: refused here, in one line, instead of returned broken."""
    try:
        out = _forward(model, example[:1])
    except Exception as exc:  # noqa: BLE001  (any failure of the user's forward means the same thing here)
        raise ForwardFailed(what, exc, failing_module(model, exc)) from None
    got = shapes(out) if shape is not None else None
    if got != shape:
        raise ModelError(f"structured pruning of {what} is not supported: the pruned model's output has shape "
                         f"{_shape_text(got)}, not {_shape_text(shape)}")


def failure(model: nn.Module, example: torch.Tensor) -> str | None:
    """None if ``model`` runs on ``example`` (eval mode), else its error in one line."""
    try:
        _forward(model, example)
        return None
    except Exception as exc:  # noqa: BLE001  (any failure of the pruned model is what we look for)
        return one_line(exc, 200)


def _shape_text(found: tuple | None) -> str:
    return str(found[0]) if found and len(found) == 1 else str(list(found or []))


def twin(model: nn.Module) -> nn.Module:
    """A deep copy of ``model``, made in train mode: that drops caches a forward built with gradients (HF LeViT's
    attention biases, after a trace), which cannot be deep-copied. Every module keeps its own train/eval mode."""
    modes = [m.training for m in model.modules()]
    model.train()
    try:
        copied = copy.deepcopy(model)
    finally:
        for m, training in zip(model.modules(), modes):
            m.training = training
    for m, training in zip(copied.modules(), modes):
        m.training = training
    return copied

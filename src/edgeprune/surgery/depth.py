"""Removing whole residual blocks (depth pruning): the blocks a model can lose, and losing them.

Channel removal leaves every operator in the graph, and at batch 1 a runtime pays a fixed cost per operator
(ONNX Runtime on a small ViT: about a third of the dense latency), so narrower layers save less time than MACs.
Removing a block removes its operators too. A removable block is a module that sits in a ``nn.Sequential`` or
``nn.ModuleList`` (the stages of ResNets, ConvNeXts and every ViT), holds a conv or linear layer, is called
exactly once with one tensor, returns a tensor of the same shape, and is residual with an identity shortcut:
with every parameter of a copy set to zero its branch adds nothing, and it returns its input. (A plain
shape-preserving layer, such as MobileNet's depthwise conv, returns zeros then and is not removable.) Of nested
removable blocks (a ConvNeXt stage without downsampling and its blocks) the innermost are kept. A removed block
is replaced by ``nn.Identity``, so the stream passes through unchanged. Which blocks go first is the scores' job
(:func:`edgeprune.scores.blocks.block_influence`).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from edgeprune.errors import ConfigError
from edgeprune.surgery.graph import ROOT_TYPES

CONTAINERS = (nn.Sequential, nn.ModuleList)


def _members(model: nn.Module) -> dict[str, nn.Module]:
    """Direct children of sequential containers that are blocks (hold a conv/linear), not single layers."""
    out = {}
    for name, container in model.named_modules():
        if not isinstance(container, CONTAINERS):
            continue
        for child_name, child in container.named_children():
            if isinstance(child, ROOT_TYPES) or not any(isinstance(m, ROOT_TYPES) for m in child.modules()):
                continue
            out[f"{name}.{child_name}" if name else child_name] = child
    return out


@torch.no_grad()
def removable_blocks(model: nn.Module, example: torch.Tensor) -> list[str]:
    """Names of the blocks of ``model`` that ``nn.Identity`` can replace (shape-preserving, called once with one
    tensor, residual), in module order."""
    members = _members(model)
    calls: dict[str, list] = {name: [] for name in members}  # per call: its input if shape-preserving, else None

    def hook(name):
        def record(module, args, kwargs, output):
            same = (len(args) == 1 and not kwargs and isinstance(args[0], torch.Tensor)
                    and isinstance(output, torch.Tensor) and output.shape == args[0].shape)
            calls[name].append(args[0] if same else None)
        return record

    _run_eval(model, example, [m.register_forward_hook(hook(n), with_kwargs=True) for n, m in members.items()])
    found = [n for n, inputs in calls.items()
             if len(inputs) == 1 and inputs[0] is not None and _residual(members[n], inputs[0])]
    return [n for n in found if not any(other.startswith(n + ".") for other in found)]


def _run_eval(model: nn.Module, example: torch.Tensor, handles: list) -> None:
    """One forward of ``model`` in eval mode with the hooks ``handles``, removed afterwards."""
    was_training = model.training
    try:
        model.eval()
        model(example)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()


def _residual(block: nn.Module, x: torch.Tensor) -> bool:
    """Does ``block`` return its input once all its parameters are zero (an identity shortcut around a branch)?

    Probed on positive values in (0.1, 1) of the input's shape, which a ReLU after the addition (ResNet) keeps
    and a zeroed plain layer does not return (a recorded input may be all zeros after a dead ReLU)."""
    probe = copy.deepcopy(block).eval()  # a model passed in train mode: batch norm on one 1x1 input refuses to run
    for param in probe.parameters():
        param.zero_()
    values = 0.1 + 0.9 * torch.rand(x.shape, generator=torch.Generator().manual_seed(0), dtype=x.dtype)
    return bool(torch.allclose(probe(values), values, atol=1e-6))


def drop_blocks(model: nn.Module, names: list[str]) -> nn.Module:
    """Replace the blocks ``names`` of ``model`` by ``nn.Identity`` (in place); returns ``model``."""
    modules = dict(model.named_modules())
    for name in names:
        if name not in modules:
            raise ConfigError(f"block {name!r} is not a module of {type(model).__name__}")
        model.set_submodule(name, nn.Identity())
    return model


@torch.no_grad()
def downstream(model: nn.Module, dropped: list[str], example: torch.Tensor) -> list[str]:
    """The conv and linear layers of ``model`` (its blocks ``dropped`` already replaced) that run after the first of
    them, in call order: the layers whose inputs the removal changed."""
    if not dropped:
        return []
    watched = {n: m for n, m in model.named_modules() if n in dropped or isinstance(m, ROOT_TYPES)}
    order: list[str] = []
    _run_eval(model, example, [m.register_forward_hook(lambda mod, args, out, n=n: order.append(n))
                               for n, m in watched.items()])
    first = min((order.index(n) for n in dropped if n in order), default=len(order))
    return list(dict.fromkeys(n for n in order[first + 1:] if n not in dropped))


__all__ = ["removable_blocks", "drop_blocks", "downstream"]

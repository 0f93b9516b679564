"""Where structured pruning works when torch-pruning cannot trace a model as a whole: inside its blocks.

ShuffleNet's channel shuffle (a 5-d view whose index mapping divides by zero), Swin's shifted windows (a
dependency search that does not terminate), CSPNet's and DPN's concatenations torch-pruning cannot size: the
model fails, yet its blocks trace alone -- ShuffleNet's branches, Swin's MLPs, DPN's blocks. :func:`find`
walks the module tree from the top and keeps the largest submodules that trace alone on the input they receive
in the model's forward. Structured pruning then removes channels inside each block with the block's input and
output widths kept (torch-pruning protects the layers producing a block's output), so the model around the
blocks never sees a width change.
"""

from __future__ import annotations

import re
import time
from typing import Callable, TypeVar

import torch
from torch import nn

from edgeprune.errors import ModelError
from edgeprune.surgery.graph import ROOT_TYPES, dense_forward
from edgeprune.surgery.search import SEARCH_SECONDS  # also the budget of the whole trace and the block search

T = TypeVar("T")


def _has_layers(module: nn.Module) -> bool:
    return any(isinstance(m, ROOT_TYPES) for m in module.modules())


@torch.no_grad()
def recorded_inputs(model: nn.Module, example: torch.Tensor) -> dict[str, torch.Tensor]:
    """Module name -> the input it received in one forward of ``model`` on ``example``, for the submodules
    holding a Conv/Linear that are called exactly once with one positional tensor (a block that runs twice or
    takes more arguments cannot be traced alone on one example)."""
    calls: dict[str, list] = {}

    def hook(name):
        def record(module, args, kwargs):
            one = len(args) == 1 and not kwargs and isinstance(args[0], torch.Tensor)
            calls.setdefault(name, []).append(args[0].detach().clone() if one else None)
        return record

    handles = [m.register_forward_pre_hook(hook(n), with_kwargs=True) for n, m in model.named_modules()
               if n and not isinstance(m, ROOT_TYPES) and _has_layers(m)]
    modes = [m.training for m in model.modules()]
    model.eval()
    try:
        dense_forward(model, example)
    finally:
        for h in handles:
            h.remove()
        for m, training in zip(model.modules(), modes):
            m.training = training
    return {n: c[0] for n, c in calls.items() if len(c) == 1 and c[0] is not None}


def find(model: nn.Module, example: torch.Tensor, trace: Callable[[nn.Module, torch.Tensor], T],
         seconds: float = SEARCH_SECONDS) -> tuple[dict[str, tuple[torch.Tensor, T]], bool]:
    """The largest submodules of ``model`` that ``trace(block, its input)`` accepts (it raises ModelError on the
    others, whose children are tried next): ``({block name: (its recorded input, what trace returned)},
    complete)``; the search stops after ``seconds`` of CPU time (``complete`` False: later blocks not tried). A class
    (other than ``nn.Sequential``) that failed to trace once is not traced again: its instances' children are tried."""
    inputs = recorded_inputs(model, example)
    found: dict[str, tuple[torch.Tensor, T]] = {}
    failed: set[type] = {type(model)}
    stop = time.process_time() + seconds

    def visit(module: nn.Module, prefix: str) -> bool:
        for child, sub in module.named_children():
            if time.process_time() > stop:
                return False
            name = f"{prefix}.{child}" if prefix else child
            if isinstance(sub, ROOT_TYPES) or not _has_layers(sub):
                continue
            if name in inputs and type(sub) not in failed:  # (a class that failed once fails again: Swin's blocks)
                try:
                    found[name] = (inputs[name], trace(sub, inputs[name]))
                    continue
                except ModelError:
                    if not isinstance(sub, nn.Sequential):  # a container's outcome depends on what it holds
                        failed.add(type(sub))
            if not visit(sub, name):
                return False
        return True

    complete = visit(model, "")
    return found, complete


def whole_or_blocks(model: nn.Module, example: torch.Tensor, trace: Callable[[nn.Module, torch.Tensor], T]
                    ) -> tuple[dict[str, tuple[torch.Tensor, T]], str]:
    """``({"": (example, trace(model, example))}, "")`` when the whole model traces; else the blocks of
    :func:`find` and a one-line note saying so and why. ``trace`` returns (graph, channel groups); when no block
    has a group that may lose channels, the whole model's ModelError is raised again."""
    started = time.process_time()
    try:
        return {"": (example, trace(model, example))}, ""
    except ModelError as exc:
        left = SEARCH_SECONDS - (time.process_time() - started)
        if left <= 0:  # a model whose failed trace alone took that long (MaxViT at 224 px) is refused as it was
            raise
        parts, complete = find(model, example, trace, left)
        if not any(not g.protected for _, (_, groups) in parts.values() for g in groups):
            raise
        reason = re.sub(r"; [^;]* cannot prune this model$", "", str(exc))
        stopped = "" if complete else f", the search for blocks stopped at {SEARCH_SECONDS:g} s of CPU time"
        return parts, (f"pruned inside {len(parts)} blocks that trace alone, their input and output widths kept "
                       f"({reason}{stopped})")


def adopt(module: nn.Module, source: nn.Module) -> None:
    """``module`` takes ``source``'s submodules, parameters and attributes (its parent and callers keep the
    object, and see the result in place)."""
    module.__dict__.clear()
    module.__dict__.update(source.__dict__)


__all__ = ["adopt", "find", "recorded_inputs", "whole_or_blocks"]

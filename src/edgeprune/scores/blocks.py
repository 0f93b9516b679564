"""How much each residual block changes the stream: Block Influence (Men et al., ShortGPT, 2024).

``BI = 1 - cos(input, output)`` per example (the block's input and output flattened), averaged over the
calibration batches. A block whose output points where its input did adds little; removing it (replacing it
by the identity) changes the model least. Low influence = removed first.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from edgeprune.scores.weights import Batch


@torch.no_grad()
def block_influence(model: nn.Module, names: Sequence[str], batches: Sequence[Batch]) -> dict[str, float]:
    """Block name -> mean ``1 - cos(input, output)`` over the examples of ``batches`` (eval mode)."""
    modules = dict(model.named_modules())
    totals = {name: 0.0 for name in names}
    count = 0

    def hook(name):
        def record(module, args, output):
            before, after = args[0].flatten(1).double(), output.flatten(1).double()
            totals[name] += float((1.0 - nn.functional.cosine_similarity(before, after, dim=1)).sum())
        return record

    handles = [modules[n].register_forward_hook(hook(n)) for n in names]
    was_training = model.training
    try:
        model.eval()
        for x, _ in batches:
            model(x)
            count += len(x)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return {name: total / max(count, 1) for name, total in totals.items()}


__all__ = ["block_influence"]

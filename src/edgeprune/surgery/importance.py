"""Channel importance of a torch-pruning group from per-weight scores (the structured method's criteria).

Per channel, the sum of a per-weight score over every Conv/Linear weight the channel owns in the group (its
filter, and the input slices of its consumers), averaged over those layers. Magnitude uses ``w**2``
and counts a batch norm's ``gamma**2`` as one more layer (torch-pruning's group L2: a convolution followed by batch
norm is scale-free, its channel's output scale is ``gamma``), gradient the mean ``|dL/dw|`` over calibration batches,
product ``|w| * mean |dL/dw|`` (first-order Taylor).
"""

from __future__ import annotations

import torch
from torch import nn

from edgeprune.surgery.lazy import tp

_LAYERS = (nn.modules.conv._ConvNd, nn.Linear)
_NORMS = nn.modules.batchnorm._BatchNorm


class ScoreImportance:  # a torch-pruning importance: any callable group -> scores
    """Channel importance of a Torch-Pruning group from per-weight scores (see the module docstring).

    ``scores`` maps a module of the model being pruned to its score tensor (shape of its unpruned weight);
    a module without a score uses ``weight**2`` (magnitude; without any scores, batch norms count too). A group whose indices torch-pruning mapped out of a
    layer's range (a channel split or chunk it cannot follow: FasterNet's partial conv, a GLU MLP; an F.conv2d on a bare parameter) gets no
    importance, so it keeps every channel; its first layer's name (``names``: module -> name) goes to ``unmapped``.
    """

    def __init__(self, scores: dict[nn.Module, torch.Tensor] | None = None, names: dict[nn.Module, str] | None = None):
        self.scores = scores or {}
        self.names = names or {}
        self.unmapped: list[str] = []

    def _score(self, layer: nn.Module) -> torch.Tensor:
        score = self.scores.get(layer)
        if score is None or score.shape != layer.weight.shape:
            return layer.weight.detach().float().square()
        return score.to(layer.weight.device, torch.float32)

    def _per_channel(self, layer: nn.Module, fn) -> torch.Tensor | None:
        """``layer``'s score summed per channel that ``fn`` prunes (None: the layer does not count)."""
        if isinstance(layer, _NORMS):
            magnitude = not self.scores and layer.affine and fn == tp.prune_batchnorm_out_channels
            return layer.weight.detach().float().square() if magnitude else None
        if not isinstance(layer, _LAYERS):
            return None
        s = self._score(layer)
        transposed = getattr(layer, "transposed", False)
        if fn in (tp.prune_conv_out_channels, tp.prune_linear_out_channels):
            return (s.transpose(0, 1) if transposed else s).flatten(1).sum(1)
        if fn in (tp.prune_conv_in_channels, tp.prune_linear_in_channels):
            per = (s if transposed else s.transpose(0, 1)).flatten(1).sum(1)
            if fn == tp.prune_conv_in_channels and layer.groups not in (1, layer.in_channels):
                per = per.repeat(layer.groups)
            return per
        return None

    @torch.no_grad()
    def __call__(self, group) -> torch.Tensor | None:
        parts, where = [], []
        for i, (dep, idxs) in enumerate(group):
            if any(r is None for r in group[i].root_idxs):
                continue
            per = self._per_channel(dep.layer, dep.pruning_fn)
            if per is None:
                continue
            if any(not 0 <= int(j) < len(per) for j in idxs):
                self.unmapped.append(self.names.get(group[0].dep.target.module, "?"))
                return None
            parts.append(per[idxs])
            where.append(group[i].root_idxs)
        if not parts:
            return None
        total = torch.zeros(len(group[0].idxs), dtype=torch.float32)
        for per, idx in zip(parts, where):
            total.scatter_add_(0, torch.tensor(idx), per.cpu())
        return total / len(parts)

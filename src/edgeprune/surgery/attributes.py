"""Shape attributes that follow their module's pruned parameters.

torch-pruning prunes a module's bare parameters with the channels they scale (a layer scale, a bias of one's own), but
not the shapes the module keeps to use them: timm's MetaFormer ``Scale`` multiplies by ``self.scale.view(self.shape)``
with ``shape = (dim, 1, 1)``, which fails once ``dim`` shrank, and structured pruning then kept every block of
PoolFormer whole. :func:`widths_followed` updates such a tuple attribute wherever the parameter's width changed.
"""

from __future__ import annotations

import contextlib

from torch import nn

_LIBRARY = (nn.modules.conv._ConvNd, nn.Linear, nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm,
            nn.MultiheadAttention, nn.RNNBase, nn.Embedding)


def _widths(model: nn.Module) -> dict[nn.Module, dict[str, int]]:
    """Module (not one of torch's own layers) -> {1-d parameter's name: its length}."""
    return {m: {n: p.shape[0] for n, p in m.named_parameters(recurse=False) if p.dim() == 1}
            for m in model.modules() if not isinstance(m, _LIBRARY) and any(True for _ in m.parameters(recurse=False))}


@contextlib.contextmanager
def widths_followed(model: nn.Module):
    """Inside, prune ``model``; afterwards, in every module whose 1-d parameter changed length from ``old`` to ``new``,
    each tuple attribute holding ``old`` exactly once holds ``new`` there instead."""
    before = _widths(model)
    yield
    for module, widths in before.items():
        for name, old in widths.items():
            new = getattr(module, name).shape[0]
            if new == old:
                continue
            for attr, value in vars(module).items():
                if isinstance(value, tuple) and not attr.startswith("_") and value.count(old) == 1:
                    setattr(module, attr, tuple(new if v == old else v for v in value))


__all__ = ["widths_followed"]

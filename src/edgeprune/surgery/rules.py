"""torch-pruning's rules for the layers it has none for (its ``customized_pruners``).

- Recurrent layers: :mod:`~edgeprune.surgery.recurrent`.
- Fixed per-channel filters. timm's anti-aliasing ``BlurPool2d`` (TResNet, ResNet-blur, DenseNet-blur) blurs each
  channel with a filter it keeps as a buffer, ``F.conv2d(x, self.filt, groups=self.channels)``. torch-pruning sees
  no weight there, so the channels before it were cut and the filter was not. Every pruned copy failed in its
  forward, and structured pruning kept those layers whole: TResNet-L was refused, 3 % of its channels reachable.
  The rule cuts the filter's rows with the channels; a blur built without a channel count expands its one filter
  to the input and needs nothing.
"""

from __future__ import annotations

from functools import cache

from torch import nn

from edgeprune.surgery.lazy import tp
from edgeprune.surgery.recurrent import recurrent_pruners


def _blur_pool_types() -> tuple[type, ...]:
    try:
        from timm.layers import BlurPool2d  # noqa: PLC0415  (optional: the timm extra)
    except ImportError:
        return ()
    return (BlurPool2d,)


@cache
def customized_pruners() -> dict:
    """Layer type -> its torch-pruning rule, for every layer type torch-pruning has no rule for and we have one."""

    class ChannelFilter(tp.pruner.function.BasePruningFunc):
        """A depthwise filter held as a buffer ``filt`` of one row per channel (``channels``)."""

        def prune_out_channels(self, layer: nn.Module, idxs: list) -> nn.Module:
            if layer.channels is not None:
                keep = sorted(set(range(layer.channels)) - set(idxs))
                layer.filt = layer.filt[keep]  # (a registered buffer: it stays one)
                layer.channels = len(keep)
            return layer

        prune_in_channels = prune_out_channels  # each channel is blurred alone: in and out are one

        def get_out_channels(self, layer: nn.Module) -> int | None:
            return layer.channels

        get_in_channels = get_out_channels

    rule = ChannelFilter()
    return {**recurrent_pruners(), **{kind: rule for kind in _blur_pool_types()}}


__all__ = ["customized_pruners"]

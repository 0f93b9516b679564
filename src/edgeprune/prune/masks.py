"""Unstructured pruning masks: {parameter name: bool tensor of the parameter's shape}.

A mask entry is True where the weight is kept. Masks are built from per-weight scores (higher = kept) by
exact top-k: :class:`MaskBuilder` (one criterion's scores, many masks), :func:`layerwise_masks` (floor(s·n) pruned per
layer) and :func:`global_masks` (round(p·N) pruned under one threshold). Masks stay exact during training because the training loop
zeroes the gradients of pruned weights before the optimizer step and re-applies the masks after it
(momentum and Adam's moments could otherwise move a pruned weight off zero).
"""

from __future__ import annotations

import math
import tempfile
from typing import Iterable

import numpy as np
import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from edgeprune.errors import ConfigError
from edgeprune.measure import prunable_weights

Masks = dict[str, torch.Tensor]

SPILL_BYTES = 1 << 30  # a builder's scores above this live in an unlinked temporary file the OS pages in (below)


def _params(model: nn.Module, masks: Masks):
    params = dict(model.named_parameters())
    for name, mask in masks.items():
        if name not in params:
            raise KeyError(f"mask for unknown parameter {name!r}")
        yield params[name], mask


@torch.no_grad()
def apply_masks(model: nn.Module, masks: Masks) -> None:
    """Zero every pruned weight in place."""
    for param, mask in _params(model, masks):
        param.mul_(mask.to(device=param.device, dtype=param.dtype))


def mask_factors(model: nn.Module, masks: Masks, device) -> Masks:
    """The masks as 0/1 tensors of their weights' dtype on ``device``, for a training loop that masks twice a step:
    multiplying by a bool mask converts it on every call, four times slower than by a mask of the weights' dtype."""
    return {name: mask.to(device=device, dtype=param.dtype) for name, (param, mask) in zip(masks, _params(model, masks))}


@torch.no_grad()
def mask_gradients(model: nn.Module, masks: Masks) -> None:
    """Zero the gradients of pruned weights (call after backward, before optimizer.step)."""
    for param, mask in _params(model, masks):
        if param.grad is not None:
            param.grad.mul_(mask.to(device=param.device, dtype=param.grad.dtype))


# ---------------------------------------------------------------------------------------------------
# Building masks from scores
#
# Rule everywhere: the k weights with the LOWEST scores are pruned; among equal scores the lower flat index
# is pruned first (for global masks: the lower position in the concatenation of the layers in key order).
# ---------------------------------------------------------------------------------------------------


def _check_sparsity(name: str, value) -> float:
    try:
        s = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"sparsity of {name} must be a number in [0, 1), got {value!r}") from None
    if not 0.0 <= s < 1.0:  # also rejects NaN
        raise ConfigError(f"sparsity of {name} must be in [0, 1), got {value!r}")
    return s


def prune_lowest(flat: torch.Tensor, k: int) -> torch.Tensor:
    """Keep-mask of a 1-D score tensor with exactly its ``k`` lowest entries pruned (ties: lower index first).

    One ``kthvalue`` (linear time) instead of a sort, and no sorted copy kept: a sorted copy of every criterion's
    scores doubled their memory, a model's weights again per criterion.
    """
    n = flat.numel()
    keep = torch.ones(n, dtype=torch.bool, device=flat.device)
    if k <= 0:
        return keep
    if k >= n:
        return keep.zero_()
    threshold = torch.kthvalue(flat, k).values
    below = flat < threshold
    keep &= ~below
    ties_to_prune = k - int(below.sum())
    if ties_to_prune > 0:
        keep[torch.nonzero(flat == threshold).squeeze(1)[:ties_to_prune]] = False
    return keep


class MaskBuilder:
    """Exact masks from one criterion's scores, any number of them.

    ``layerwise(sparsities)`` prunes exactly ``floor(s * n)`` lowest-score weights in each layer;
    ``global_(sparsity)`` prunes exactly ``round(sparsity * N)`` over all (or the selected) layers with one
    threshold. Each mask costs a linear-time selection (:func:`prune_lowest`) per layer, or over the concatenated
    selected layers. Masks are bool tensors on the scores' device; layers that are not pruned get all-True masks.
    """

    def __init__(self, scores: dict[str, torch.Tensor]):
        if not scores:
            raise ConfigError("no scores given: the model has no prunable layer (Conv/Linear weight)")
        self.shapes: dict[str, torch.Size] = {}
        self._flat: dict[str, torch.Tensor] = {}
        for name, score in scores.items():
            if not isinstance(score, torch.Tensor):
                raise ConfigError(f"score of {name} must be a tensor, got {type(score).__name__}")
            flat = score.detach().reshape(-1)
            if flat.dtype in (torch.float16, torch.bfloat16):
                flat = flat.float()
            if flat.is_floating_point() and bool(torch.isnan(flat).any()):
                raise ConfigError(f"scores of {name} contain NaN; scores must be comparable numbers")
            self.shapes[name] = score.shape
            self._flat[name] = flat
        if sum(f.numel() * f.element_size() for f in self._flat.values()) > SPILL_BYTES:
            self._flat = _spilled(self._flat)

    @property
    def names(self) -> list[str]:
        return list(self.shapes)

    def _dense(self, name: str) -> torch.Tensor:
        return torch.ones(self.shapes[name], dtype=torch.bool, device=self._flat[name].device)

    def layerwise(self, sparsities: dict[str, float]) -> Masks:
        """Exact per-layer masks; layers missing from ``sparsities`` stay dense."""
        unknown = [n for n in sparsities if n not in self.shapes]
        if unknown:
            raise ConfigError(f"sparsity given for unknown layer {unknown[0]!r}; layers: {', '.join(self.shapes)}")
        checked = {n: _check_sparsity(n, s) for n, s in sparsities.items()}
        masks: Masks = {}
        for name, shape in self.shapes.items():
            s = checked.get(name)
            flat = self._flat[name]
            k = math.floor(s * flat.numel()) if s is not None else 0
            masks[name] = self._dense(name) if k == 0 else prune_lowest(flat, k).reshape(shape)
        return masks

    def global_(self, sparsity: float, layers: Iterable[str] | None = None) -> Masks:
        """One threshold over the selected layers (all by default), exactly ``round(sparsity * N)`` pruned.

        Ties across layers are broken by position in the concatenation of the selected layers in the
        scores' key order (lower position pruned first). Unselected layers stay dense.
        """
        s = _check_sparsity("global target", sparsity)
        selected = self._select(layers)
        joined = torch.cat([self._flat[n] for n in selected])
        keep = prune_lowest(joined, round(s * joined.numel()))
        parts = dict(zip(selected, keep.split([self._flat[n].numel() for n in selected])))
        return {name: parts[name].reshape(shape).clone() if name in parts else self._dense(name)
                for name, shape in self.shapes.items()}

    def _select(self, layers: Iterable[str] | None) -> tuple[str, ...]:
        if layers is None:
            return tuple(self.shapes)
        if isinstance(layers, str):
            layers = [layers]
        wanted = set(layers)
        unknown = sorted(wanted - set(self.shapes))
        if unknown:
            raise ConfigError(f"unknown layer {unknown[0]!r} for global masks; layers: {', '.join(self.shapes)}")
        if not wanted:
            raise ConfigError("global masks need at least one layer; got an empty layer selection")
        return tuple(n for n in self.shapes if n in wanted)


def _spilled(flats: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The float32 CPU scores of ``flats`` moved into one unlinked temporary file, mapped into memory (others stay).

    The default Mix-and-Match call holds five criteria's scores, each the size of the model's weights (8 GB for
    timm's 412M-parameter DeepSeek ViT), while it computes GraSP and fine-tunes. Mapped file pages are written back
    and dropped under memory pressure, and read again when a mask needs them; the file goes away with the last
    tensor that maps it."""
    spill = {n: f for n, f in flats.items() if f.dtype == torch.float32 and f.device.type == "cpu"}
    total = sum(f.numel() for f in spill.values())
    if not total:
        return flats
    with tempfile.TemporaryFile(prefix="edgeprune-scores-") as file:
        store = np.memmap(file, dtype=np.float32, mode="w+", shape=(total,))
    out, offset = dict(flats), 0
    for name, flat in spill.items():
        part = store[offset:offset + flat.numel()]
        part[:] = flat.numpy()
        out[name] = torch.from_numpy(part)
        offset += flat.numel()
    store.flush()
    return out


def layerwise_masks(scores: dict[str, torch.Tensor], sparsities: dict[str, float]) -> Masks:
    """Per-layer top-k: prune exactly ``floor(s * n)`` lowest-score weights in each layer named in
    ``sparsities`` (ties: lower flat index pruned first); other layers stay dense. s must be in [0, 1)."""
    return MaskBuilder(scores).layerwise(sparsities)


def global_masks(scores: dict[str, torch.Tensor], sparsity: float, layers: Iterable[str] | None = None) -> Masks:
    """One score threshold over all (or the selected) layers: exactly ``round(sparsity * N)`` weights pruned."""
    return MaskBuilder(scores).global_(sparsity, layers)


# ---------------------------------------------------------------------------------------------------
# Reading masks and models
# ---------------------------------------------------------------------------------------------------


def masks_sparsity(masks: Masks) -> float:
    """Fraction of pruned entries over all masks (0.0 for no masks)."""
    total = sum(m.numel() for m in masks.values())
    kept = sum(int(m.count_nonzero()) for m in masks.values())
    return (total - kept) / total if total else 0.0


def per_layer_sparsity(masks: Masks) -> dict[str, float]:
    """{name: fraction of pruned entries} of every mask."""
    return {n: (m.numel() - int(m.count_nonzero())) / m.numel() if m.numel() else 0.0 for n, m in masks.items()}


def masks_from_model(model: nn.Module) -> Masks:
    """Keep-masks (weight != 0) of the model's prunable weights, on CPU."""
    return {n: (w.detach() != 0).cpu() for n, w in prunable_weights(model).items()}


def make_permanent(model: nn.Module, masks: Masks) -> None:
    """Zero the pruned weights of ``model`` once, in place.

    edgeprune keeps masks outside the model (no reparametrisation); if a module carries
    ``torch.nn.utils.prune`` hooks, they are removed first so the plain ``weight`` parameter is masked.
    """
    for module in model.modules():
        for hook in list(module._forward_pre_hooks.values()):
            if isinstance(hook, torch_prune.BasePruningMethod):
                torch_prune.remove(module, hook._tensor_name)
    params = dict(model.named_parameters())
    for name, mask in masks.items():
        if name in params and tuple(mask.shape) != tuple(params[name].shape):
            raise ConfigError(
                f"mask of {name} has shape {tuple(mask.shape)} but the weight has shape {tuple(params[name].shape)}"
            )
    apply_masks(model, masks)

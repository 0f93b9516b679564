"""Per-layer sparsity ranges [lo, hi] for Mix-and-Match, from layer roles.

Two sources, as in the paper (docs/mix_and_match.md, "Ranges"):

* :func:`rules`: every prunable weight gets the range of its role (:class:`RangeRules`, every number
  overridable from a recipe). This is what the authors' released code does (hard-coded ranges per
  architecture); our rules are the same idea written once, name-free, for any model.
* :func:`derived`: the paper's phase 1. Each baseline's scores (magnitude, SNIP, GraSP) are pruned with ONE
  global threshold at each target (70/80/90 %); a layer's range is the min/max of the sparsities it got over
  those runs; the structural constraints (small layers, patch embedding) are then put on top.

Order of the rules (first match wins): ``norm`` (only for tables that list norm weights; norms are not
prunable) -> ``small`` (the paper's rule overrides the role) -> the role's rule.

"Small" is relative to the model: fewer entries than ``small_numel`` (the paper's 10 K) AND than
``small_fraction`` of the model's largest prunable weight. On the paper's models (largest layers of 2-17 M
weights) that is the paper's rule; on a compact net (say 19 K parameters, largest layer 8 K) the paper's rule
would make every layer small ([0, 10 %]) and collapse most strategies into one uniform model, so only its
truly small layers are.
"""

from __future__ import annotations

from typing import Union

import pydantic

from edgeprune.config import Config
from edgeprune.errors import ConfigError
from edgeprune.prune.masks import MaskBuilder, per_layer_sparsity
from edgeprune.roles import RoleTable

Pair = tuple[float, float]
Band = tuple[float, float, float]  # (depth upper bound, lo, hi): applies while depth < bound; last band: rest
RangeSpec = Union[Pair, list[Band]]


def _check_pair(lo: float, hi: float) -> None:
    if not (0.0 <= lo < 1.0 and 0.0 <= hi < 1.0):
        raise ValueError(f"lo and hi must be in [0, 1), got [{lo}, {hi}]")
    if lo > hi:
        raise ValueError(f"lo must be <= hi, got [{lo}, {hi}]")


class RangeRules(Config):
    """Ranges per role (fractions in [0, 1), lo <= hi). Depth-dependent roles take a pair (same range at
    every depth) or a list of bands ``[depth_bound, lo, hi]``: a layer uses the first band with
    ``depth < depth_bound``, the last band takes the rest. Depth is the role table's (convs: among convs).
    """

    norm: Pair = (0.0, 0.0)
    small: Pair = (0.0, 0.10)
    small_numel: int = pydantic.Field(10_000, ge=0)  # weights with fewer entries are "small" (0 disables)
    # ... and fewer than this fraction of the largest prunable weight's entries (None: the paper's absolute rule)
    small_fraction: float | None = pydantic.Field(0.05, ge=0, le=1)
    patch_embed: Pair = (0.15, 0.30)
    classifier_large: Pair = (0.85, 0.98)
    classifier_small: Pair = (0.0, 0.30)
    # a classifier holding at least this share of the prunable weights is "large"
    classifier_large_fraction: float = pydantic.Field(0.10, ge=0, le=1)
    # the paper's VGG code: conv ranges rise with relative depth
    conv: RangeSpec = [(0.4, 0.40, 0.60), (0.6, 0.55, 0.70), (0.8, 0.65, 0.80), (1.0, 0.75, 0.92)]
    # the paper's Swin code per stage s0..s3, with stages replaced by depth quartiles
    attn_qkv: RangeSpec = [(0.25, 0.10, 0.30), (0.5, 0.15, 0.35), (0.75, 0.20, 0.40), (1.0, 0.25, 0.45)]
    attn_proj: RangeSpec = [(0.25, 0.20, 0.40), (0.5, 0.25, 0.45), (0.75, 0.30, 0.50), (1.0, 0.35, 0.55)]
    mlp_in: RangeSpec = [(0.25, 0.30, 0.45), (0.5, 0.35, 0.50), (0.75, 0.40, 0.55), (1.0, 0.45, 0.60)]
    mlp_out: RangeSpec = [(0.25, 0.25, 0.40), (0.5, 0.30, 0.45), (0.75, 0.35, 0.50), (1.0, 0.40, 0.55)]
    # other Linears: of CNNs/MLPs (VGG code's hidden FC layers: 88-98 %) ...
    linear: RangeSpec = (0.85, 0.98)
    # ... and of models with attention (Swin code's patch-merging reduction: 5-20 %)
    transformer_linear: RangeSpec = (0.05, 0.20)
    # channel granularity only: the layers writing a residual stream (their channels summed with another layer's),
    # which every block after them reads (None: their role's range)
    residual: RangeSpec | None = None
    # highest per-layer sparsity derived ranges and target calibration may reach
    ceiling: float = pydantic.Field(0.999, gt=0, lt=1)

    @pydantic.field_validator("norm", "small", "patch_embed", "classifier_large", "classifier_small")
    @classmethod
    def _pair(cls, value: Pair) -> Pair:
        _check_pair(*value)
        return value

    @pydantic.field_validator("conv", "attn_qkv", "attn_proj", "mlp_in", "mlp_out", "linear", "transformer_linear",
                              "residual")
    @classmethod
    def _spec(cls, value: RangeSpec | None) -> RangeSpec | None:
        if value is None:
            return value
        if isinstance(value, tuple):
            _check_pair(*value)
            return value
        if not value:
            raise ValueError("give a [lo, hi] pair or at least one [depth_bound, lo, hi] band")
        previous = 0.0
        for bound, lo, hi in value:
            _check_pair(lo, hi)
            if not previous < bound:
                raise ValueError(f"band depth bounds must increase and be > 0, got {bound} after {previous}")
            previous = bound
        return value

    def range_for(self, field: str, depth: float) -> Pair:
        """The (lo, hi) of a role field at ``depth``."""
        spec = getattr(self, field)
        if isinstance(spec, tuple):
            return spec
        for bound, lo, hi in spec:
            if depth < bound:
                return (lo, hi)
        return (spec[-1][1], spec[-1][2])


def small_limit(roles: RoleTable, r: RangeRules) -> float:
    """Weights with fewer entries than this are "small": min(small_numel, small_fraction · largest layer)."""
    if r.small_fraction is None:
        return r.small_numel
    largest = max((e.numel for e in roles.prunable()), default=0)
    return min(r.small_numel, r.small_fraction * largest)


def rules(roles: RoleTable, rules: RangeRules | None = None) -> dict[str, Pair]:
    """param name -> (lo, hi) for every prunable weight of ``roles``, from the role rules (forward order)."""
    r = rules or RangeRules()
    prunable = roles.prunable()
    small = small_limit(roles, r)
    total = sum(e.numel for e in prunable)
    has_attention = any(e.role in ("attn_qkv", "attn_proj") for e in prunable)
    out: dict[str, Pair] = {}
    for e in prunable:
        if e.role == "norm":
            out[e.param_name] = r.norm
        elif e.numel < small:
            out[e.param_name] = r.small
        elif e.role == "classifier":
            large = total and e.numel >= r.classifier_large_fraction * total
            out[e.param_name] = r.classifier_large if large else r.classifier_small
        elif e.role == "patch_embed":
            out[e.param_name] = r.patch_embed
        elif e.role == "linear":
            out[e.param_name] = r.range_for("transformer_linear" if has_attention else "linear", e.depth)
        else:  # conv, attn_qkv, attn_proj, mlp_in, mlp_out
            out[e.param_name] = r.range_for(e.role, e.depth)
    return {k: (float(lo), float(hi)) for k, (lo, hi) in out.items()}


def derived(
    roles: RoleTable,
    scores_by_baseline: dict[str, dict],
    targets=(0.7, 0.8, 0.9),
    rules: RangeRules | None = None,
    constrain: bool = True,
) -> dict[str, Pair]:
    """The paper's phase 1: per-layer (min, max) sparsity over global pruning runs, then the constraints.

    For each baseline's scores ({param: score tensor}, e.g. magnitude, SNIP, GraSP) and each global
    target, one global threshold prunes exactly round(target * N) weights; every layer's resulting
    sparsity is recorded. lo/hi are the min/max over all runs, capped at ``rules.ceiling``. With
    ``constrain`` the structural constraints replace them: norm [0, 0], small layers ``rules.small``,
    patch embeddings ``rules.patch_embed`` (in that order). Accuracy plays no part.
    """
    r = rules or RangeRules()
    if not scores_by_baseline:
        raise ConfigError("derived ranges need the scores of at least one baseline (e.g. magnitude, snip, grasp)")
    targets = list(targets)
    if not targets:
        raise ConfigError("derived ranges need at least one global target sparsity")
    for t in targets:
        if not 0.0 <= float(t) < 1.0:
            raise ConfigError(f"global target sparsity must be in [0, 1), got {t!r}")
    names = [e.param_name for e in roles.prunable()]
    lo = {n: 1.0 for n in names}
    hi = {n: 0.0 for n in names}
    for baseline, scores in scores_by_baseline.items():
        missing = [n for n in names if n not in scores]
        if missing:
            raise ConfigError(f"scores of baseline {baseline!r} miss layer {missing[0]!r}")
        builder = MaskBuilder({n: scores[n] for n in names})
        for t in targets:
            for name, s in per_layer_sparsity(builder.global_(float(t))).items():
                lo[name], hi[name] = min(lo[name], s), max(hi[name], s)
    out = {n: (min(lo[n], r.ceiling), min(hi[n], r.ceiling)) for n in names}
    if constrain:
        small = small_limit(roles, r)
        for e in roles.prunable():
            if e.role == "norm":
                out[e.param_name] = r.norm
            elif e.numel < small:
                out[e.param_name] = r.small
            elif e.role == "patch_embed":
                out[e.param_name] = r.patch_embed
    return {k: (float(a), float(b)) for k, (a, b) in out.items()}

"""The ten Mix-and-Match strategies: per-layer sparsity vectors built from per-layer ranges [lo, hi].

Formulas (docs/mix_and_match.md, "Strategies"; lo/hi are a layer's range, n_l its weight count):

========== ===================================================================================
min        lo  ("Min Conservative")
max        hi  ("Max Aggressive")
balanced   lo + 0.5 (hi - lo)  (= (lo+hi)/2; written like p50 so the two are bit-identical)
p30..p90   lo + a (hi - lo), a in {0.3, 0.5, 0.7, 0.9}
param_prop lo + b (hi - lo), b = min(1, 10 n_l / sum n)  (the authors' CODE; it reproduces the paper's
           tables, the paper's text formula 0.1 n_l / mean(n) does not)
late_heavy classifier layers and late layers (depth >= 0.75) at hi, all others at lo (the code's
           "classifier heavy" / fc_heavy / "MLP heavy" strategy A, generalised without layer names)
early_heavy early feature layers (every role but classifier, depth < 0.5) at hi, all others at the
           midpoint (the code's strategy B: conv aggressive / attn aggressive, made "feature/early-heavy"
           as the paper's text describes it)
mlp_heavy  MLP layers (roles mlp_in, mlp_out) at hi, all others at lo (the Swin code's "MLP Heavy",
           strategy A, found by role instead of the name ``mlp``)
attn_aggr. attention layers (roles attn_qkv, attn_proj) at hi, all others at the midpoint (the Swin
           code's "Attn Aggressive", strategy B, found by role instead of the name ``attn``)
========== ===================================================================================

Which ten a model gets (:func:`names_for`): the eight shape-free strategies (min, max, balanced, p30-p90,
param_prop) plus a structure-aware pair — ``late_heavy`` / ``early_heavy`` for CNNs and MLPs,
``mlp_heavy`` / ``attn_aggressive`` for models with attention (the paper's Swin-T set).

With ``target_sparsity`` every strategy is shifted to that global sparsity (see :func:`calibrate`).
"""

from __future__ import annotations

import math

from edgeprune.errors import ConfigError, check_fraction
from edgeprune.roles import RoleTable

COMMON = ("min", "max", "balanced", "p30", "p50", "p70", "p90", "param_prop")
NAMES = (*COMMON, "late_heavy", "early_heavy")  # CNNs and MLPs
TRANSFORMER_NAMES = (*COMMON, "mlp_heavy", "attn_aggressive")  # models with attention
ALL_NAMES = (*NAMES, "mlp_heavy", "attn_aggressive")
MLP_ROLES = ("mlp_in", "mlp_out")
ATTN_ROLES = ("attn_qkv", "attn_proj")
PERCENTILES = {"p30": 0.3, "p50": 0.5, "p70": 0.7, "p90": 0.9}
LATE_DEPTH = 0.75  # late_heavy: layers at or past this depth go to hi
EARLY_DEPTH = 0.5  # early_heavy: feature layers before this depth go to hi
TOLERANCE = 0.001  # target calibration: |achieved - target| <= 0.1 pp


class Coarse(ConfigError):
    """A strategy's layers are too few or too coarse to land within :data:`TOLERANCE` of the target."""
CEILING = 0.999  # calibration never pushes a layer beyond this sparsity

Ranges = dict[str, tuple[float, float]]


def _numels(ranges: Ranges, roles: RoleTable) -> dict[str, int]:
    out = {}
    for name in ranges:
        try:
            out[name] = roles.by_param(name).numel
        except KeyError:
            raise ConfigError(f"range given for {name!r}, which is not a prunable weight of the model") from None
    return out


def _interp(lo: float, hi: float, a: float) -> float:
    return lo + a * (hi - lo)


def _shape(name: str, ranges: Ranges, roles: RoleTable) -> dict[str, float]:
    """The strategy's vector before any calibration."""
    if name == "min":
        return {p: lo for p, (lo, hi) in ranges.items()}
    if name == "max":
        return {p: hi for p, (lo, hi) in ranges.items()}
    if name == "balanced":
        return {p: _interp(lo, hi, 0.5) for p, (lo, hi) in ranges.items()}
    if name in PERCENTILES:
        a = PERCENTILES[name]
        return {p: _interp(lo, hi, a) for p, (lo, hi) in ranges.items()}
    if name == "param_prop":
        numel = _numels(ranges, roles)
        total = sum(numel.values())
        return {p: _interp(lo, hi, min(1.0, 10.0 * numel[p] / total) if total else 0.0)
                for p, (lo, hi) in ranges.items()}
    if name == "late_heavy":
        out = {}
        for p, (lo, hi) in ranges.items():
            e = roles.by_param(p)
            out[p] = hi if e.role == "classifier" or e.depth >= LATE_DEPTH else lo
        return out
    if name == "early_heavy":
        out = {}
        for p, (lo, hi) in ranges.items():
            e = roles.by_param(p)
            out[p] = hi if e.role != "classifier" and e.depth < EARLY_DEPTH else _interp(lo, hi, 0.5)
        return out
    if name == "mlp_heavy":
        return {p: hi if roles.by_param(p).role in MLP_ROLES else lo for p, (lo, hi) in ranges.items()}
    if name == "attn_aggressive":
        return {p: hi if roles.by_param(p).role in ATTN_ROLES else _interp(lo, hi, 0.5) for p, (lo, hi) in ranges.items()}
    raise ConfigError(f"unknown strategy {name!r}; allowed: {', '.join(ALL_NAMES)}")


def names_for(roles: RoleTable) -> tuple[str, ...]:
    """The ten strategies of a model: the transformer pair when it has attention layers, else the CNN pair."""
    attention = any(e.role in ATTN_ROLES for e in roles.prunable())
    return TRANSFORMER_NAMES if attention else NAMES


def _check_ranges(ranges: Ranges) -> None:
    if not ranges:
        raise ConfigError("no layer ranges given: the model has no prunable weight")
    for p, pair in ranges.items():
        try:
            lo, hi = (float(v) for v in pair)
        except (TypeError, ValueError):
            raise ConfigError(f"range of {p} must be a (lo, hi) pair, got {pair!r}") from None
        if not (0.0 <= lo <= hi < 1.0):
            raise ConfigError(f"range of {p} must satisfy 0 <= lo <= hi < 1, got [{lo}, {hi}]")


def build(name: str, ranges: Ranges, roles: RoleTable, target_sparsity: float | None = None) -> dict[str, float]:
    """param name -> sparsity of strategy ``name`` for the given per-layer ranges (forward order).

    With ``target_sparsity`` the vector is calibrated so that the global sparsity (parameter-weighted over
    the prunable weights, counting floor(s * n) per layer as the masks will) is within 0.1 pp of it.
    """
    _check_ranges(ranges)
    ranges = {p: (float(lo), float(hi)) for p, (lo, hi) in ranges.items()}
    _numels(ranges, roles)
    vector = _shape(name, ranges, roles)
    if target_sparsity is None:
        return vector
    return calibrate(vector, ranges, roles, target_sparsity)


def build_all(ranges: Ranges, roles: RoleTable, target_sparsity: float | None = None) -> dict[str, dict[str, float]]:
    """Every strategy of NAMES: {strategy name: {param name: sparsity}}."""
    return {name: build(name, ranges, roles, target_sparsity) for name in NAMES}


def pruned_count(sparsity: float, numel: int) -> int:
    """Weights a layer mask prunes at ``sparsity`` (the masks' floor(s * n))."""
    return math.floor(sparsity * numel)


def global_sparsity(sparsities: dict[str, float], roles: RoleTable) -> float:
    """Parameter-weighted sparsity over ALL prunable weights of ``roles`` (layers not named count as
    dense), counting floor(s * n) pruned weights per layer as the masks will."""
    prunable = roles.prunable()
    total = sum(e.numel for e in prunable)
    pruned = sum(pruned_count(sparsities.get(e.param_name, 0.0), e.numel) for e in prunable)
    return pruned / total if total else 0.0


DUPLICATE_DECIMALS = 3  # strategies within 0.1 pp in every layer (the calibration tolerance) are one model


def duplicates(strategies: dict[str, dict[str, float]]) -> dict[str, list[str]]:
    """name -> the other names whose per-layer sparsities agree to 0.1 pp in every layer (the calibration's
    tolerance: two uniform vectors calibrated to one target are the same model), only names that have some."""
    def key(vector):
        return tuple(sorted((p, round(s, DUPLICATE_DECIMALS)) for p, s in vector.items()))

    groups: dict[tuple, list[str]] = {}
    for name, vector in strategies.items():
        groups.setdefault(key(vector), []).append(name)
    out = {}
    for names in groups.values():
        if len(names) > 1:
            for n in names:
                out[n] = [m for m in names if m != n]
    return out


# --------------------------------------------------------------------------------------------- calibration


def _shifted(vector: dict[str, float], bounds: dict[str, tuple[float, float]], t: float) -> dict[str, float]:
    return {p: min(max(s + t, bounds[p][0]), bounds[p][1]) for p, s in vector.items()}


def calibrate(vector: dict[str, float], ranges: Ranges, roles: RoleTable, target: float) -> dict[str, float]:
    """Shift ``vector`` by ONE common amount t (in sparsity points) so its global sparsity hits ``target``.

    Every layer moves by the same t, clipped to its range [lo, hi], so the strategy keeps its shape (the
    authors' code also adds one common step to every layer, but leaves the ranges and moves [0, 0] layers).
    If the target cannot be reached inside the ranges, the clip widens to [0, CEILING]. Layers whose range
    is [0, 0] are never touched. t is found by bisection (global sparsity is non-decreasing in t). Raises
    ConfigError naming the reachable interval when the target is out of reach.
    """
    target = check_fraction("target sparsity", target)
    _numels(vector, roles)
    fixed = {p for p, (lo, hi) in ranges.items() if hi == 0.0}

    def achieved(v):
        return global_sparsity(v, roles)

    inside = {p: (lo, hi) for p, (lo, hi) in ranges.items()}
    widened = {p: ((0.0, 0.0) if p in fixed else (0.0, CEILING)) for p in ranges}
    reach_in = (achieved(_shifted(vector, inside, -1.0)), achieved(_shifted(vector, inside, 1.0)))
    if reach_in[0] - TOLERANCE <= target <= reach_in[1] + TOLERANCE:
        bounds = inside
    else:
        bounds = widened
        reach_out = (achieved(_shifted(vector, widened, -1.0)), achieved(_shifted(vector, widened, 1.0)))
        if not reach_out[0] - TOLERANCE <= target <= reach_out[1] + TOLERANCE:
            raise ConfigError(
                f"target sparsity {target:.4f} is unreachable: within the layer ranges the global sparsity can "
                f"be {reach_in[0]:.4f}..{reach_in[1]:.4f}, and {reach_out[0]:.4f}..{reach_out[1]:.4f} when layers "
                f"may leave their ranges (layers with range [0, 0] stay dense)")

    lo_t, hi_t = -1.0, 1.0
    best, best_err = None, math.inf
    for _ in range(200):
        t = 0.5 * (lo_t + hi_t)
        v = _shifted(vector, bounds, t)
        s = achieved(v)
        err = abs(s - target)
        if err < best_err:
            best, best_err = v, err
        if err <= TOLERANCE / 4 or hi_t - lo_t < 1e-12:
            break
        if s < target:
            lo_t = t
        else:
            hi_t = t
    for t in (lo_t, hi_t):  # the bisection's end points may be closer than its last midpoint
        v = _shifted(vector, bounds, t)
        if abs(achieved(v) - target) < best_err:
            best, best_err = v, abs(achieved(v) - target)
    total = sum(e.numel for e in roles.prunable())
    if best_err > max(TOLERANCE, 1.0 / max(total, 1)):  # a model of few weights: as close as one weight allows
        raise Coarse(
            f"target sparsity {target:.4f} cannot be met within 0.1 pp: the closest global sparsity is "
            f"{achieved(best):.4f} (the layers are too few or too coarse for this target)")
    return best

"""Mix-and-Match at channel granularity: the ten strategies as per-layer channel fractions, calibrated to a
budget measured on the pruned model (ONNX Runtime latency, ONNX file bytes, MACs, parameters or sparsity).

The ranges come from the layer roles exactly as for weights, with channel-sized defaults
(:data:`CHANNEL_RANGES`, overridable through ``range_rules``). Every strategy is moved by ONE common shift
``t`` (each layer ``clip(s + t, lo, hi)``, so it keeps its shape), found by bisection on the measured
quantity: the least pruning whose measured cost fits the budget. If the budget cannot be met inside the
ranges, layers may leave them (``[0, CEILING]``); if it cannot be met even then, the error names the
smallest reachable value. Channel counts depend on the fractions only, never on the criterion, so one
calibration serves all three criteria; measurements are cached per set of widths.

Depth too (``drop_blocks``): a candidate may first lose the ``k`` residual blocks of least influence
(:mod:`edgeprune.prune.depth`, :mod:`edgeprune.scores.blocks`), removing their operators, which channel removal
cannot; its channel strategy is then calibrated to the budget with those blocks gone.
"""

from __future__ import annotations

import copy
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from edgeprune import ranges as ranges_lib
from edgeprune import roles as roles_lib
from edgeprune import scores as scores_lib
from edgeprune import strategies as strategies_lib
from edgeprune.errors import ConfigError
from edgeprune.export.et_latency import compare, export_for, latency_ms
from edgeprune.export.int8 import quantize
from edgeprune.export.onnx import export_onnx
from edgeprune.export.ort_latency import channel_block, ort_latency, paired_latency
from edgeprune.measure import macs, param_count, prunable_weights
from edgeprune.measure.budget import Budget, kind_of
from edgeprune.methods.base import optional_parts
from edgeprune.models.mha import SplitMultiheadAttention, split_mha
from edgeprune.prune import depth as depth_lib
from edgeprune.prune import structured
from edgeprune.scores.blocks import block_influence

CEILING = 0.9  # a layer never loses more than this fraction of its channels
STEPS = {"latency": 7, "size": 8}  # bisection steps per measured kind (others: DEFAULT_STEPS)
DEFAULT_STEPS = 12

# channel fractions per role: far below the weight ranges (removing a fraction f of channels on both sides
# of a layer removes about 1 - (1 - f)^2 of its weights and MACs)
CHANNEL_RANGES = {
    "small": (0.0, 0.2), "small_numel": 1000, "patch_embed": (0.0, 0.1),
    "classifier_large": (0.0, 0.0), "classifier_small": (0.0, 0.0),
    "conv": [(0.4, 0.10, 0.30), (0.6, 0.20, 0.40), (0.8, 0.25, 0.50), (1.0, 0.30, 0.60)],
    "attn_qkv": (0.0, 0.5), "attn_proj": (0.0, 0.2),
    "mlp_in": [(0.5, 0.20, 0.50), (1.0, 0.30, 0.60)], "mlp_out": (0.0, 0.2),
    "linear": (0.30, 0.70), "transformer_linear": (0.0, 0.2),
}


@dataclass
class ChannelState:
    roles: roles_lib.RoleTable
    ranges: dict
    structure: structured.StructurePlan
    scores: dict  # criterion -> per-weight scores (None: magnitude, read from the weights)
    example: torch.Tensor
    dense: dict  # the input model's params, MACs, prunable weights (relative budgets, sparsity)
    model: nn.Module  # the input model (calibration prunes copies of it)
    round_to: int | str = "auto"
    latency_runs: int = 20
    deploy: bool = True  # measure every candidate's ONNX bytes and ONNX Runtime latency
    blocks: list = field(default_factory=list)  # removable residual blocks, least influence first
    cache: dict = field(default_factory=dict)  # (budget kind, widths) -> measured value
    calibrated: dict = field(default_factory=dict)  # (budget text, strategy, blocks removed) -> what calibration found
    warned: set = field(default_factory=set)  # the notes of parts kept whole already warned about
    rounded: dict = field(default_factory=dict)  # (budget text, blocks removed) -> the width multiple "auto" chose

    @property
    def criteria(self) -> list[str]:  # those that could score this model
        return list(self.scores)


def prepare(model: nn.Module, data, example: torch.Tensor, options) -> ChannelState:
    """Roles, channel ranges, the model's structure and each criterion's scores, computed once."""
    split = _split(model)  # the model as it is pruned: nn.MultiheadAttention with separate q/k/v
    roles = roles_lib.classify(split, example)
    rules = ranges_lib.RangeRules.build({**CHANNEL_RANGES, **options.range_rules})
    ranges = ranges_lib.rules(roles, rules)
    keep = frozenset(e.module_name for e in roles.prunable() if e.role == "patch_embed")
    structure = structured.plan(split, example, keep_embedding=keep)
    deepest = max(options.drop_blocks)
    needs_data = deepest > 0 or any(c != "magnitude" for c in options.criteria)
    batches = scores_lib.calibration_batches(data.train, options.calib_batches, options.calib_batch_size) if needs_data else None
    scores = optional_parts(options.criteria, lambda c: None if c == "magnitude" else scores_lib.compute(c, split, batches),
                            "criterion", need_one=True)
    dense = {"params": param_count(model), "macs": macs(model, example[:1]).dense,
             "prunable": sum(w.numel() for w in prunable_weights(model).values())}
    return ChannelState(roles, ranges, structure, scores, example[:1], dense, model, options.round_to,
                        options.latency_runs, options.deploy_metrics, blocks=_ranked_blocks(split, example, batches, deepest))


def _ranked_blocks(model: nn.Module, example: torch.Tensor, batches, deepest: int) -> list[str]:
    """The removable residual blocks of ``model``, least influence first (none looked for if ``deepest`` is 0)."""
    if deepest == 0:
        return []
    names = depth_lib.removable_blocks(model, example[:1])
    if deepest > len(names):
        raise ConfigError(f"drop_blocks={deepest} but {type(model).__name__} has {len(names)} removable residual "
                          f"block(s){': ' + ', '.join(names) if names else ''}; allowed: 0 to {len(names)}")
    influence = block_influence(model, names, batches)
    return sorted(names, key=influence.__getitem__)


def _split(model: nn.Module) -> nn.Module:
    """``model``, or a copy whose ``nn.MultiheadAttention`` layers have separate q/k/v projections (the same
    function), so they can lose whole heads while the residual stream keeps its width."""
    if not any(SplitMultiheadAttention.convertible(m) for m in model.modules()):
        return model
    copied = copy.deepcopy(model)
    split_mha(copied)
    return copied


def rounding(state: ChannelState, budget, depth: int = 0) -> int:
    """The multiple kept widths are rounded to under ``budget`` with ``depth`` blocks removed: ``round_to``, or for
    "auto" ONNX Runtime's channel block under every budget (odd widths save MACs, parameters and bytes but little
    time; ExecuTorch's XNNPACK has no block of its own we know, so it gets the same). A counted budget (MACs,
    parameters, size, sparsity) the block cannot reach gets a finer multiple (:func:`align`)."""
    if state.round_to != "auto":
        return state.round_to
    return state.rounded.get((str(budget), depth), channel_block())


def _is_latency(budget) -> bool:
    return isinstance(budget, Budget) and budget.kind == "latency"


def align(state: ChannelState, budget, depth: int = 0) -> int:
    """For round_to="auto": the coarsest of ONNX Runtime's channel block, its half, quarter... down to 1 at which
    ``budget`` can be met (every layer at :data:`CEILING`), kept for :func:`rounding`, with a warning when it is
    finer than the block. A latency budget keeps the block (finer widths buy MACs, not time: it is refused with the
    smallest reachable latency instead)."""
    key = (str(budget), depth)
    if state.round_to != "auto" or key in state.rounded:
        return rounding(state, budget, depth)
    block = multiple = channel_block()
    fits, _ = _cost(state, budget)
    most = {p: 0.0 if hi == 0.0 else CEILING for p, (_, hi) in state.ranges.items()}
    while multiple > 1 and not _is_latency(budget):
        state.rounded[key] = multiple
        if fits(_value(state, most, budget, depth, exact=True)):
            break
        multiple //= 2
    state.rounded[key] = multiple
    if multiple < block:
        warnings.warn(f"budget {budget} cannot be met with kept widths multiples of {block} (ONNX Runtime's channel "
                      f"block){f' and {depth} residual block(s) removed' if depth else ''}: kept widths are multiples "
                      f"of {multiple}, which ONNX Runtime runs slower per MAC", UserWarning, stacklevel=3)
    return multiple


def pruned_copy(state: ChannelState, model: nn.Module, vector: dict, budget, criterion: str = "magnitude",
                depth: int = 0):
    """A copy of ``model`` with the channels of strategy ``vector`` ("<module>.weight" -> fraction) removed,
    kept widths rounded as :func:`rounding` says for ``budget``, and its ``depth`` residual blocks of least
    influence replaced by the identity."""
    small = copy.deepcopy(model)
    split_mha(small)
    widths = structured.prune_channels(small, state.example, state.structure, structured.fractions_from_params(vector),
                                       state.scores.get(criterion), round_to=rounding(state, budget, depth))
    _warn_kept_whole(state, widths.skipped)
    depth_lib.drop_blocks(small, state.blocks[:depth])
    return small, widths


def _warn_kept_whole(state: ChannelState, notes: list[str]) -> None:
    """One warning, the first time structured pruning keeps parts of the model whole (and when it keeps more)."""
    new = [n for n in notes if n not in state.warned]
    if new:
        state.warned.update(new)
        warnings.warn(f"structured pruning of {type(state.model).__name__} keeps parts of it whole: {'; '.join(notes)}",
                      UserWarning, stacklevel=3)


def _shape_key(model: nn.Module, widths: dict) -> tuple:
    """What a measurement depends on: the kept widths, heads and residual blocks."""
    return (tuple(sorted(widths.items())), tuple(getattr(m, "num_heads", 0) for m in model.modules()),
            tuple(n for n, m in model.named_modules() if isinstance(m, nn.Identity)))


# --------------------------------------------------------------------------------------------- measuring

LATENCY_BATCHES = (1, 32)


def _deploy(model: nn.Module, example: torch.Tensor, runs: int, reference: Path | None = None) -> dict:
    """ONNX bytes (FP32, INT8) and ONNX Runtime latency of ``model`` at 1 thread; with ``reference`` (the input
    model's ``.onnx``) each batch is one paired measurement of both, giving ``speedup_bN`` and its spread."""
    with tempfile.TemporaryDirectory(prefix="edgeprune-deploy-") as folder:
        path = Path(folder) / "model.onnx"
        export_onnx(model, path, input_shape=tuple(example.shape[1:]))
        out = {"onnx_bytes": path.stat().st_size,
               "onnx_bytes_int8": quantize(path, Path(folder) / "int8.onnx", "dynamic", preprocess=False)["bytes"]}
        for b in LATENCY_BATCHES:
            if reference is None:
                out[f"ort_latency_ms_b{b}"] = ort_latency(path, batch_size=b, runs=runs, threads=1)["median_ms"]
                continue
            timed = paired_latency(reference, path, batch_size=b, runs=runs, threads=1)
            out[f"ort_latency_ms_b{b}"] = timed["second"]["median_ms"]
            out[f"speedup_b{b}"] = timed["ratio"]
            out[f"speedup_spread_b{b}"] = [timed["ratio_p10"], timed["ratio_p90"]]
    return out


def deploy_metrics(state: ChannelState, model: nn.Module, widths: dict) -> dict:
    """FP32 and INT8 (dynamic) ONNX bytes and ONNX Runtime latency (1 thread, batch 1 and 32) of ``model``,
    with the input model's and the speed-ups; measured once per set of widths (fine-tuning changes neither).

    Each speed-up is the ratio of one paired measurement of ``model`` and the input model's ONNX file
    (:func:`paired_latency`: ``latency_runs`` rounds of both), with the p10/p90 of the per-round ratios
    (``speedup_spread_bN``); the input model's own figures (``dense``) are for its row of the report.
    """
    if not state.deploy:
        return {}
    if "deploy-dense" not in state.cache:
        state.cache["deploy-dense"] = _deploy(state.model, state.example, state.latency_runs)
    key = ("deploy", *_shape_key(model, widths))
    if key not in state.cache:
        state.cache[key] = _deploy(model, state.example, state.latency_runs, reference=_dense_onnx(state))
    out, dense = dict(state.cache[key]), state.cache["deploy-dense"]
    warning = speedup_warning({**out, "macs": macs(model, state.example).dense}, state.dense["macs"])
    if warning:
        out["speedup_warning"] = warning
    out["dense"] = dense
    return out


def speedup_warning(measured: dict, dense_macs: float) -> str | None:
    """A plain sentence when ONNX Runtime runs the pruned model less than half as much faster as its MACs promise:
    ``speedup_bN - 1 < (dense_macs / macs - 1) / 2`` at batch 1 or 32 (MACs x0.49 promise 2.04x: below 1.52x it
    is said). ``measured``: a record, or deploy metrics with ``macs``; None when nothing falls short, or nothing
    was measured."""
    pruned = measured.get("macs")
    if not pruned or not dense_macs or pruned >= dense_macs:
        return None
    promised = dense_macs / pruned
    short = [(b, measured[f"speedup_b{b}"]) for b in LATENCY_BATCHES
             if isinstance(measured.get(f"speedup_b{b}"), (int, float)) and measured[f"speedup_b{b}"] - 1 < (promised - 1) / 2]
    if not short:
        return None
    return (f"MACs x{pruned / dense_macs:.2f} but ONNX Runtime only "
            + " and ".join(f"{speedup:.2f}x faster at batch {b}" for b, speedup in short))


def measure(state: ChannelState, model: nn.Module, budget) -> float:
    """The budget's quantity measured on ``model`` (sparsity: fraction of the input's prunable weights removed)."""
    kind = kind_of(budget)
    if kind == "sparsity":
        return 1.0 - sum(w.numel() for w in prunable_weights(model).values()) / max(state.dense["prunable"], 1)
    if kind == "params":
        return float(param_count(model))
    if kind == "macs":
        return float(macs(model, state.example).dense)
    with tempfile.TemporaryDirectory(prefix="edgeprune-budget-") as folder:
        path = Path(folder) / "model.onnx"
        export_onnx(model, path, input_shape=tuple(state.example.shape[1:]))
        if kind == "latency" and budget.runtime == "executorch" and budget.relative and model is not state.model:
            return dense_value(state, budget) / _paired_et_ratio(state, model, budget.batch, Path(folder))
        if kind == "latency" and budget.runtime == "executorch":
            return latency_ms(model, budget.batch, "executorch", input_shape=tuple(state.example.shape[1:]),
                              runs=state.latency_runs)
        if kind == "latency" and budget.relative and model is not state.model:
            # timed in alternation with the input model and scaled to its reference latency: the fraction a
            # relative budget limits, robust to load changes between this and the reference measurement
            timed = paired_latency(_dense_onnx(state), path, budget.batch, runs=state.latency_runs)
            return dense_value(state, budget) / timed["ratio"]
        if kind == "latency":
            return float(ort_latency(path, batch_size=budget.batch, runs=state.latency_runs, threads=1)["median_ms"])
        if budget.precision == "int8":
            return float(quantize(path, Path(folder) / "int8.onnx", "dynamic", preprocess=False)["bytes"])
        return float(path.stat().st_size)


def _dense_onnx(state: ChannelState) -> Path:
    """The input model's ONNX export, written once (its folder lives as long as ``state``)."""
    if "dense-onnx" not in state.cache:
        folder = tempfile.TemporaryDirectory(prefix="edgeprune-dense-")
        path = Path(folder.name) / "model.onnx"
        export_onnx(state.model, path, input_shape=tuple(state.example.shape[1:]))
        state.cache["dense-onnx"] = (folder, path)
    return state.cache["dense-onnx"][1]


def _dense_pte(state: ChannelState, batch: int) -> Path:
    """The input model's ExecuTorch program at ``batch``, written once (its folder lives as long as ``state``)."""
    key = ("dense-pte", batch)
    if key not in state.cache:
        folder = tempfile.TemporaryDirectory(prefix="edgeprune-dense-")
        path = Path(folder.name) / "model.pte"
        export_for(state.model, path, "executorch", batch=batch, input_shape=tuple(state.example.shape[1:]))
        state.cache[key] = (folder, path)
    return state.cache[key][1]


def _paired_et_ratio(state: ChannelState, model: nn.Module, batch: int, folder: Path) -> float:
    """Input model's ExecuTorch median / ``model``'s, timed in alternation (``latency_runs`` rounds of one call
    each, as :func:`paired_latency` does in ONNX Runtime)."""
    path = folder / "model.pte"
    export_for(model, path, "executorch", batch=batch, input_shape=tuple(state.example.shape[1:]))
    timed = compare({"dense": _dense_pte(state, batch), "candidate": path}, batch, rounds=state.latency_runs, runs=1,
                    threads=1)
    return timed["dense"]["median_ms"] / timed["candidate"]["median_ms"]


def _cost(state: ChannelState, budget) -> tuple[Callable[[float], bool], float]:
    """(does a measured value fit, the absolute limit) of ``budget``."""
    if kind_of(budget) == "sparsity":
        return (lambda v: v >= float(budget) - 1e-9), float(budget)
    limit = budget.limit(dense_value(state, budget)) if budget.relative else float(budget)
    return (lambda v: v <= limit), limit


def dense_value(state: ChannelState, budget: Budget) -> float:
    """The input model's value of ``budget``'s quantity (measured once)."""
    key = ("dense", budget.quantity)
    if key not in state.cache:
        state.cache[key] = state.dense.get(budget.kind) or measure(state, state.model, budget)
    return state.cache[key]


def _shifted(vector: dict, bounds: dict, t: float) -> dict:
    return {p: min(max(s + t, bounds[p][0]), bounds[p][1]) for p, s in vector.items()}


@dataclass
class Calibrated:
    vector: dict
    shift: float
    measured: float
    widened: bool  # some layers had to leave their ranges


def _tensors(model: nn.Module) -> int:
    """Numbers an FP32 ONNX file stores: parameters and floating-point buffers (BatchNorm statistics)."""
    return param_count(model) + sum(b.numel() for b in model.buffers() if b.is_floating_point())


def _predicted_bytes(budget) -> bool:
    """FP32 ONNX bytes are the input model's non-weight bytes plus 4 per stored number (checked by export)."""
    return isinstance(budget, Budget) and budget.kind == "size" and budget.precision == "fp32"


def _value(state: ChannelState, vector: dict, budget, depth: int, exact: bool) -> float:
    """``budget``'s quantity on the model pruned by ``vector`` (cached per set of widths); FP32 size not ``exact``:
    predicted from the stored numbers and the input model's other bytes."""
    small, widths = pruned_copy(state, state.model, vector, budget, depth=depth)
    key = (str(budget) if isinstance(budget, Budget) else "sparsity", exact, *_shape_key(small, widths))
    if key not in state.cache:
        if exact or not _predicted_bytes(budget):
            state.cache[key] = measure(state, small, budget)
        else:
            state.cache[key] = dense_value(state, budget) - 4 * _tensors(state.model) + 4 * _tensors(small)
    return state.cache[key]


def calibrate(state: ChannelState, vector: dict, budget, depth: int = 0) -> Calibrated:
    """Shift ``vector`` by one common amount so the pruned model fits ``budget`` with the least pruning.

    FP32 ONNX size is bisected on the file size predicted from the stored numbers (the graph's other bytes
    measured once on the input model's export), then the chosen model is exported and measured; should the
    real file exceed the budget, the shift grows until it fits. Every other quantity is measured at every step.
    """
    fits, limit = _cost(state, budget)
    predict = _predicted_bytes(budget)
    align(state, budget, depth)

    def value(v: dict, exact: bool = not predict) -> float:
        return _value(state, v, budget, depth, exact)

    inside = dict(state.ranges)
    widened = {p: ((0.0, 0.0) if hi == 0.0 else (0.0, CEILING)) for p, (lo, hi) in state.ranges.items()}
    bounds, wide = inside, False
    if not fits(value(_shifted(vector, inside, 1.0))):
        bounds, wide = widened, True
        if not fits(value(_shifted(vector, widened, 1.0))):
            _unreachable(budget, value(_shifted(vector, widened, 1.0), exact=True), rounding(state, budget, depth),
                         depth)
    elif fits(value(_shifted(vector, inside, -1.0))):
        bounds, wide = widened, True  # looser than the strategy's minimum: prune less than its ranges allow
        if fits(value(_shifted(vector, widened, -1.0))):
            v = _shifted(vector, widened, -1.0)
            return Calibrated(v, -1.0, value(v, exact=True), True)
    lo_t, hi_t = -1.0, 1.0
    for _ in range(STEPS.get(kind_of(budget), DEFAULT_STEPS) if not predict else DEFAULT_STEPS):
        mid = 0.5 * (lo_t + hi_t)
        if fits(value(_shifted(vector, bounds, mid))):
            hi_t = mid
        else:
            lo_t = mid
    measured = value(_shifted(vector, bounds, hi_t), exact=True)
    for _ in range(6 if predict else 0):  # the real file is a little larger than predicted: prune a bit more
        if fits(measured):
            break
        hi_t = 0.5 * (hi_t + 1.0)
        measured = value(_shifted(vector, bounds, hi_t), exact=True)
    return Calibrated(_shifted(vector, bounds, hi_t), hi_t, measured, wide)


def _unreachable(budget, best: float, round_to: int, depth: int = 0):
    what = kind_of(budget)
    shown = f"{best:.4f}" if what == "sparsity" else budget.describe(best)
    blocks = f", {depth} residual block(s) removed" if depth else ""
    rounded = f", kept widths multiples of {round_to}; round_to=1 allows odd widths" if round_to > 1 else ""
    raise ConfigError(f"budget {budget} cannot be met: the {'largest' if what == 'sparsity' else 'smallest'} "
                      f"reachable {what} is {shown} (every layer at {CEILING:.0%} of its channels removed"
                      f"{blocks}{rounded})")


def strategy_vectors(state: ChannelState, names, budget, depth: int = 0) -> dict[str, dict]:
    """Each strategy of ``names`` calibrated to ``budget`` with ``depth`` blocks removed (shared by every
    criterion): name -> vector.

    What the calibration found (shift, measured value, whether layers left their ranges) is kept in
    ``state.calibrated[(str(budget), name, depth)]`` for the candidates' records.
    """
    out = {}
    for name in names:
        c = calibrate(state, strategies_lib.build(name, state.ranges, state.roles), budget, depth)
        _, limit = _cost(state, budget)
        state.calibrated[(str(budget), name, depth)] = {
            "budget": str(budget), "limit": limit, "shift": round(c.shift, 6), "measured": c.measured,
            "widened": c.widened, "dropped_blocks": state.blocks[:depth], "round_to": rounding(state, budget, depth)}
        out[name] = c.vector
    return out


__all__ = ["CHANNEL_RANGES", "ChannelState", "Calibrated", "prepare", "rounding", "align", "pruned_copy", "measure",
           "calibrate", "strategy_vectors", "deploy_metrics", "speedup_warning"]

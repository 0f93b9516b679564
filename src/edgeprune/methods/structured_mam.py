"""Mix-and-Match at channel granularity: the ten strategies as per-layer channel fractions, calibrated to a
budget measured on the pruned model (ONNX Runtime latency, ONNX file bytes, MACs, parameters or sparsity).

The ranges come from the layer roles exactly as for weights, with channel-sized defaults
(:data:`CHANNEL_RANGES`, overridable through ``range_rules``). Every strategy is moved by ONE common shift
``t`` (each layer ``clip(s + t, lo, hi)``, so it keeps its shape), found by bisection on the measured
quantity: the least pruning whose measured cost fits the budget. If the budget cannot be met inside the
ranges, layers may leave them (``[0, CEILING]``); if it cannot be met even then, the error names the
smallest reachable value. Channel counts depend on the fractions only, never on the criterion, so one
calibration serves all three criteria; measurements are cached per set of widths.

A latency budget (``latency_table``, default; in any runtime) is bisected on a latency table instead
(:mod:`edgeprune.select.latency_table`: every layer timed on the budget's device at a few widths, an additive model
fitted to whole-model timings, cached), whose proposal a longer timing of the pruned model confirms; a miss or a
proposal far inside the limit rescales the table to that timing and bisects again.

Depth too (``drop_blocks``): a candidate may first lose the ``k`` residual blocks of least influence
(:mod:`edgeprune.surgery.depth`, :mod:`edgeprune.scores.blocks`), removing their operators, which channel removal
cannot; its channel strategy is then calibrated to the budget with those blocks gone.
"""

from __future__ import annotations

import copy
import math
import random
import warnings
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from edgeprune import ranges as ranges_lib
from edgeprune import roles as roles_lib
from edgeprune import scores as scores_lib
from edgeprune import strategies as strategies_lib
from edgeprune.devices import HostDevice
from edgeprune.errors import ConfigError
from edgeprune.export.onnx import NotExpressible
from edgeprune.export.ort_latency import channel_block
from edgeprune.measure import macs
from edgeprune.measure.budget import Budget, kind_of
from edgeprune.methods.base import optional_parts
from edgeprune.scores.blocks import block_influence
from edgeprune.select import allocation, latency_table
from edgeprune.select.meter import Meter, predictable, speedup_warning
from edgeprune.surgery import depth as depth_lib
from edgeprune.surgery import heads as heads_lib
from edgeprune.surgery.ratios import prune_channels
from edgeprune.surgery.structure import StructurePlan, fractions_from_params
from edgeprune.surgery.structure import plan as plan_structure

CEILING = 0.9  # a layer never loses more than this fraction of its channels
STEPS = {"latency": 7, "size": 8}  # bisection steps per measured kind (others: DEFAULT_STEPS)
DEFAULT_STEPS = 12
CONFIRMATIONS = 4  # latency: times the bisection's choice is re-timed (longer) and, if it misses, pruned further
CLOSE = 0.05  # a table's proposal confirmed within this fraction below the limit is taken
MISS_MARGIN = 0.03  # after misses in a row, a table's next proposal aims this much lower per miss
MISS_BUMPS = 10  # after a miss, at most this many steps of MISS_MARGIN lower until a proposal prunes more
LATENCY_AWARE = "latency_aware"  # the strategy latency-aware allocation adds to an ONNX Runtime latency budget's ten
LATENCY_AWARE_BLOCKS = "latency_aware_blocks"  # the same knapsack choosing residual blocks too (drop_blocks > 0)
TABLE_CANDIDATES = 12  # pruned copies timed whole when a latency table is built (half fit it, half check it)

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
    structure: StructurePlan
    scores: dict  # criterion -> per-weight scores (None: magnitude, read from the weights)
    meter: Meter  # measures budgets on pruned copies of the input model (its example, its dense figures)
    round_to: int | str = "auto"
    deploy: bool = True  # measure every candidate's ONNX bytes and ONNX Runtime latency
    blocks: list = field(default_factory=list)  # removable residual blocks, least influence first
    cache: dict = field(default_factory=dict)  # (budget kind, widths) -> measured value
    calibrated: dict = field(default_factory=dict)  # (budget text, strategy, blocks removed) -> what calibration found
    warned: set = field(default_factory=set)  # the notes of parts kept whole already warned about
    rounded: dict = field(default_factory=dict)  # (budget text, blocks removed) -> the width multiple "auto" chose
    latency_table: bool = True  # latency budgets proposed from a latency table
    tables: dict = field(default_factory=dict)  # (device, batch, runtime) -> LatencyTable
    batches: list | None = None  # calibration batches (latency-aware allocation's Taylor importance)
    refit: list | None = None  # calibration inputs of the reconstruction after removal (None: no reconstruction)

    @property
    def criteria(self) -> list[str]:  # those that could score this model
        return list(self.scores)

    @property
    def model(self) -> nn.Module:  # the input model (calibration prunes copies of it)
        return self.meter.model

    @property
    def example(self) -> torch.Tensor:
        return self.meter.example

    @property
    def dense(self) -> dict:  # the input model's params, MACs, prunable weights (relative budgets, sparsity)
        return self.meter.dense


def prepare(model: nn.Module, data, example: torch.Tensor, options) -> ChannelState:
    """Roles, channel ranges, the model's structure and each criterion's scores, computed once."""
    split = heads_lib.split_attention(model, copied=True)  # as it is pruned: nn.MultiheadAttention with separate q/k/v
    roles = roles_lib.classify(split, example)
    rules = ranges_lib.RangeRules.build({**CHANNEL_RANGES, **options.range_rules})
    ranges = ranges_lib.rules(roles, rules)
    keep = frozenset(e.module_name for e in roles.prunable() if e.role == "patch_embed")
    structure = plan_structure(split, example, keep_embedding=keep)
    if rules.residual is not None:
        ranges = _residual_ranges(ranges, roles, structure, rules)
    deepest = max(options.drop_blocks)
    aware = getattr(options, "latency_aware", False) and data is not None  # its Taylor importance needs data
    needs_data = deepest > 0 or aware or any(c != "magnitude" for c in options.criteria)
    batches = scores_lib.calibration_batches(data.train, options.calib_batches, options.calib_batch_size) if needs_data else None
    scores = optional_parts(options.criteria, lambda c: None if c == "magnitude" else scores_lib.compute(c, split, batches),
                            "criterion", need_one=True)
    meter = Meter(model, example, options.latency_runs)
    return ChannelState(roles, ranges, structure, scores, meter, options.round_to,
                        _deploy_metrics(meter, options), blocks=_ranked_blocks(split, example, batches, deepest),
                        latency_table=getattr(options, "latency_table", True), batches=batches)


def _deploy_metrics(meter: Meter, options) -> bool:
    """Whether records carry deploy metrics: every candidate is timed beside the input model's ONNX file, exported
    here, before anything is trained. A model ONNX cannot express is refused where the user asked for the metrics; by
    default they are left out with a one-line warning naming the operator, and the call goes on. Any other export
    refusal (a forward that fixes the batch) stands."""
    if not options.deploy_metrics:
        return False
    try:
        meter.dense_onnx()
    except NotExpressible as exc:
        if "deploy_metrics" in options.model_fields_set:
            raise
        warnings.warn(f"deploy metrics (ONNX bytes and latency) are left out: {exc}", UserWarning, stacklevel=3)
        return False
    return True


def _residual_ranges(ranges: dict, roles: roles_lib.RoleTable, structure: StructurePlan, rules) -> dict:
    """``ranges`` with the layers writing a residual stream (not kept whole) at ``rules.residual``."""
    depth = {e.param_name: e.depth for e in roles.prunable()}
    return {p: (rules.range_for("residual", depth[p]) if p[: -len(".weight")] in structure.residual and hi > 0 else (lo, hi))
            for p, (lo, hi) in ranges.items()}


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


Depth = int | tuple[str, ...]  # residual blocks removed: the first k of ``state.blocks``, or these by name


def removed_blocks(state: ChannelState, depth: Depth) -> tuple[str, ...]:
    """The residual blocks ``depth`` removes."""
    return tuple(depth) if isinstance(depth, tuple) else tuple(state.blocks[:depth])


def rounding(state: ChannelState, budget, depth: Depth = 0) -> int:
    """The multiple kept widths are rounded to under ``budget`` with ``depth`` blocks removed: ``round_to``, or for
    "auto" ONNX Runtime's channel block under every budget (odd widths save MACs, parameters and bytes but little
    time; ExecuTorch's XNNPACK has no block of its own we know, so it gets the same). A budget the block cannot
    reach gets a finer multiple (:func:`align`)."""
    if state.round_to != "auto":
        return state.round_to
    return state.rounded.get((str(budget), depth), channel_block())


def _is_latency(budget) -> bool:
    return isinstance(budget, Budget) and budget.kind == "latency"


def align(state: ChannelState, budget, depth: Depth = 0) -> int:
    """For round_to="auto": the coarsest of ONNX Runtime's channel block, its half, quarter... down to 1 at which
    ``budget`` can be met (every layer at :data:`CEILING`), kept for :func:`rounding`, with a warning when it is
    finer than the block. Under a latency budget too: finer widths save less time per MAC, but where the block stops
    a narrow layer at one block (ResNet-20's 16-wide stage), they are what reaches a tight budget without removing
    more blocks, and the measurement says whether they do."""
    key = (str(budget), depth)
    if state.round_to != "auto" or key in state.rounded:
        return rounding(state, budget, depth)
    block = multiple = channel_block()
    fits, _ = state.meter.limit(budget)
    most = {p: 0.0 if hi == 0.0 else CEILING for p, (_, hi) in state.ranges.items()}
    while multiple > 1:
        state.rounded[key] = multiple
        if fits(_value(state, most, budget, depth, exact=True)):
            break
        multiple //= 2
    state.rounded[key] = multiple
    if multiple < block:
        warnings.warn(f"budget {budget} cannot be met with kept widths multiples of {block} (ONNX Runtime's channel "
                      f"block){f' and {len(removed_blocks(state, depth))} residual block(s) removed' if depth else ''}: "
                      f"kept widths are multiples "
                      f"of {multiple}, which ONNX Runtime runs slower per MAC", UserWarning, stacklevel=3)
    return multiple


def pruned_copy(state: ChannelState, model: nn.Module, vector: dict, budget, criterion: str = "magnitude",
                depth: Depth = 0):
    """A copy of ``model`` with the channels of strategy ``vector`` ("<module>.weight" -> fraction) removed,
    kept widths rounded as :func:`rounding` says for ``budget``, and the residual blocks ``depth`` removes (an int:
    that many of least influence) replaced by the identity."""
    small = heads_lib.split_attention(copy.deepcopy(model))
    widths = prune_channels(small, state.example, state.structure, fractions_from_params(vector),
                            state.scores.get(criterion), round_to=rounding(state, budget, depth))
    _warn_kept_whole(state, widths.skipped)
    depth_lib.drop_blocks(small, list(removed_blocks(state, depth)))
    return small, widths


def reference(state: ChannelState) -> nn.Module:
    """The input model as :func:`pruned_copy` sees it before removing anything (same module names)."""
    return heads_lib.split_attention(state.model, copied=True)


def after_blocks(state: ChannelState, pruned: nn.Module, depth: Depth) -> list[str]:
    """The layers of ``pruned`` that run after its removed residual blocks (their inputs changed)."""
    return depth_lib.downstream(pruned, list(removed_blocks(state, depth)), state.example[:1]) if depth else []


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

def deploy_metrics(state: ChannelState, model: nn.Module, widths: dict) -> dict:
    """FP32 and INT8 (dynamic) ONNX bytes and ONNX Runtime latency (1 thread, batch 1 and 32) of ``model``,
    with the input model's and the paired speed-ups (:meth:`Meter.deploy`); measured once per set of widths
    (fine-tuning changes neither)."""
    if not state.deploy:
        return {}
    key = ("deploy", *_shape_key(model, widths))
    if key not in state.cache:
        state.cache[key] = state.meter.deploy(model)
    out = dict(state.cache[key])
    warning = speedup_warning({**out, "macs": macs(model, state.example).dense}, state.dense["macs"])
    if warning:
        out["speedup_warning"] = warning
    out["dense"] = state.meter.dense_deploy()
    return out


def _shifted(vector: dict, bounds: dict, t: float) -> dict:
    return {p: min(max(s + t, bounds[p][0]), bounds[p][1]) for p, s in vector.items()}


@dataclass
class Calibrated:
    vector: dict
    shift: float | None  # None: not a shifted strategy (latency-aware allocation)
    measured: float
    widened: bool  # some layers had to leave their ranges
    depth: Depth  # the residual blocks removed (latency-aware allocation with blocks: the ones it chose)


def _value(state: ChannelState, vector: dict, budget, depth: Depth, exact: bool) -> float:
    """``budget``'s quantity on the model pruned by ``vector`` (cached per set of widths); FP32 size not ``exact``:
    predicted from the stored numbers and the input model's other bytes."""
    small, widths = pruned_copy(state, state.model, vector, budget, depth=depth)
    key = (str(budget) if isinstance(budget, Budget) else "sparsity", exact, *_shape_key(small, widths))
    if key not in state.cache:
        state.cache[key] = state.meter.value(small, budget) if exact else state.meter.predicted(small, budget)
    return state.cache[key]


def _predicted_sparsity(state: ChannelState, vector: dict, budget, depth: Depth) -> float:
    """The sparsity of the model ``vector`` prunes, from the widths its layers will have (no pruned copy): the
    convolution and linear weights removed over the input model's prunable weights."""
    ops = _ops(state)
    widths = latency_table.predicted_widths(ops, state.structure, fractions_from_params(vector),
                                            rounding(state, budget, depth), _split_model(state), removed_blocks(state, depth))
    removed = sum(_weights(op, op.cin, op.cout) - (_weights(op, *widths[n]) if n in widths else 0)
                  for n, (op, _) in ops.items())
    return removed / max(state.meter.dense["prunable"], 1)


def _weights(op: latency_table.Op, cin: int, cout: int) -> int:
    """The weight entries of the layer ``op`` with ``cin`` input and ``cout`` output channels."""
    kernel = math.prod(op.kernel) if op.kernel else 1
    return cin * cout // op.at(cin, cout).groups * kernel


def calibrate(state: ChannelState, vector: dict, budget, depth: Depth = 0, predict_sparsity: bool = True) -> Calibrated:
    """Shift ``vector`` by one common amount so the pruned model fits ``budget`` with the least pruning.

    FP32 ONNX size is bisected on the file size predicted from the stored numbers (the graph's other bytes
    measured once on the input model's export), then the chosen model is exported and measured; should the
    real file exceed the budget, the shift grows until it fits. An ONNX Runtime latency is bisected on the
    latency table's prediction and confirmed by timing (:func:`_confirm`). A sparsity is bisected on the
    weights the kept widths leave (:func:`_predicted_sparsity`), then measured on the pruned model; should they differ
    (pruning left a group whole), on measurements. Every other quantity is measured at every step.
    """
    fits, limit = state.meter.limit(budget)
    sparsity = kind_of(budget) == "sparsity"
    predict = predictable(budget) or (sparsity and predict_sparsity)
    align(state, budget, depth)
    table = _table(state, budget)
    scale = [1.0]  # the table's correction, from its last confirmed proposal

    def value(v: dict, exact: bool = not predict and table is None) -> float:
        if table is not None and not exact:
            return scale[0] * _table_value(state, table, v, budget, depth)
        if sparsity and not exact:
            return _predicted_sparsity(state, v, budget, depth)
        return _value(state, v, budget, depth, exact)

    inside = dict(state.ranges)
    widened = {p: ((0.0, 0.0) if hi == 0.0 else (0.0, CEILING)) for p, (lo, hi) in state.ranges.items()}
    bounds, wide = inside, False
    if not fits(value(_shifted(vector, inside, 1.0))):
        bounds, wide = widened, True
        if not fits(value(_shifted(vector, widened, 1.0))):
            most = value(_shifted(vector, widened, 1.0), exact=True)  # measured: a table's prediction never refuses
            if not fits(most):
                _unreachable(budget, most, rounding(state, budget, depth), depth,
                             _unthinnable(state, budget) + _kept_whole(state), limit)
    elif fits(value(_shifted(vector, inside, -1.0))):
        bounds, wide = widened, True  # looser than the strategy's minimum: prune less than its ranges allow
        if fits(value(_shifted(vector, widened, -1.0))):
            v = _shifted(vector, widened, -1.0)
            return Calibrated(v, -1.0, value(v, exact=True), True, depth)

    def bisect() -> float:
        lo_t, hi_t = -1.0, 1.0
        steps = DEFAULT_STEPS if predict or table is not None else STEPS.get(kind_of(budget), DEFAULT_STEPS)
        for _ in range(steps):
            mid = 0.5 * (lo_t + hi_t)
            if fits(value(_shifted(vector, bounds, mid))):
                hi_t = mid
            else:
                lo_t = mid
        return hi_t

    if table is not None:
        def propose() -> tuple[dict, float, Depth]:
            t = bisect()
            return _shifted(vector, bounds, t), t, depth

        hi_t, _, measured, _, _ = _confirm(state, table, budget, propose, scale)
        if fits(measured):
            return Calibrated(_shifted(vector, bounds, hi_t), hi_t, measured, wide, depth)
    else:
        hi_t = bisect()
    measured = value(_shifted(vector, bounds, hi_t), exact=True)
    if sparsity and predict and abs(measured - value(_shifted(vector, bounds, hi_t))) > 1e-6:
        # pruning did not give the widths predicted (a group left whole): measure every step
        return calibrate(state, vector, budget, depth, predict_sparsity=False)
    for _ in range(6 if predict and not sparsity else 0):  # the real file is a little larger than predicted: prune more
        if fits(measured):
            break
        hi_t = 0.5 * (hi_t + 1.0)
        measured = value(_shifted(vector, bounds, hi_t), exact=True)
    for _ in range(CONFIRMATIONS if _is_latency(budget) else 0):  # a fresh, longer timing: prune more until it fits
        small, _ = pruned_copy(state, state.model, _shifted(vector, bounds, hi_t), budget, depth=depth)
        measured = state.meter.value(small, budget, confirm=True)
        if fits(measured) or hi_t >= 1.0:
            break
        hi_t = 0.5 * (hi_t + 1.0)
    return Calibrated(_shifted(vector, bounds, hi_t), hi_t, measured, wide, depth)


# ------------------------------------------------------------------------------------------ latency tables

def uses_table(state: ChannelState, budget) -> bool:
    """Whether calibration to ``budget`` proposes from a latency table (a latency, tables on)."""
    return bool(state.latency_table and _is_latency(budget))


def has_table(state: ChannelState, budget) -> bool:
    """Whether ``budget`` has a latency table (built now if it is to have one): latency-aware allocation needs it."""
    return _table(state, budget) is not None


def _table(state: ChannelState, budget) -> latency_table.LatencyTable | None:
    """The latency table of ``budget``'s device, batch and runtime, or None when the budget is not a latency, tables
    are off, or no table could be built for this model (said once; calibration then times whole models)."""
    if not uses_table(state, budget):
        return None
    try:
        return table_of(state, budget.device, budget.batch, runtime=budget.runtime)
    except Exception as exc:  # noqa: BLE001  (any failure: the whole-model bisection still calibrates the budget)
        state.latency_table = False
        warnings.warn(f"no latency table for {type(state.model).__name__} ({type(exc).__name__}: "
                      f"{' '.join(str(exc).split())[:200]}); {budget} is calibrated on whole-model timings",
                      UserWarning, stacklevel=2)
        return None


def table_of(state: ChannelState, device: str | None, batch: int = 1, progress=None,
             rebuild: bool = False, runtime: str = "onnxruntime") -> latency_table.LatencyTable:
    """The latency table of the input model on ``device`` (a name; None: this machine, one thread) at ``batch`` in
    ``runtime``: read from the cache, else built (:data:`TABLE_CANDIDATES` pruned copies fit and check it) and
    cached."""
    key = (device, batch, runtime)
    if key not in state.tables:
        timer = state.meter.device(device) if device else HostDevice(threads=1)
        budget = Budget(1.0, "latency", relative=True, batch=batch, device=device, runtime=runtime)
        state.tables[key] = latency_table.cached(_split_model(state), state.example, timer, state.structure,
                                                 lambda: _table_candidates(state, budget), batch=batch,
                                                 progress=progress, rebuild=rebuild, runtime=runtime)
    return state.tables[key]


def _split_model(state: ChannelState) -> nn.Module:
    """The input model as calibration prunes it (attention split into q/k/v), made once."""
    if "split" not in state.cache:
        state.cache["split"] = heads_lib.split_attention(copy.deepcopy(state.model))
    return state.cache["split"]


def _allocation_importance(state: ChannelState) -> tuple[dict, dict]:
    """Latency-aware allocation's units (coupled groups, and attentions losing whole heads) with their importance,
    and the attentions as :func:`latency_table.kept_heads` gives them (see :func:`calibrate_latency_aware`); once."""
    if "importance" not in state.cache:
        split = _split_model(state)
        taylor = scores_lib.compute("snip", split, state.batches) if state.batches else None  # |sum_b dL_b/dw * w|
        heads = latency_table.kept_heads(state.structure, {}, split)
        importance = allocation.channel_importance(state.structure, split, taylor, relative=taylor is None)
        projections = {n for names, _, _ in heads.values() for n in names}
        importance = {g: v for g, v in importance.items() if not projections & set(state.structure.groups[g])}
        importance.update(allocation.head_importance(heads, split, taylor, relative=taylor is None))
        state.cache["importance"] = importance, heads
    return state.cache["importance"]


def _ops(state: ChannelState) -> dict:
    """The input model's convolution and linear layers as it calls them (:func:`latency_table.census`), found once."""
    if "ops" not in state.cache:
        state.cache["ops"] = latency_table.census(_split_model(state), state.example)
    return state.cache["ops"]


def _table_candidates(state: ChannelState, budget) -> list[nn.Module]:
    """Pruned copies a table is fitted and checked on: the strategies at shifts spread over [-1, 1], inside their
    ranges and widened, so the check covers what calibration proposes."""
    rng = random.Random(0)
    names = strategies_lib.names_for(state.roles)
    widened = {p: ((0.0, 0.0) if hi == 0.0 else (0.0, CEILING)) for p, (lo, hi) in state.ranges.items()}
    half = TABLE_CANDIDATES // 2
    # stratified shifts, each half (fit, check) over the whole of [-1, 1]
    shifts = [-1.0 + 2.0 * (j + rng.random()) / half for _ in range(2) for j in rng.sample(range(half), half)]
    out = []
    for i, shift in enumerate(shifts):
        vector = strategies_lib.build(names[i % len(names)], state.ranges, state.roles)
        bounds = widened if i % 3 == 2 else state.ranges
        out.append(pruned_copy(state, state.model, _shifted(vector, bounds, shift), budget)[0])
    return out


def _table_value(state: ChannelState, table, vector: dict, budget, depth: Depth) -> float:
    """``budget``'s latency of the model ``vector`` prunes, as the table predicts it (a relative budget: the input
    model's measured latency times the predicted ratio)."""
    split, ops = _split_model(state), _ops(state)
    widths = latency_table.predicted_widths(ops, state.structure, fractions_from_params(vector),
                                            rounding(state, budget, depth), split, removed_blocks(state, depth))
    if not budget.relative:
        return table.predict(widths)
    dense = table.predict(latency_table.widths_in(ops))
    return state.meter.dense_value(budget) * table.predict(widths) / dense


def _confirm(state: ChannelState, table, budget, propose, scale: list) -> tuple:
    """Time the table's proposal (a confirming, longer timing); when it misses the limit, or fits more than
    :data:`CLOSE` below it, rescale the table to that timing and propose again, up to :data:`CONFIRMATIONS` timings.
    ``propose()`` gives (vector, how much it prunes, blocks removed) under the current ``scale[0]``; after a miss the
    table aims lower until a proposal prunes more (:data:`MISS_BUMPS`). Returns (how much, vector, measured, blocks
    removed) of the least-pruned proposal that fit, else of the last, and the number of timings."""
    fits, limit = state.meter.limit(budget)
    best = last = None
    misses = timed = 0
    vector, pruning, depth = propose()
    while timed < CONFIRMATIONS:
        timed += 1
        small, _ = pruned_copy(state, state.model, vector, budget, depth=depth)
        # the fast exporter's file: ONNX Runtime runs it as fast as the shipped one, which the deploy metrics time
        measured = state.meter.value(small, budget, confirm=True, shipped=False)
        last = (pruning, vector, measured, depth)
        if fits(measured) and (best is None or pruning < best[0]):
            best = last
        if fits(measured) and measured >= limit * (1 - CLOSE):
            break
        predicted = _table_value(state, table, vector, budget, depth)
        misses = 0 if fits(measured) else misses + 1  # after a second miss in a row, aim a little lower each time
        scale[0] = (measured / predicted if predicted > 0 else scale[0]) * (1 + MISS_MARGIN * max(misses - 1, 0))
        vector, proposal, depth = propose()
        for _ in range(MISS_BUMPS):  # a miss must prune more: the rescaled table may round to the same widths
            if fits(measured) or proposal > pruning:
                break
            scale[0] *= 1 + MISS_MARGIN
            vector, proposal, depth = propose()
        if proposal == pruning or (best is not None and proposal >= best[0]):
            break
        pruning = proposal
    return (best or last) + (timed,)


def calibrate_latency_aware(state: ChannelState, budget, depth: Depth = 0, max_blocks: int = 0) -> Calibrated:
    """The ``latency_aware`` strategy: channels removed where they cost least importance per millisecond saved
    (:func:`edgeprune.select.allocation.allocate` on the latency table), within the layers' ranges (widened to
    :data:`CEILING` if the budget needs it), until the table predicts the limit; confirmed by timing as the ten
    strategies are. Importance: first-order Taylor ``|w * dL/dw|`` over the calibration batches (as Torch-Pruning's
    GroupTaylorImportance and HALP), comparable across layers; without data, the weight magnitude relative to each
    layer's mean (:func:`allocation.channel_importance`).

    ``max_blocks`` > 0 (:data:`LATENCY_AWARE_BLOCKS`): up to that many of the removable residual blocks are units of
    the same knapsack, so the allocation itself chooses how deep, and which blocks, against how thin."""
    table = _table(state, budget)
    if table is None:
        raise ConfigError(f"strategy {LATENCY_AWARE!r} needs a latency budget and latency_table=True, "
                          f"got budget {budget}")
    fits, limit = state.meter.limit(budget)
    r = align(state, budget, depth if not max_blocks else max_blocks)
    split, ops = _split_model(state), _ops(state)
    importance, heads = _allocation_importance(state)
    blocks = allocation.internal_units(state.blocks, state.structure, importance, heads) if max_blocks else {}
    ceilings = {u: min((state.ranges.get(f"{m}.weight", (0.0, 0.0))[1]
                        for m in (heads[u][0] if u in heads else state.structure.groups[u])), default=0.0)
                for u in importance}
    dense = table.predict(latency_table.widths_in(ops))
    reference = state.meter.dense_value(budget) if budget.relative else None
    scale, widened = [1.0], [False]

    def propose() -> tuple[dict, int, Depth]:
        target = limit / scale[0] * (dense / reference if reference else 1.0)  # in the table's milliseconds
        chosen = allocation.allocate(table, ops, state.structure, split, importance, ceilings, target, r,
                                     removed_blocks(state, depth), heads, blocks, max_blocks)
        if chosen.ms > target:  # not within the ranges: layers may leave them
            widened[0] = True
            chosen = allocation.allocate(table, ops, state.structure, split, importance,
                                         dict.fromkeys(importance, CEILING), target, r, removed_blocks(state, depth),
                                         heads, blocks, max_blocks)
        kept, heads_kept = chosen.channels, chosen.heads
        channels = {g: state.structure.channels[state.structure.groups[g][0]] for g in kept}
        vector = {p: 0.0 for p in state.ranges}
        vector.update({f"{m}.weight": max(0.0, 1.0 - (k + 0.5) / channels[g]) for g, k in kept.items()
                       for m in state.structure.groups[g] if f"{m}.weight" in vector})
        vector.update({f"{n}.weight": (heads[a][2] - k) / heads[a][2] for a, k in heads_kept.items()
                       for n in heads[a][0] if f"{n}.weight" in vector})
        gone = tuple(chosen.blocks) if max_blocks else depth
        if max_blocks and state.round_to == "auto":
            state.rounded[(str(budget), gone)] = r
        inside = {u for b in chosen.blocks for u in blocks[b]}
        pruning = sum(total - (0 if u in inside else k) for u, k, total in
                      [*((g, k, channels[g]) for g, k in kept.items()), *((a, k, heads[a][2]) for a, k in heads_kept.items())])
        return vector, pruning, gone

    _, vector, measured, gone, timed = _confirm(state, table, budget, propose, scale)
    if not fits(measured):
        raise ConfigError(f"its last of {timed} proposal(s) timed measured {budget.describe(measured)}, over the limit "
                          f"{budget.describe(limit)}")
    return Calibrated(vector, None, measured, widened[0], gone)


class Unreachable(ConfigError):
    """A budget no calibration can meet; ``best`` is the nearest value the model reaches."""

    def __init__(self, message: str, best: float):
        super().__init__(message)
        self.best = best


def _unthinnable(state: ChannelState, budget) -> str:
    """Where a MACs budget fails on parts channel pruning cannot thin: their share of the MACs and what they are."""
    if kind_of(budget) != "macs":
        return ""
    report = macs(state.model, state.meter.example)
    if not report.fixed:
        return ""
    parts = []
    for name in report.fixed:
        module = state.model.get_submodule(name)
        what = f"'{name or 'the model'}' ({type(module).__name__})"
        parts.append(f"the recurrent layer {what}, whose hidden width is kept" if isinstance(module, nn.RNNBase) else
                     f"convolutions run outside any conv layer by {what} (F.conv2d on a bare parameter)")
    share = sum(report.fixed.values()) / report.dense
    return f"; {share:.0%} of the dense MACs are in parts channel pruning cannot thin: {'; '.join(parts)}"


def _kept_whole(state: ChannelState) -> str:
    """What structured pruning kept whole of the model so far (the warnings' notes), as the end of a refusal."""
    return f"; {'; '.join(sorted(state.warned))}" if state.warned else ""


def _unreachable(budget, best: float, round_to: int, depth: int = 0, why: str = "", limit: float | None = None):
    what = kind_of(budget)
    if what == "sparsity" and best <= 0.0:
        raise Unreachable(f"budget {budget} cannot be met: structured pruning can remove nothing from this model{why}",
                          best)
    shown = f"{best:.4f}" if what == "sparsity" else budget.describe(best)
    if limit is not None and what != "sparsity" and budget.relative:  # the relative budget in the quantity's units
        shown += f" against a limit of {budget.describe(limit)}"
    blocks = f", {depth} residual block(s) removed" if depth else ""
    rounded = f", kept widths multiples of {round_to}; round_to=1 allows odd widths" if round_to > 1 else ""
    raise Unreachable(f"budget {budget} cannot be met: the {'largest' if what == 'sparsity' else 'smallest'} "
                      f"reachable {what} is {shown} (every layer at {CEILING:.0%} of its channels removed"
                      f"{blocks}{rounded}){why}", best)


SCRATCH = "uniform"  # the scratch baseline's widths: every prunable layer narrowed by one common fraction


def uniform_vector(state: ChannelState, budget) -> dict:
    """One fraction for every layer a strategy may narrow (their ranges ignored), calibrated to ``budget``: the input
    architecture scaled down in width, as a person would before training a smaller model from scratch."""
    ranges = {p: ((0.0, 0.0) if hi == 0.0 else (0.0, CEILING)) for p, (lo, hi) in state.ranges.items()}
    c = calibrate(replace(state, ranges=ranges), {p: 0.0 for p in ranges}, budget)
    _, limit = state.meter.limit(budget)
    state.calibrated[(str(budget), SCRATCH, 0)] = {"budget": str(budget), "limit": limit, "shift": round(c.shift, 6),
                                                   "measured": c.measured, "round_to": rounding(state, budget)}
    return c.vector


def reinitialised(model: nn.Module, seed: int) -> nn.Module:
    """``model`` with fresh weights (every layer's own initialisation; other tensors N(0, 0.02)), in place."""
    torch.manual_seed(seed)
    for module in model.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
        elif not isinstance(module, (nn.Sequential, nn.ModuleList, nn.ModuleDict)):
            with torch.no_grad():
                for p in module.parameters(recurse=False):
                    p.normal_(0.0, 0.02)
    return model


def strategy_vectors(state: ChannelState, names, budget, depth: int = 0) -> dict[str, dict]:
    """Each strategy of ``names`` calibrated to ``budget`` with ``depth`` blocks removed (shared by every
    criterion): name -> vector (``latency_aware`` absent, with a warning, when its proposals never met the budget).

    What the calibration found (shift, measured value, whether layers left their ranges) is kept in
    ``state.calibrated[(str(budget), name, depth)]`` for the candidates' records.
    """
    out = {}
    for name in names:
        if name == LATENCY_AWARE:
            c = _left_out_if_unmet(lambda: calibrate_latency_aware(state, budget, depth), name, budget)
            if c is None:
                continue
        else:
            c = calibrate(state, strategies_lib.build(name, state.ranges, state.roles), budget, depth)
        _record(state, budget, name, c)
        out[name] = c.vector
    return out


def blocks_strategy(state: ChannelState, budget, max_blocks: int) -> tuple[dict, tuple[str, ...]] | None:
    """:data:`LATENCY_AWARE_BLOCKS` calibrated to ``budget``: (its vector, the residual blocks it removes), recorded as
    :func:`strategy_vectors` records; None, with a warning, when its proposals never met the budget."""
    c = _left_out_if_unmet(lambda: calibrate_latency_aware(state, budget, max_blocks=max_blocks),
                           LATENCY_AWARE_BLOCKS, budget)
    if c is None:
        return None
    _record(state, budget, LATENCY_AWARE_BLOCKS, c)
    return c.vector, c.depth


def _left_out_if_unmet(calibrated, name: str, budget) -> Calibrated | None:
    try:
        return calibrated()
    except ConfigError as exc:  # the ten strategies may still meet it: leave this one out
        warnings.warn(f"strategy {name} is left out at {budget}: {exc}", UserWarning, stacklevel=3)
        return None


def _record(state: ChannelState, budget, name: str, c: Calibrated) -> None:
    _, limit = state.meter.limit(budget)
    record = {"budget": str(budget), "limit": limit, "shift": None if c.shift is None else round(c.shift, 6),
              "measured": c.measured, "widened": c.widened, "dropped_blocks": list(removed_blocks(state, c.depth)),
              "round_to": rounding(state, budget, c.depth)}
    if c.shift is None:
        record["importance"] = "taylor" if state.batches else "magnitude"
    table = _table(state, budget)
    if table is not None:  # what proposed the widths, and how well it predicts held-out candidates
        record["latency_table"] = {"key": table.key, "device": table.device.get("name"), "runtime": budget.runtime,
                                   "median_abs_pct": table.error["median_abs_pct"]}
    state.calibrated[(str(budget), name, c.depth)] = record


__all__ = ["CHANNEL_RANGES", "ChannelState", "Calibrated", "prepare", "rounding", "align", "pruned_copy", "calibrate",
           "calibrate_latency_aware", "table_of", "LATENCY_AWARE", "LATENCY_AWARE_BLOCKS", "removed_blocks",
           "strategy_vectors", "blocks_strategy", "deploy_metrics"]

"""Reconvene: structured pruning at initialisation (Eccles, Wong, Varghese, CCGrid 2024).

Pipeline (one pass, before any training):

1. **UPaI** — a PaI criterion (magnitude, random, SNIP, GraSP, SynFlow) scores every Conv/Linear weight of
   the freshly initialised model; one GLOBAL threshold keeps the top (1 − p) fraction
   (:func:`pai_masks`).
2. **Pruning Sensitivity Evaluator** (:func:`evaluate_sensitivity`) — each conv layer's sparsity is
   compared with the global average: by default the unweighted mean of the conv layers' sparsities (or,
   ``weighted=True``, the parameter-weighted one, i.e. ``p``). Layers pruned harder are *insensitive*.
3. **Resilient Layer Rectifier** (:func:`rectify`) — insensitive layers lose output channels physically
   (torch-pruning dependency graph, :mod:`edgeprune.prune.channels`): ``max(1, round(√density × C_out))``
   channels (``width="sqrt"``, the default; ``"density"``: ``round(density × C_out)``) ranked by their
   per-filter score mass survive (``keep="score_mass"``), or only the all-zero
   filters go (``keep="zero_filters"``, lossless). Consumers lose the matching inputs. Layers coupled
   through a residual sum are one *group*: the group's pooled sparsity (all members' weights together)
   is compared with the average (``group_rule="pooled"``; ``"all"`` needs every member insensitive), and
   the group keeps the width rule's channels of its pooled density, ranked by the summed score mass of the members.
   Every layer whose shape changed is re-initialised; sensitive layers keep their unstructured masks,
   sliced where their inputs were removed.
4. Train from scratch with :func:`edgeprune.train.fit` (``masks=`` keeps the remaining masks exact), next
   to the UPaI counterpart at the same ``p`` (:func:`run`).

:func:`generate` is steps 1–3 in one call.
"""

from __future__ import annotations

import copy
import json
import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal, Sequence

import pydantic
import torch
from torch import nn

from edgeprune.config import Config
from edgeprune.errors import ConfigError, check_fraction
from edgeprune.measure.size import prunable_weights
from edgeprune.prune.channels import ChannelGroup, build_graph, coupled_groups, remove_channels
from edgeprune.prune.masks import Masks, apply_masks, global_masks

#: the PaI criteria Reconvene runs on (keys of edgeprune.scores.CRITERIA)
PAI_SCORES = ("synflow", "snip", "grasp", "magnitude", "random")
#: criteria that need calibration batches
DATA_SCORES = ("snip", "grasp")
KEEP_RULES = ("score_mass", "zero_filters")
GROUP_RULES = ("pooled", "all")
WIDTH_RULES = ("density", "sqrt")
REINIT_RULES = ("changed", "all", "none")
CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def check_score(score: str) -> str:
    """ConfigError unless ``score`` is one of :data:`PAI_SCORES`."""
    if score not in PAI_SCORES:
        raise ConfigError(f"unknown score {score!r}; allowed: {', '.join(PAI_SCORES)}")
    return score


def _check_choice(what: str, value: str, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise ConfigError(f"{what} must be one of {', '.join(allowed)}, got {value!r}")
    return value


# ---------------------------------------------------------------------------------------------------
# 1. UPaI: scores and one global mask
# ---------------------------------------------------------------------------------------------------


def pai_masks(
    model: nn.Module,
    example_input: torch.Tensor,
    sparsity: float,
    score: str = "synflow",
    batches=None,
    *,
    seed: int = 0,
    score_options: dict | None = None,
    progress: bool = False,
) -> tuple[dict[str, torch.Tensor], Masks]:
    """(scores, global keep-masks at ``sparsity``) of ``model`` under the PaI criterion ``score``.

    SynFlow runs iteratively towards ``sparsity`` (100 rounds on the exponential schedule unless
    ``score_options={"rounds": n}``) on an all-ones input of ``example_input``'s shape. The model is not
    modified.
    """
    from edgeprune import scores as scores_lib

    sparsity = check_fraction("sparsity", sparsity)
    check_score(score)
    options = dict(score_options or {})
    if score == "synflow":
        options.setdefault("sparsity", sparsity)
        options.setdefault("input_shape", tuple(example_input.shape[1:]))
    if "progress" in scores_lib.REGISTRY[score].options:  # SynFlow's bar over its rounds
        options.setdefault("progress", progress)
    if score in DATA_SCORES and not batches:
        raise ConfigError(f"score {score!r} needs calibration batches (batches=scores.calibration_batches(train, 1, 100))")
    scores = scores_lib.compute(score, model, batches, seed=seed, **options)
    return scores, global_masks(scores, sparsity)


# ---------------------------------------------------------------------------------------------------
# 2. Pruning Sensitivity Evaluator
# ---------------------------------------------------------------------------------------------------


def conv_weight_names(model: nn.Module) -> list[str]:
    """Parameter names of the conv weights (the subject of the structured step), in module order."""
    return [f"{n}.weight" for n, m in model.named_modules() if n and isinstance(m, CONV_TYPES)]


@dataclass
class Sensitivity:
    """PSE verdict: the average the layers are compared with and each conv layer's sparsity."""

    average: float
    weighted: bool
    sparsity: dict[str, float]  # conv weight name -> fraction pruned by the UPaI mask
    insensitive: dict[str, bool]  # conv weight name -> pruned harder than the average

    @property
    def insensitive_layers(self) -> list[str]:
        return [n for n, v in self.insensitive.items() if v]


def evaluate_sensitivity(masks: Masks, conv_layers: Sequence[str], *, weighted: bool = False) -> Sensitivity:
    """Classify each conv layer in ``conv_layers`` (weight names) against the global average sparsity.

    ``weighted=True``: the average is the parameter-weighted sparsity of ALL masked weights (conv and
    linear), i.e. the global target ``p``. ``weighted=False``: the unweighted mean of the conv layers'
    sparsities. A layer is insensitive when its sparsity is strictly greater than the average.
    """
    missing = [n for n in conv_layers if n not in masks]
    if missing:
        raise ConfigError(f"no mask for conv layer {missing[0]!r}")
    if not conv_layers:
        raise ConfigError("no conv layer to evaluate")
    kept = {n: int(m.count_nonzero()) for n, m in masks.items()}  # counted once: masks can hold 10^7 entries
    per_layer = {n: 1.0 - kept[n] / masks[n].numel() for n in conv_layers}
    if weighted:
        total = sum(m.numel() for m in masks.values())
        average = 1.0 - sum(kept.values()) / total
    else:
        average = statistics.fmean(per_layer.values())
    # a tiny tolerance so a layer at exactly the average (up to float rounding) counts as sensitive
    insensitive = {n: s > average + 1e-12 for n, s in per_layer.items()}
    return Sensitivity(average=average, weighted=weighted, sparsity=per_layer, insensitive=insensitive)


# ---------------------------------------------------------------------------------------------------
# 3. Resilient Layer Rectifier
# ---------------------------------------------------------------------------------------------------


def default_reinit(module: nn.Module) -> None:
    """Re-initialise one layer as the zoo CNNs are initialised at their new shape.

    Conv: Kaiming-normal (fan_out, ReLU), zero bias; BatchNorm/GroupNorm: weight 1, bias 0, fresh running
    statistics; Linear and anything else with ``reset_parameters``: PyTorch's default.
    """
    if isinstance(module, CONV_TYPES):
        nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm)):
        if getattr(module, "weight", None) is not None:
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        if hasattr(module, "reset_running_stats"):
            module.reset_running_stats()
    elif hasattr(module, "reset_parameters"):
        module.reset_parameters()


@dataclass
class GroupDecision:
    """What the rectifier did with one coupled group of conv layers."""

    members: list[str]  # conv module names
    channels_before: int
    channels_after: int
    sparsity: float  # pooled UPaI sparsity of the members
    insensitive: bool  # the group's verdict (pooled or all-members rule)
    structured: bool  # output channels were physically removed
    reason: str = ""

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _per_channel(weight_name: str, masks: Masks, scores: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(score mass, kept count) per output channel: sums over each filter's KEPT weights."""
    mask = masks[weight_name]
    kept = mask.reshape(mask.shape[0], -1)
    score = scores[weight_name].reshape(mask.shape[0], -1)
    mass = (score * kept).sum(1).to(torch.float64)
    return mass, kept.count_nonzero(1)


def _widths(candidates, width: str) -> dict[str, int]:
    """Channels each structured group keeps (keyed by its first member), by the ``width`` rule.

    ``density``: ``max(1, round(d × C))`` with d the group's pooled UPaI density.
    ``sqrt``: ``max(1, round(√d × C))``. A layer between two insensitive layers loses inputs as well as
    outputs, so with ``density`` it keeps about d² of its weights (and chains of them collapse to a few
    channels); with ``sqrt`` both sides shrink by √d and it keeps about d, the UPaI layer's budget.
    """
    factor = (lambda d: d) if width == "density" else math.sqrt
    return {d.members[0]: max(1, round(factor(1.0 - d.sparsity) * group.channels)) for group, d in candidates}


def _choose_removed(group: ChannelGroup, members: list[str], masks: Masks, scores, keep: str, k: int | None) -> list[int]:
    """Original output-channel indices the group loses (``k`` channels survive with keep=score_mass)."""
    mass = torch.zeros(group.channels, dtype=torch.float64)
    count = torch.zeros(group.channels, dtype=torch.int64)
    for m in members:
        mm, cc = _per_channel(f"{m}.weight", masks, scores)
        mass += mm
        count += cc
    if keep == "zero_filters":
        removed = torch.nonzero(count == 0).flatten().tolist()
        if len(removed) == group.channels:
            raise ConfigError(
                f"keep=zero_filters would remove every channel of layer {members[0]!r} (all its filters are pruned); "
                "use keep=score_mass or a lower sparsity"
            )
        return removed
    # rank: score mass, then kept weights, then lower index first (stable sort on the reversed keys)
    order = sorted(range(group.channels), key=lambda c: (-float(mass[c]), -int(count[c]), c))
    return sorted(order[k:])


def _slice(mask: torch.Tensor, weight: torch.Tensor, removed: dict | None) -> torch.Tensor:
    """``mask`` with the removed output (dim 0) and input (dim 1) indices dropped to fit ``weight``."""
    if removed:
        for dim, side in ((0, "out"), (1, "in")):
            idx = removed.get(side) or []
            if idx and mask.dim() > dim and mask.shape[dim] != weight.shape[dim]:
                keep = torch.ones(mask.shape[dim], dtype=torch.bool)
                keep[torch.as_tensor(idx, dtype=torch.long)] = False
                mask = mask.index_select(dim, torch.nonzero(keep).flatten())
    if tuple(mask.shape) != tuple(weight.shape):
        raise ConfigError(f"cannot slice a mask of shape {tuple(mask.shape)} to its weight's shape {tuple(weight.shape)}")
    return mask.contiguous()


def rectify(
    model: nn.Module,
    example_input: torch.Tensor,
    masks: Masks,
    scores: dict[str, torch.Tensor],
    *,
    weighted: bool = False,
    keep: str = "score_mass",
    group_rule: str = "pooled",
    width: str = "sqrt",
    reinit: str = "changed",
    reinit_fn: Callable[[nn.Module], None] = default_reinit,
) -> tuple[nn.Module, Masks, dict]:
    """PSE + RLR on ``model`` IN PLACE, given its UPaI ``masks`` and the ``scores`` they came from.

    Returns ``(model, masks, info)``: the physically smaller model, the masks still needed for training
    (sensitive layers' UPaI masks, sliced where their inputs shrank; with ``keep="zero_filters"`` also the
    structurally pruned layers' sliced masks), and a JSON-able report (see :func:`generate`).

    ``reinit``: ``"changed"`` re-initialises every layer whose shape changed (pruned layers, their norms,
    their consumers), ``"all"`` every Conv/Linear/norm layer, ``"none"`` keeps the surviving initial
    weights. Masks are re-applied after re-initialisation, so sensitive layers stay exactly as sparse.
    """
    _check_choice("keep", keep, KEEP_RULES)
    _check_choice("group_rule", group_rule, GROUP_RULES)
    _check_choice("width", width, WIDTH_RULES)
    _check_choice("reinit", reinit, REINIT_RULES)
    convs = [n for n in conv_weight_names(model) if n in masks]
    if not convs:
        raise ConfigError(
            f"model {type(model).__name__} has no convolution layer for Reconvene's structured step; "
            "run the unstructured PaI only (--mode unstructured)"
        )
    t0 = time.perf_counter()
    pse = evaluate_sensitivity(masks, convs, weighted=weighted)
    graph = build_graph(model, example_input)
    groups = coupled_groups(model, example_input, graph=graph)
    sizes = {n: masks[n].numel() for n in convs}

    decisions: list[GroupDecision] = []
    group_of: dict[str, int] = {}
    candidates: list[tuple[ChannelGroup, GroupDecision]] = []
    for group in groups:
        members = [m for m in group.members if f"{m}.weight" in pse.insensitive]
        if not members:
            continue  # a Linear-only group (classifier): not a subject of the structured step
        for m in members:
            group_of[f"{m}.weight"] = len(decisions)
        total = sum(sizes[f"{m}.weight"] for m in members)
        pruned = sum(pse.sparsity[f"{m}.weight"] * sizes[f"{m}.weight"] for m in members)
        pooled = pruned / total
        verdicts = [pse.insensitive[f"{m}.weight"] for m in members]
        insensitive = all(verdicts) if group_rule == "all" else pooled > pse.average + 1e-12
        decision = GroupDecision(members, group.channels, group.channels, pooled, insensitive, False)
        decisions.append(decision)
        if not insensitive:
            decision.reason = "sensitive"
        elif group.protected:
            decision.reason = "produces the model output"
        elif len(members) != len(group.members):
            decision.reason = "coupled with a non-conv layer"
        else:
            decision.structured = True
            candidates.append((group, decision))

    widths = _widths(candidates, width) if keep == "score_mass" else {}
    plan: dict[str, list[int]] = {}
    for group, decision in candidates:
        removed = _choose_removed(group, decision.members, masks, scores, keep, widths.get(decision.members[0]))
        if not removed:  # nothing to take away: the layer stays as it is, mask included
            decision.structured = False
            decision.reason = "insensitive, but every channel is kept"
            continue
        decision.channels_after = group.channels - len(removed)
        decision.reason = f"{keep}{'/' + width if keep == 'score_mass' else ''}: kept {decision.channels_after}/{group.channels} channels"
        plan[decision.members[0]] = removed

    removed_idx = remove_channels(model, example_input, plan, graph=graph) if plan else {}
    structured_members = {f"{m}.weight" for d in decisions if d.structured for m in d.members}

    # masks: drop the density-matched layers (now dense), slice the others to their new shapes
    params = dict(model.named_parameters())
    new_masks: Masks = {}
    for name, mask in masks.items():
        if name in structured_members and keep == "score_mass":
            continue
        new_masks[name] = _slice(mask, params[name], removed_idx.get(name.rsplit(".", 1)[0]))

    modules = dict(model.named_modules())
    if reinit == "all":
        touched = [n for n, m in modules.items() if n and (isinstance(m, (*CONV_TYPES, nn.Linear)) or
                                                            isinstance(m, nn.modules.batchnorm._BatchNorm))]
    elif reinit == "changed":
        touched = [n for n in modules if n in removed_idx]
    else:
        touched = []
    with torch.no_grad():
        for n in touched:
            reinit_fn(modules[n])
    apply_masks(model, new_masks)

    layers = []
    for name in convs:
        w = params[name]
        d = decisions[group_of[name]] if name in group_of else None
        layers.append({
            "layer": name.rsplit(".", 1)[0],
            "sparsity": pse.sparsity[name],
            "insensitive": pse.insensitive[name],
            "group": group_of.get(name),
            "structured": name in structured_members,
            "channels_before": int(masks[name].shape[0]),
            "channels_after": int(w.shape[0]),
            "weights_before": int(masks[name].numel()),
            "weights_after": int(w.numel()),
            "nonzeros_after": int(torch.count_nonzero(w)),
            "reinitialised": name.rsplit(".", 1)[0] in touched,
            "group_reason": d.reason if d else "",
        })
    info = {
        "average_sparsity": pse.average,
        "weighted": weighted,
        "keep": keep,
        "group_rule": group_rule,
        "width": width,
        "reinit": reinit,
        "insensitive": [n.rsplit(".", 1)[0] for n in pse.insensitive_layers],
        "structured": sorted({n.rsplit(".", 1)[0] for n in structured_members}, key=list(modules).index),
        "reinitialised": touched,
        "layers": layers,
        "groups": [d.as_dict() for d in decisions],
        "removed": removed_idx,
        "rectify_seconds": time.perf_counter() - t0,
    }
    return model, new_masks, info


# ---------------------------------------------------------------------------------------------------
# generate = UPaI + PSE + RLR
# ---------------------------------------------------------------------------------------------------


def _weights_summary(model: nn.Module, masks: Masks) -> dict:
    weights = prunable_weights(model)
    total = sum(w.numel() for w in weights.values())
    kept = sum(int(masks[n].count_nonzero()) if n in masks else w.numel() for n, w in weights.items())
    return {"prunable_weights": int(total), "kept_weights": int(kept)}


def generate(
    model: nn.Module,
    example_input: torch.Tensor,
    sparsity: float,
    score: str = "synflow",
    batches=None,
    *,
    weighted: bool = False,
    keep: str = "score_mass",
    group_rule: str = "pooled",
    width: str = "sqrt",
    reinit: str = "changed",
    seed: int = 0,
    score_options: dict | None = None,
    reinit_fn: Callable[[nn.Module], None] = default_reinit,
) -> tuple[nn.Module, Masks, dict]:
    """Reconvene on an initialised ``model``: returns ``(pruned_model, masks, info)``; ``model`` is untouched.

    ``pruned_model`` is a physically smaller copy, ready to train with ``fit(..., masks=masks)``.
    ``info`` (JSON-able): ``insensitive`` layers, ``structured`` layers (channels removed), per-layer
    ``layers`` rows (UPaI sparsity, verdict, channels before/after, weights before/after), residual
    ``groups`` and what was decided for each, ``removed`` original indices per touched module,
    ``upai`` (kept/total prunable weights of the UPaI mask), ``reconvene`` (the same after rectification,
    over the smaller model), ``seconds`` (scores, rectify, total = the generation time).
    """
    sparsity = check_fraction("sparsity", sparsity)
    check_score(score)
    _check_choice("keep", keep, KEEP_RULES)
    _check_choice("group_rule", group_rule, GROUP_RULES)
    _check_choice("width", width, WIDTH_RULES)
    _check_choice("reinit", reinit, REINIT_RULES)
    if not any(isinstance(m, CONV_TYPES) for m in model.modules()):
        raise ConfigError(
            f"model {type(model).__name__} has no convolution layer for Reconvene's structured step; "
            "run the unstructured PaI only (--mode unstructured)"
        )
    t0 = time.perf_counter()
    scores, masks = pai_masks(model, example_input, sparsity, score, batches, seed=seed, score_options=score_options)
    t_scores = time.perf_counter() - t0
    pruned = copy.deepcopy(model)
    pruned, new_masks, info = rectify(pruned, example_input, masks, scores, weighted=weighted, keep=keep,
                                      group_rule=group_rule, width=width, reinit=reinit, reinit_fn=reinit_fn)
    total = time.perf_counter() - t0
    info = {
        "sparsity": sparsity,
        "score": score,
        "seed": seed,
        **info,
        "upai": _weights_summary(model, masks),
        "reconvene": _weights_summary(pruned, new_masks),
        "seconds": {"scores": t_scores, "rectify": info["rectify_seconds"], "total": total},
        "generation_seconds": total,
    }
    return pruned, new_masks, info


# ---------------------------------------------------------------------------------------------------
# 4. The comparison run: UPaI vs Reconvene, trained from scratch, measured, reported
# ---------------------------------------------------------------------------------------------------

MODES = ("reconvene", "unstructured")


class PaIConfig(Config):
    """Settings of :func:`run` (the ``edgeprune pai`` command)."""

    model: str
    dataset: str
    sparsity: float = pydantic.Field(ge=0, lt=1)
    score: Literal["synflow", "snip", "grasp", "magnitude", "random"] = "synflow"
    mode: Literal["reconvene", "unstructured", "both"] = "both"
    seeds: int = pydantic.Field(1, gt=0)
    weighted: bool = False
    keep: Literal["score_mass", "zero_filters"] = "score_mass"
    group_rule: Literal["pooled", "all"] = "pooled"
    width: Literal["density", "sqrt"] = "sqrt"
    reinit: Literal["changed", "all", "none"] = "changed"
    synflow_rounds: int = pydantic.Field(100, gt=0)
    calibration_batches: int = pydantic.Field(1, gt=0)
    calibration_batch_size: int | None = pydantic.Field(None, gt=0)  # default: 10 examples per class
    limit: int | None = pydantic.Field(None, gt=0)
    val_fraction: float = pydantic.Field(0.1, gt=0, lt=1)
    model_kwargs: dict = pydantic.Field(default_factory=dict)
    latency_batches: list[int] = pydantic.Field(default_factory=lambda: [1, 32])
    latency_runs: int = pydantic.Field(30, gt=0)
    sparse_artifact: bool = True  # write the compressed sparse artifact (edgeprune.export.sparse)
    onnx: bool = True  # export each trained model to ONNX (parity-checked) and time it in ONNX Runtime
    train: dict = pydantic.Field(default_factory=dict)  # TrainConfig fields; defaults by model family

    @property
    def modes(self) -> list[str]:
        return list(MODES) if self.mode == "both" else [self.mode]

    def train_config(self, seed: int):
        from edgeprune.train import default_config

        return default_config(self.model, **{**self.train, "seed": seed})


def _sparse_bytes(model: nn.Module, path: Path, meta: dict, write: bool) -> tuple[int, str]:
    """Bytes of the compressed sparse form: the real ``.epz`` artifact, or a labelled estimate.

    The estimate (only without :mod:`edgeprune.export.sparse` or with ``write=False``) stores every
    parameter as a bitmap (n/8 bytes) plus its non-zero FP32 values (4 bytes each).
    """
    if write:
        try:
            from edgeprune.export import sparse
        except ImportError:
            sparse = None
        if sparse is not None:
            described = sparse.save(model, path, meta=meta)
            return int(described["bytes"]), "artifact"
    est = 0
    for p in {id(p): p for p in model.parameters()}.values():
        est += int(torch.count_nonzero(p)) * 4 + math.ceil(p.numel() / 8)
    return est, "estimate"


def _read_records(path: Path) -> list[dict]:
    """The finished records; a torn last line (an interrupted run) is repaired by the run store and redone."""
    from edgeprune.search.store import RunStore

    return RunStore(path.parent).records()


def _onnx_latency(model: nn.Module, path: Path, shape: tuple, config: PaIConfig) -> dict:
    """Export ``model`` to ``path`` (checked against PyTorch) and time it in ONNX Runtime at each latency batch."""
    from edgeprune.export.onnx import export_verified
    from edgeprune.measure.ort_latency import ort_latency

    export_verified(model.eval(), path, torch.randn(4, *shape, generator=torch.Generator().manual_seed(0)))
    return {f"onnx_latency_ms_b{b}": ort_latency(path, batch_size=b, runs=config.latency_runs)["median_ms"]
            for b in config.latency_batches}


def _check_run_dir(out: Path, config: PaIConfig) -> None:
    """A run directory holds one configuration: refuse to mix results of another into it."""
    existing = out / "config.json"
    if existing.exists():
        try:
            old = json.loads(existing.read_text())
        except json.JSONDecodeError:
            old = None
        if old != json.loads(config.model_dump_json()):
            raise ConfigError(f"run directory {str(out)!r} holds results of another configuration; use another --out")


def _channels(model: nn.Module) -> dict[str, int]:
    return {n: int(m.weight.shape[0]) for n, m in model.named_modules() if n and isinstance(m, CONV_TYPES)}


def run(config: PaIConfig, out_dir, *, data_dir=None, progress: bool = True) -> list[dict]:
    """Generate, train and measure UPaI and/or Reconvene models for ``config.seeds`` seeds.

    Writes ``config.json``, one ``results.jsonl`` record per (mode, seed), the models (``models/``),
    ``report.md`` and ``accuracy_vs_size.png`` to ``out_dir``. Finished (mode, seed) items are skipped
    when the same command runs again. Returns all records.
    """
    from edgeprune import data as data_lib
    from edgeprune import models as model_lib
    from edgeprune.measure import accuracy, machine_info, summarize
    from edgeprune.scores import calibration_batches
    from edgeprune.train import fit
    from edgeprune.utils.io import append_jsonl, ensure_dir, write_json

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output folder {str(out)!r} is a file")
    if out.exists():
        _check_run_dir(out, config)
    config.train_config(0)  # validate the training settings before any work
    splits = data_lib.load(config.dataset, root=data_dir, val_fraction=config.val_fraction, seed=0, limit=config.limit)
    shape = (splits.in_channels, splits.image_size, splits.image_size)
    example = torch.zeros(1, *shape)

    def build(seed: int) -> nn.Module:
        torch.manual_seed(seed)
        return model_lib.create(config.model, num_classes=splits.num_classes, in_channels=splits.in_channels,
                                image_size=splits.image_size, **config.model_kwargs)

    probe = build(0)
    if "reconvene" in config.modes and not any(isinstance(m, CONV_TYPES) for m in probe.modules()):
        raise ConfigError(
            f"model {config.model!r} has no convolution layer for Reconvene's structured step; "
            "use --mode unstructured"
        )
    del probe
    results = out / "results.jsonl"
    done = {(r.get("mode"), r.get("seed")) for r in _read_records(results)}

    def start() -> None:  # the run folder appears only once the first model is generated (bad input leaves nothing)
        ensure_dir(out / "models")
        write_json(out / "config.json", json.loads(config.model_dump_json()))
    calib_size = config.calibration_batch_size or 10 * splits.num_classes

    for seed in range(config.seeds):
        todo = [m for m in config.modes if (m, seed) not in done]
        if not todo:
            continue
        model = build(seed)
        batches = (calibration_batches(splits.train, config.calibration_batches, calib_size, seed)
                   if config.score in DATA_SCORES else None)
        options = {"rounds": config.synflow_rounds} if config.score == "synflow" else None
        t0 = time.perf_counter()
        scores, masks = pai_masks(model, example, config.sparsity, config.score, batches, seed=seed,
                                  score_options=options, progress=progress)
        score_seconds = time.perf_counter() - t0
        for mode in todo:
            extra: dict = {}
            candidate = copy.deepcopy(model)
            if mode == "reconvene":
                candidate, train_masks, info = rectify(candidate, example, masks, scores, weighted=config.weighted,
                                                      keep=config.keep, group_rule=config.group_rule, width=config.width,
                                                      reinit=config.reinit)
                generation = score_seconds + info["rectify_seconds"]
                before = _channels(model)
                extra = {
                    "average_sparsity": info["average_sparsity"],
                    "insensitive": info["insensitive"],
                    "structured": info["structured"],
                    "channels": {n: [before[n], c] for n, c in _channels(candidate).items()},
                    "layers": info["layers"],
                    "groups": info["groups"],
                }
            else:
                train_masks, generation = masks, score_seconds
                apply_masks(candidate, train_masks)
            start()
            tcfg = config.train_config(seed)
            result = fit(candidate, splits.train, splits.val, tcfg, masks=train_masks, progress=progress,
                         description=f"{mode} s{seed}")
            test_acc = accuracy(candidate, splits.test, tcfg.eval_batch_size)
            meta = {"mode": mode, "seed": seed, "sparsity": config.sparsity, "score": config.score,
                    "val_acc": result.best_val_acc, "test_acc": test_acc}
            path = model_lib.save(candidate, out / "models" / f"{mode}-seed{seed}.pt", meta=meta)
            sparse_bytes, sparse_kind = _sparse_bytes(candidate, out / "models" / f"{mode}-seed{seed}.epz", meta,
                                                      config.sparse_artifact)
            measured = summarize(candidate, shape, latency_batches=tuple(config.latency_batches),
                                 latency_runs=config.latency_runs)
            if config.onnx:
                measured.update(_onnx_latency(candidate, out / "models" / f"{mode}-seed{seed}.onnx", shape, config))
            record = {
                "mode": mode,
                "seed": seed,
                "model": config.model,
                "dataset": splits.name,
                "score": config.score,
                "sparsity": config.sparsity,
                "val_acc": result.best_val_acc,
                "test_acc": test_acc,
                **measured,
                "dense_bytes": path.stat().st_size,
                "sparse_bytes": sparse_bytes,
                "sparse_bytes_kind": sparse_kind,
                "generation_seconds": generation,
                "score_seconds": score_seconds,
                "train_seconds": result.seconds,
                "seconds_per_epoch": result.seconds_per_epoch,
                "epochs_run": result.epochs_run,
                "best_epoch": result.best_epoch,
                "masked_weights": int(sum(m.numel() - int(m.count_nonzero()) for m in train_masks.values())),
                **extra,
                "machine": machine_info(),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            }
            append_jsonl(results, record)
    records = _read_records(results)
    if records:
        write_report(out, config, records)
    return records


# ---------------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------------

SUMMARY_KEYS = ("test_acc", "val_acc", "params", "nonzeros", "dense_bytes", "sparse_bytes", "macs", "effective_macs",
                "latency_ms_b1", "latency_ms_b32", "onnx_latency_ms_b1", "onnx_latency_ms_b32", "generation_seconds",
                "seconds_per_epoch")


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarize_records(records: list[dict]) -> dict:
    """Mean/std per mode over seeds, and the Reconvene-vs-UPaI comparison on the seeds both finished.

    Comparison (paired by seed): ``acc_diff`` = Reconvene − UPaI test accuracy; ``size_ratio`` = UPaI ÷
    Reconvene dense checkpoint bytes; ``sparse_size_ratio`` = the same for the compressed sparse form;
    ``speedup_b<k>`` = UPaI ÷ Reconvene torch latency at batch k (``onnx_speedup_b<k>``: ONNX Runtime);
    ``macs_ratio`` dense MACs.
    """
    by_mode: dict[str, dict] = {}
    for mode in MODES:
        rows = [r for r in records if r.get("mode") == mode]
        if not rows:
            continue
        stats = {"seeds": sorted(r["seed"] for r in rows),
                 "sparse_bytes_kind": rows[0].get("sparse_bytes_kind")}
        for k in SUMMARY_KEYS:
            vals = [r[k] for r in rows if isinstance(r.get(k), (int, float))]
            if vals:
                stats[k], stats[f"{k}_std"] = _mean_std(vals)
        by_mode[mode] = stats
    out: dict = {"modes": by_mode}
    rec = {r["seed"]: r for r in records if r.get("mode") == "reconvene"}
    upai = {r["seed"]: r for r in records if r.get("mode") == "unstructured"}
    paired = sorted(set(rec) & set(upai))
    if paired:
        comparisons = {
            "acc_diff": lambda a, b: a["test_acc"] - b["test_acc"],
            "size_ratio": lambda a, b: b["dense_bytes"] / a["dense_bytes"],
            "sparse_size_ratio": lambda a, b: b["sparse_bytes"] / a["sparse_bytes"],
            "params_ratio": lambda a, b: b["params"] / a["params"],
            "macs_ratio": lambda a, b: b["macs"] / a["macs"],
        }
        for runtime in ("", "onnx_"):
            for batch in ("b1", "b32"):
                key = f"{runtime}latency_ms_{batch}"
                if all(key in rec[s] and key in upai[s] for s in paired):
                    comparisons[f"{runtime}speedup_{batch}"] = lambda a, b, key=key: b[key] / a[key]
        cmp = {"seeds": paired}
        for name, fn in comparisons.items():
            cmp[name], cmp[f"{name}_std"] = _mean_std([fn(rec[s], upai[s]) for s in paired])
        out["comparison"] = cmp
    return out


def _fmt_pm(stats: dict, key: str, scale: float = 1.0, digits: int = 2) -> str:
    if key not in stats:
        return "–"
    return f"{stats[key] * scale:.{digits}f} ± {stats.get(key + '_std', 0.0) * scale:.{digits}f}"


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.0f} B"


def plot_accuracy_vs_size(records: list[dict], path: Path) -> Path:
    """Test accuracy vs bytes: dense checkpoint (filled) and compressed sparse form (hollow), per mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from edgeprune.utils.io import atomic_path

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    colors = {"unstructured": "tab:blue", "reconvene": "tab:red"}
    labels = {"unstructured": "UPaI", "reconvene": "Reconvene"}
    for mode in MODES:
        rows = [r for r in records if r.get("mode") == mode]
        if not rows:
            continue
        acc = [100 * r["test_acc"] for r in rows]
        ax.scatter([r["dense_bytes"] for r in rows], acc, color=colors[mode], label=f"{labels[mode]} (dense file)")
        kind = rows[0].get("sparse_bytes_kind", "estimate")
        ax.scatter([r["sparse_bytes"] for r in rows], acc, facecolors="none", edgecolors=colors[mode],
                   label=f"{labels[mode]} (sparse {'artifact' if kind == 'artifact' else 'estimate'})")
    ax.set_xscale("log")
    ax.set_xlabel("model size (bytes, log scale)")
    ax.set_ylabel("test accuracy (%)")
    first = records[0] if records else {}
    ax.set_title(f"{first.get('model', '')} on {first.get('dataset', '')}, p={first.get('sparsity', '')}, "
                 f"{first.get('score', '')}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return path


def write_report(out: Path, config: PaIConfig, records: list[dict]) -> dict:
    """``report.md`` and ``accuracy_vs_size.png`` from the records; returns :func:`summarize_records`."""
    from edgeprune.utils.io import write_text

    summary = summarize_records(records)
    if records:
        plot_accuracy_vs_size(records, out / "accuracy_vs_size.png")
    lines = [
        f"# Reconvene vs UPaI: {config.model} on {config.dataset}, sparsity {config.sparsity}, score {config.score}",
        "",
        f"Seeds: {config.seeds}. PSE average: {'parameter-weighted (= p)' if config.weighted else 'unweighted mean of conv layers'}; "
        f"channels kept by {config.keep}{' (width rule ' + config.width + ')' if config.keep == 'score_mass' else ''}; residual groups: {config.group_rule}; re-initialised: {config.reinit}. "
        f"Both models train from scratch with the same schedule ({config.train_config(0).epochs} epochs).",
        "",
        "| | test acc (%) | params | non-zeros | dense file | sparse form | MACs (dense) | MACs (effective) | torch b1 (ms) | torch b32 (ms) | ONNX Runtime b1 (ms) | ONNX Runtime b32 (ms) | generation (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    names = {"unstructured": "UPaI", "reconvene": "Reconvene"}
    for mode, s in summary["modes"].items():
        kind = s.get("sparse_bytes_kind")
        lines.append(
            f"| {names[mode]} | {_fmt_pm(s, 'test_acc', 100)} | {s['params']:,.0f} | {s['nonzeros']:,.0f} | "
            f"{_human(s['dense_bytes'])} | {_human(s['sparse_bytes'])}{'' if kind == 'artifact' else ' (estimate)'} | "
            f"{s['macs']:,.0f} | {s['effective_macs']:,.0f} | {_fmt_pm(s, 'latency_ms_b1', 1, 3)} | "
            f"{_fmt_pm(s, 'latency_ms_b32', 1, 3)} | {_fmt_pm(s, 'onnx_latency_ms_b1', 1, 3)} | "
            f"{_fmt_pm(s, 'onnx_latency_ms_b32', 1, 3)} | {_fmt_pm(s, 'generation_seconds', 1, 2)} |"
        )
    cmp = summary.get("comparison")
    if cmp:
        lines += [
            "",
            f"Reconvene vs UPaI (paired by seed, {len(cmp['seeds'])} seed(s)): accuracy difference "
            f"{_fmt_pm(cmp, 'acc_diff', 100)} points; dense file {_fmt_pm(cmp, 'size_ratio', 1, 2)}x smaller; "
            f"sparse form {_fmt_pm(cmp, 'sparse_size_ratio', 1, 2)}x smaller; dense MACs {_fmt_pm(cmp, 'macs_ratio', 1, 2)}x fewer; "
            + "; ".join(f"{'ONNX Runtime' if k.startswith('onnx') else 'torch'} latency {k.rsplit('_', 1)[1]} "
                        f"{_fmt_pm(cmp, k, 1, 2)}x faster"
                        for k in ("speedup_b1", "speedup_b32", "onnx_speedup_b1", "onnx_speedup_b32") if k in cmp) + ".",
        ]
    rec = [r for r in records if r.get("mode") == "reconvene"]
    if rec:
        first = min(rec, key=lambda r: r["seed"])
        lines += [
            "",
            f"## Pruning Sensitivity Evaluator (seed {first['seed']})",
            "",
            f"Average sparsity compared against: {first['average_sparsity']:.4f}. A layer pruned harder is insensitive; "
            "residual-coupled layers are decided as one group.",
            "",
            "| layer | UPaI sparsity | insensitive | structured | channels | weights after | note |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in first["layers"]:
            lines.append(
                f"| {row['layer']} | {row['sparsity']:.4f} | {'yes' if row['insensitive'] else 'no'} | "
                f"{'yes' if row['structured'] else 'no'} | {row['channels_before']} → {row['channels_after']} | "
                f"{row['weights_after']:,} ({row['nonzeros_after']:,} non-zero) | {row['group_reason']} |"
            )
    if records:
        m = records[0]["machine"]
        lines += ["", f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']}. Latency is the median of "
                  f"{config.latency_runs} runs (PyTorch eager, CPU; and ONNX Runtime CPU on the exported `models/*.onnx`). Sizes: dense file = `edgeprune.models.save` "
                  "checkpoint; sparse form = `edgeprune.export.sparse` artifact (`.epz`) unless marked estimate "
                  "(bitmap n/8 + 4 bytes per non-zero).", ""]
        lines.append("![accuracy vs size](accuracy_vs_size.png)")
    write_text(out / "report.md", "\n".join(lines) + "\n")
    return summary

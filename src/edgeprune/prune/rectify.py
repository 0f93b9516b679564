"""Reconvene's structured step on a PaI mask: the Resilient Layer Rectifier.

* :func:`rectify` (RLR), after the Pruning Sensitivity Evaluator (:mod:`edgeprune.prune.sensitivity`) —
  insensitive layers (residual-coupled layers as one group) lose output channels physically through
  torch-pruning's dependency graph (:mod:`edgeprune.surgery.channels`), consumers lose the
  matching inputs, changed layers are re-initialised, sensitive layers keep their (sliced) masks. A model
  torch-pruning cannot trace as a whole loses channels inside its blocks that trace alone
  (:mod:`edgeprune.surgery.blocks`).
"""

from __future__ import annotations

import inspect
import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn

from edgeprune.errors import ConfigError
from edgeprune.prune.masks import Masks, apply_masks
from edgeprune.prune.sensitivity import CONV_TYPES, conv_weight_names, evaluate_sensitivity
from edgeprune.surgery import blocks as blocks_lib
from edgeprune.surgery.channels import full_groups, remove_in_parts
from edgeprune.surgery.groups import ChannelGroup, traced

KEEP_RULES = ("score_mass", "zero_filters")
GROUP_RULES = ("pooled", "all")
WIDTH_RULES = ("density", "sqrt")
REINIT_RULES = ("changed", "all", "none")
WHAT = "Reconvene's structured step"


def check_choice(what: str, value: str, allowed: Sequence[str]) -> str:
    """``value`` if it is one of ``allowed``, else a one-line ConfigError naming both."""
    if value not in allowed:
        raise ConfigError(f"{what} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def check_options(**options) -> None:
    """Validate :func:`rectify`'s keyword ``options`` (callers check them before the expensive scoring step): a
    TypeError for a keyword it does not take, a one-line ConfigError for a bad value."""
    inspect.signature(rectify).bind_partial(**options)
    for name, allowed in (("keep", KEEP_RULES), ("group_rule", GROUP_RULES), ("width", WIDTH_RULES), ("reinit", REINIT_RULES)):
        if name in options:
            check_choice(name, options[name], allowed)
    round_to = options.get("round_to", 1)
    if isinstance(round_to, bool) or not isinstance(round_to, int) or round_to < 1:
        raise ConfigError(f"round_to must be an integer >= 1 (channel multiple), got {round_to!r}")


def no_conv_layer(model: nn.Module) -> ConfigError:
    """The error for a model Reconvene's structured step cannot work on."""
    return ConfigError(f"model {type(model).__name__} has no convolution layer for Reconvene's structured step; "
                       "run the unstructured PaI only (--mode unstructured)")


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


def _widths(candidates, width: str, round_to: int = 1) -> dict[str, int]:
    """Channels each structured group keeps (keyed by its first member), by the ``width`` rule.

    ``round_to`` > 1 rounds each count up to a multiple of it (never above the layer's channels): SIMD
    kernels run channel counts like 8 or 16 much faster than odd ones.
    ``density``: ``max(1, round(d × C))`` with d the group's pooled UPaI density.
    ``sqrt``: ``max(1, round(√d × C))``. A layer between two insensitive layers loses inputs as well as
    outputs, so with ``density`` it keeps about d² of its weights (and chains of them collapse to a few
    channels); with ``sqrt`` both sides shrink by √d and it keeps about d, the UPaI layer's budget.
    """
    factor = (lambda d: d) if width == "density" else math.sqrt
    widths = {}
    for group, d in candidates:
        k = max(1, round(factor(1.0 - d.sparsity) * group.channels))
        widths[d.members[0]] = min(group.channels, math.ceil(k / round_to) * round_to)
    return widths


def channel_period(model: nn.Module, group: ChannelGroup) -> int | None:
    """How many channel groups the coupled channels of ``group`` are split into by grouped convs (RegNet,
    ResNeXt) or GroupNorms among its layers: the lcm of their group counts (1 if none). Channels can only go
    at the same positions in every group (so each keeps ``channels / period``); None if the channels do not
    split evenly."""
    modules = dict(model.named_modules())
    period = 1
    for name in [*group.members, *group.consumers, *group.norms]:
        m = modules.get(name)
        g = 1
        if isinstance(m, CONV_TYPES) and m.groups > 1 and not (m.groups == m.in_channels == m.out_channels):
            g = m.groups
        elif isinstance(m, nn.GroupNorm) and 1 < m.num_groups < m.num_channels:
            g = m.num_groups
        period = math.lcm(period, g)
    return period if group.channels % period == 0 else None


def _choose_removed(group: ChannelGroup, members: list[str], masks: Masks, scores, keep: str, k: int | None,
                    period: int = 1) -> list[int]:
    """Original output-channel indices the group loses (``k`` channels survive with keep=score_mass).

    With ``period`` > 1 (grouped convs) the channels are ``period`` groups of ``w = channels / period``;
    positions within a group are ranked by their summed score over the groups and removed from every
    group alike, so each group keeps ``ceil(k / period)`` channels and the group count still divides them.
    """
    mass = torch.zeros(group.channels, dtype=torch.float64)
    count = torch.zeros(group.channels, dtype=torch.int64)
    for m in members:
        mm, cc = _per_channel(f"{m}.weight", masks, scores)
        mass += mm
        count += cc
    width = group.channels // period
    mass, count = mass.reshape(period, width).sum(0), count.reshape(period, width).sum(0)
    if keep == "zero_filters":
        local = torch.nonzero(count == 0).flatten().tolist()
        if len(local) == width:
            raise ConfigError(
                f"keep=zero_filters would remove every channel of layer {members[0]!r} (all its filters are pruned); "
                "use keep=score_mass or a lower sparsity"
            )
    else:
        # rank: score mass, then kept weights, then lower index first (stable sort on the reversed keys)
        order = sorted(range(width), key=lambda c: (-float(mass[c]), -int(count[c]), c))
        local = order[max(1, math.ceil(k / period)):]
    return sorted(j * width + c for j in range(period) for c in local)


def _slice(mask: torch.Tensor, weight: torch.Tensor, removed: dict | None, transposed: bool = False) -> torch.Tensor:
    """``mask`` with the removed output (dim 0) and input (dim 1) indices dropped to fit ``weight`` (a transposed
    conv keeps its inputs at dim 0 and its outputs at dim 1)."""
    if removed:
        for dim, side in (((0, "in"), (1, "out")) if transposed else ((0, "out"), (1, "in"))):
            idx = removed.get(side) or []
            if idx and dim == 1 and mask.dim() > 1 and max(idx) >= mask.shape[1]:
                # a grouped conv's weight holds in_channels / groups inputs; the removed channels sit at
                # the same positions in every group (channel_period), so its own positions are idx mod that
                idx = sorted({i % mask.shape[1] for i in idx})
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
    round_to: int = 1,
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
    check_options(keep=keep, group_rule=group_rule, width=width, round_to=round_to, reinit=reinit)
    convs = [n for n in conv_weight_names(model) if n in masks]
    if not convs:
        raise no_conv_layer(model)
    t0 = time.perf_counter()
    pse = evaluate_sensitivity(masks, convs, weighted=weighted)
    parts, in_blocks = blocks_lib.whole_or_blocks(model, example_input, _traced)
    sizes = {n: masks[n].numel() for n in convs}
    decisions, group_of, candidates = _decide(full_groups(parts), pse, sizes, group_rule, bool(in_blocks))
    plan = _plan(model, candidates, masks, scores, keep, width, round_to)
    removed_idx, broken = remove_in_parts(model, example_input, parts, plan, WHAT)
    _mark_broken(decisions, broken)
    structured_members = {f"{m}.weight" for d in decisions if d.structured for m in d.members}
    new_masks = _sliced_masks(model, masks, structured_members if keep == "score_mass" else set(), removed_idx)
    touched = _reinitialise(model, reinit, removed_idx, reinit_fn)
    apply_masks(model, new_masks)
    modules = dict(model.named_modules())
    settings = {"weighted": weighted, "keep": keep, "group_rule": group_rule, "width": width, "round_to": round_to,
                "reinit": reinit}
    info = {
        "average_sparsity": pse.average, **settings,
        "insensitive": [n.rsplit(".", 1)[0] for n in pse.insensitive_layers],
        "structured": sorted({n.rsplit(".", 1)[0] for n in structured_members}, key=list(modules).index),
        "reinitialised": touched,
        "layers": _layer_report(model, convs, masks, pse, decisions, group_of, structured_members, touched),
        "groups": [d.as_dict() for d in decisions],
        "removed": removed_idx,
        "rectify_seconds": time.perf_counter() - t0,
    }
    if in_blocks:
        info["blocks"] = in_blocks
    if not structured_members:
        info["nothing_removed"] = _why_nothing(decisions)
    return model, new_masks, info


def _mark_broken(decisions: list[GroupDecision], broken: dict[str, str]) -> None:
    """The groups whose removal broke the model stay unstructured, with the reason."""
    for d in decisions:
        if d.members[0] in broken:
            d.structured, d.channels_after = False, d.channels_before
            d.reason = f"coupled in a way torch-pruning cannot handle (pruning it breaks the model: {broken[d.members[0]]})"


def _decide(groups: list[ChannelGroup], pse, sizes: dict[str, int], group_rule: str, in_blocks: bool):
    """Every conv group's :class:`GroupDecision` (sensitive, protected, coupled with a non-conv layer, or a candidate):
    (decisions, conv weight name -> its decision's index, [(group, decision)] of the candidates)."""
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
            decision.reason = "produces the model output" if not in_blocks else \
                "sets the width of its block's output or input"
        elif len(members) != len(group.members):
            decision.reason = "coupled with a non-conv layer"
        else:
            decision.structured = True
            candidates.append((group, decision))
    return decisions, group_of, candidates


def _plan(model: nn.Module, candidates, masks: Masks, scores, keep: str, width: str, round_to: int
          ) -> dict[str, list[int]]:
    """{first member of each candidate group: the original output channels it loses}; candidates that cannot lose
    channels get their decision's reason."""
    widths = _widths(candidates, width, round_to) if keep == "score_mass" else {}
    plan: dict[str, list[int]] = {}
    for group, decision in candidates:
        period = channel_period(model, group)
        widths_of = {int(masks[f"{m}.weight"].shape[0]) for m in decision.members}
        if widths_of != {group.channels}:  # GhostNet: a concatenation couples layers of different widths
            decision.structured = False
            decision.reason = "coupled through a concatenation of layers of different widths"
            continue
        if period is None:
            decision.structured = False
            decision.reason = "grouped layers whose group counts do not divide the channels evenly"
            continue
        removed = _choose_removed(group, decision.members, masks, scores, keep, widths.get(decision.members[0]),
                                  period)
        if not removed:  # nothing to take away: the layer stays as it is, mask included
            decision.structured = False
            decision.reason = "insensitive, but every channel is kept"
            continue
        decision.channels_after = group.channels - len(removed)
        decision.reason = f"{keep}{'/' + width if keep == 'score_mass' else ''}: kept {decision.channels_after}/{group.channels} channels"
        plan[decision.members[0]] = removed
    return plan


def _sliced_masks(model: nn.Module, masks: Masks, dropped: set[str], removed_idx: dict) -> Masks:
    """The masks still needed: those of ``dropped`` layers (density-matched, now dense) left out, the others sliced
    to their layers' new shapes."""
    params, modules = dict(model.named_parameters()), dict(model.named_modules())
    new_masks: Masks = {}
    for name, mask in masks.items():
        if name in dropped:
            continue
        owner = name.rsplit(".", 1)[0]
        new_masks[name] = _slice(mask, params[name], removed_idx.get(owner), getattr(modules.get(owner), "transposed", False))
    return new_masks


def _reinitialise(model: nn.Module, reinit: str, removed_idx: dict, reinit_fn: Callable[[nn.Module], None]) -> list[str]:
    """Re-initialise the layers ``reinit`` names (every layer whose shape changed, all, or none); their names."""
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
    return touched


def _layer_report(model: nn.Module, convs: list[str], masks: Masks, pse, decisions: list[GroupDecision],
                  group_of: dict[str, int], structured_members: set[str], touched: list[str]) -> list[dict]:
    """One JSON-able line per conv layer: its verdict, group, channels and weights before and after."""
    params = dict(model.named_parameters())
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
    return layers


def _traced(model: nn.Module, example_input: torch.Tensor):
    return traced(model, example_input, WHAT)


def _why_nothing(decisions: list[GroupDecision]) -> str:
    """One line: why no conv group lost channels (counts of the groups' reasons)."""
    reasons: dict[str, int] = {}
    for d in decisions:
        key = d.reason.split(" (")[0] or "kept"
        reasons[key] = reasons.get(key, 0) + 1
    detail = "; ".join(f"{n} group{'s' if n > 1 else ''}: {r}" for r, n in sorted(reasons.items(), key=lambda kv: -kv[1]))
    return f"Reconvene removed no channel ({detail or 'no conv group'})"

"""Structured pruning driven by per-layer fractions: whole channels, neurons and heads leave the model.

Torch-Pruning's :class:`~torch_pruning.pruner.BasePruner` does the work on its dependency graph, so channels
coupled through residual sums, concatenations, depthwise and grouped convolutions move together and the
pruned model is an ordinary, smaller ``nn.Module``. This module only translates a Mix-and-Match strategy
(a fraction per Conv/Linear layer) into Torch-Pruning's per-layer ratios and supplies the group importance:

* :func:`plan` inspects the model once: its coupled groups, the layers producing the model's output (never
  pruned), the attention layers whose heads can go (fused ``qkv`` or split q/k/v, found by
  :mod:`edgeprune.prune.attention`), and the patch embedding's residual stream (kept).
* :func:`group_fractions` gives every coupled group ONE fraction: the weight-count-weighted mean of its
  members' fractions (a residual stream shrinks as a whole).
* :func:`prune_channels` removes the channels in place: each group loses its lowest-importance
  ``fraction`` of channels (rounded down to ``round_to`` widths); attention layers lose whole heads (their
  q/k/v never lose channels otherwise); an ``nn.MultiheadAttention`` narrows every head alike with the stream.
  A model torch-pruning cannot trace as a whole (ShuffleNet, Swin, CSPNet, DPN) is pruned inside its blocks that
  trace alone, their input and output widths kept (:mod:`edgeprune.prune.blocks`).
  When torch-pruning fails on the full plan, or the pruned model no longer runs, it retries on a fresh copy
  with more layers kept whole (:mod:`edgeprune.prune.fallback`) and says what it kept (:class:`Widths`); last,
  with the modules the pruned model failed in kept whole (a hand-written attention reshaping by ``self.h``).

Group importance (:class:`ScoreImportance`): per channel, the sum of a per-weight score over every
Conv/Linear weight the channel owns in the group (its filter, and the input slices of its consumers),
averaged over those layers. Magnitude uses ``w**2`` (Torch-Pruning's group L2), gradient the mean
``|dL/dw|`` over calibration batches, product ``|w| * mean |dL/dw|`` (first-order Taylor).
"""

from __future__ import annotations

import copy
import itertools
import warnings
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from edgeprune.errors import ConfigError, ModelError
from edgeprune.prune import attention as attention_lib
from edgeprune.prune import blocks as blocks_lib
from edgeprune.prune import fallback as fallback_lib
from edgeprune.prune.channels import build_graph, coupled_groups, dense_forward, trace_forward
from edgeprune.prune.lazy import tp
from edgeprune.prune.tp_search import Runaway, bounded_groups
from edgeprune.tasks import output_tensors

Scores = dict[str, torch.Tensor]  # "<module>.weight" -> per-weight score of the unpruned weight's shape

_LAYERS = (nn.modules.conv._ConvNd, nn.Linear)
# what torch-pruning raises on a coupling it cannot follow (ZeroDivisionError: an index mapping of a
# zero-size head dim, as in GCViT's global query)
_TP_ERRORS = (RuntimeError, IndexError, ValueError, KeyError, TypeError, AttributeError, AssertionError,
              ZeroDivisionError)


class ScoreImportance:  # a torch-pruning importance: any callable group -> scores
    """Channel importance of a Torch-Pruning group from per-weight scores (see the module docstring).

    ``scores`` maps a module of the model being pruned to its score tensor (shape of its unpruned weight);
    a module without a score uses ``weight**2`` (magnitude). A group whose indices torch-pruning mapped out of a
    layer's range (a channel split or chunk it cannot follow: FasterNet's partial conv, a GLU MLP) gets no
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

    @torch.no_grad()
    def __call__(self, group) -> torch.Tensor | None:
        parts, where = [], []
        for i, (dep, idxs) in enumerate(group):
            layer, fn = dep.layer, dep.pruning_fn
            if not isinstance(layer, _LAYERS) or any(r is None for r in group[i].root_idxs):
                continue
            s = self._score(layer)
            transposed = getattr(layer, "transposed", False)
            if fn in (tp.prune_conv_out_channels, tp.prune_linear_out_channels):
                per = (s.transpose(0, 1) if transposed else s).flatten(1).sum(1)
            elif fn in (tp.prune_conv_in_channels, tp.prune_linear_in_channels):
                per = (s if transposed else s.transpose(0, 1)).flatten(1).sum(1)
                if fn == tp.prune_conv_in_channels and layer.groups not in (1, layer.in_channels):
                    per = per.repeat(layer.groups)
            else:
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


@dataclass
class StructurePlan:
    """What structured pruning needs to know of a model, found once on the unpruned model."""

    groups: list[list[str]]  # module names whose output channels are coupled (one list per group)
    channels: dict[str, int]  # module name -> output channels
    numels: dict[str, int]  # module name -> weight count
    protected: set[str] = field(default_factory=set)  # produce the model output or its embedding stream
    # first projection (fused qkv, or the query Linear) -> (attention module, heads); see prune.attention
    heads: dict[str, tuple[str, int]] = field(default_factory=dict)
    retry: int = 0  # the first fallback retry that worked (later prune_channels calls start there; 0: none needed)
    skipped: list[str] = field(default_factory=list)  # what plan() already kept whole (one line each)
    # block name -> its input, when torch-pruning cannot trace the whole model (prune.blocks); empty otherwise
    blocks: dict[str, torch.Tensor] = field(default_factory=dict)
    consumers: list[list[str]] = field(default_factory=list)  # per group: the layers reading its channels


class Widths(dict):
    """Module name -> output channels after pruning (every group member), and ``skipped``: one line per part
    of the model kept whole because torch-pruning failed on the full plan (empty when it did not)."""

    def __init__(self, widths: dict[str, int], skipped: list[str] | None = None):
        super().__init__(widths)
        self.skipped = list(skipped or [])


def _traced(model: nn.Module, example: torch.Tensor):
    """torch-pruning's graph of ``model`` and its coupled groups, or a one-line ModelError."""
    graph = build_graph(model, example)
    try:
        with bounded_groups(model, graph, "structured pruning"):
            # a layer whose own group runs away (YOLO11's attention reshaping qkv by its heads) is kept whole
            return graph, coupled_groups(model, example, graph=graph, failing=(ZeroDivisionError, Runaway))
    except _TP_ERRORS as exc:
        raise _failed(model, exc) from None


def plan(model: nn.Module, example: torch.Tensor, keep_embedding: set[str] | frozenset = frozenset()) -> StructurePlan:
    """The coupled groups, protected layers and attention heads of ``model`` (traced once on ``example``).

    ``keep_embedding``: module names (e.g. the patch embedding) whose whole coupled group keeps its width.
    A model torch-pruning cannot trace as a whole is planned inside its blocks that trace alone
    (:mod:`edgeprune.prune.blocks`; no attention heads then), or refused if none has a prunable group.
    """
    parts, note = blocks_lib.whole_or_blocks(model, example, _traced)
    skipped = [note] if note else []
    modules = dict(model.named_modules())
    groups, consumers, protected, channels, failed = [], [], set(), {}, []
    for prefix, (_, (graph, part)) in parts.items():
        inner = dict(modules[prefix].named_modules())
        for g in part:
            members = [f"{prefix}.{m}" if prefix else m for m in g.members]
            groups.append(members)
            consumers.append([f"{prefix}.{m}" if prefix else m for m in g.consumers])
            channels.update({full: int(graph.get_out_channels(inner[m])) for full, m in zip(members, g.members)})
            if g.protected or keep_embedding & set(members):
                protected.update(members)
            if g.failed:
                failed.append((members[0], g.failed))
    if failed:
        skipped.append(f"{len(failed)} layer(s) kept whole, torch-pruning fails to find their coupled channels "
                       f"(first: {failed[0][0]}, {failed[0][1]})")
    whole = "" in parts
    return StructurePlan(
        groups=groups, consumers=consumers, channels=channels, numels={n: modules[n].weight.numel() for n in channels}, protected=protected,
        heads={k: v for k, v in attention_lib.find(model).items() if k not in protected} if whole else {},
        skipped=skipped, blocks={} if whole else {name: block_input for name, (block_input, _) in parts.items()},
    )


def group_fractions(structure: StructurePlan, fractions: dict[str, float]) -> dict[str, float]:
    """Module name -> the fraction of output channels its group loses (members share one, weighted by size).

    ``fractions`` maps Conv/Linear module names to the strategy's fraction; groups none of whose members is
    named, and protected groups, keep every channel (no entry).
    """
    out = {}
    for members in structure.groups:
        named = [m for m in members if m in fractions]
        if not named or any(m in structure.protected for m in members):
            continue
        weight = sum(structure.numels[m] for m in named)
        value = sum(structure.numels[m] * float(fractions[m]) for m in named) / max(weight, 1)
        for m in members:
            out[m] = value
    return out


def _keepable(fraction: float, channels: int, round_to: int) -> float:
    """``fraction`` capped so at least ``round_to`` channels (and at least one) stay."""
    keep = max(1, min(round_to, channels))
    return max(0.0, min(float(fraction), 1.0 - keep / channels))


def prune_channels(model: nn.Module, example: torch.Tensor, structure: StructurePlan, fractions: dict[str, float],
                   scores: Scores | None = None, *, round_to: int = 1) -> Widths:
    """Remove channels of ``model`` IN PLACE: every group loses ``fraction`` of its lowest-scoring channels.

    ``fractions``: module name -> fraction in [0, 1) (see :func:`group_fractions`; protected layers are
    skipped). For attention (a fused ``qkv``, or split q/k/v: their mean fraction) the fraction is the share
    of heads removed (rounded, at least one head stays). ``scores``: "<module>.weight" -> per-weight score
    (None: magnitude). ``round_to``: kept widths are multiples of it. Returns module name -> output channels
    after pruning, for every group member (:class:`Widths`).

    Should torch-pruning fail on the plan, or the pruned model not run or change its output shape, the retries
    of :func:`edgeprune.prune.fallback.retries` follow, each on a fresh copy of the input model; the first that
    runs and removes something is kept (``Widths.skipped`` says what it kept whole) and later calls with the
    same ``structure`` start there. If none does, the first failure is raised (a one-line ModelError) and
    ``model`` is left as it was.
    """
    if round_to < 1:
        raise ConfigError(f"round_to must be an integer >= 1, got {round_to!r}")
    for name, value in fractions.items():
        if not 0.0 <= float(value) < 1.0:
            raise ConfigError(f"channel fraction of layer {name!r} must be in [0, 1), got {value!r}")
    modes = [m.training for m in model.modules()]
    original, shape = _copy(model), _output_shape(model, example)
    attempts = itertools.chain([(structure, [])], (
        (replace(structure, protected=protected, heads=heads), [note])
        for protected, heads, note in fallback_lib.retries(original, structure.groups, structure.protected,
                                                           structure.heads)))
    first = None
    for i, (attempt, skipped) in enumerate(attempts):
        if i < structure.retry:
            continue
        candidate = model if first is None else _copy(original)
        try:
            widths = _prune(candidate, example, attempt, fractions, scores, round_to, shape)
        except ModelError as exc:
            first = first or exc
            continue
        if i > 0 and _params(candidate) >= _params(original):
            first = first or ModelError(f"structured pruning of {type(model).__name__} removed nothing")
            continue
        if candidate is not model:
            blocks_lib.adopt(model, candidate)
        for m, training in zip(model.modules(), modes):  # (mixed train/eval modes survive)
            m.training = training
        structure.retry = i
        return Widths(widths, structure.skipped + skipped + widths.skipped)
    widths = _keeping_failures_whole(model, example, structure, fractions, scores, round_to, shape, original, first)
    for m, training in zip(model.modules(), modes):
        m.training = training
    return widths


# how many times the full plan is retried with the module the pruned model failed in kept whole
MAX_KEPT_WHOLE = 6


def _keeping_failures_whole(model, example, structure, fractions, scores, round_to, shape, original, failed):
    """After every retry failed: the full plan again with the modules whose forward failed kept whole
    (:func:`edgeprune.prune.fallback.failing_modules`), until it runs. Once it does, ``structure`` keeps them whole
    from then on (and says so in ``skipped``); should nothing be left to prune, or the model itself fail, the
    first failure is raised and ``model`` left as it was."""
    first, kept, note = failed, [], ""
    for _ in range(MAX_KEPT_WHOLE):
        more = fallback_lib.failing_modules(original, getattr(failed, "module", None), kept)
        if not more:
            break
        kept += more
        protected, heads = fallback_lib.keep_whole(original, kept, structure.groups, structure.consumers,
                                                   structure.protected, structure.heads)
        note = fallback_lib.kept_whole_note(original, kept, failed.cause)
        attempt = replace(structure, protected=protected, heads=heads, retry=0, skipped=[*structure.skipped, note])
        if not attempt.heads and all(set(g) & protected for g in structure.groups):
            first = ModelError(f"structured pruning of {type(model).__name__} is not supported: nothing is left to "
                               f"prune once {note}")
            break
        candidate = _copy(original)
        try:
            widths = _prune(candidate, example, attempt, fractions, scores, round_to, shape)
        except ModelError as exc:
            failed = exc
            continue
        blocks_lib.adopt(model, candidate)
        structure.protected, structure.heads, structure.skipped, structure.retry = protected, heads, attempt.skipped, 0
        return Widths(widths, structure.skipped + widths.skipped)
    blocks_lib.adopt(model, original)  # the failed first attempt may have left it half pruned
    raise first


def _copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model``, made in train mode: that drops caches a forward built with gradients (HF LeViT's
    attention biases, after a trace), which cannot be deep-copied."""
    modes = [m.training for m in model.modules()]
    model.train()
    try:
        twin = copy.deepcopy(model)
    finally:
        for m, training in zip(model.modules(), modes):
            m.training = training
    for m, training in zip(twin.modules(), modes):
        m.training = training
    return twin


def _prune(model: nn.Module, example: torch.Tensor, structure: StructurePlan, fractions: dict[str, float],
           scores: Scores | None, round_to: int, shape: tuple | None) -> Widths:
    """One attempt of :func:`prune_channels` with ``structure`` (in place; ModelError if it fails)."""
    if structure.blocks:
        return _prune_blocks(model, example, structure, fractions, scores, round_to, shape)
    modules = dict(model.named_modules())
    shared = group_fractions(structure, fractions)
    ratios, head_ratios, num_heads, attention, projections = {}, {}, {}, {}, set()
    for first, (attn, heads) in structure.heads.items():
        if first not in modules or attn not in modules:
            continue
        layers = attention_lib.projections(modules[attn])
        names = [n for n, m in modules.items() if any(m is layer for layer in layers)]
        projections.update(names)
        asked = [float(fractions[n]) for n in names if n in fractions]
        gone = min(round(sum(asked) / len(asked) * heads), heads - 1) if asked else 0
        if gone <= 0:
            continue
        attention[attn] = (layers, heads, attention_lib.head_tables(model, attn, heads))
        for layer in layers:
            num_heads[layer] = heads
            head_ratios[layer] = (gone - 0.5) / heads  # BasePruner removes ceil(ratio * heads) heads ...
            ratios[layer] = 0.5  # ... while it visits the group's width scope (widths stay: no head dims)
    for name, value in shared.items():
        if name in projections or name not in modules:
            continue
        value = _keepable(value, structure.channels[name], round_to)
        if value > 0:
            ratios[modules[name]] = value
    if not ratios and not head_ratios:
        return Widths(_widths(model, structure))
    weights = {modules[n[: -len(".weight")]]: s for n, s in (scores or {}).items() if n[: -len(".weight")] in modules}
    ignored = [modules[n] for n in structure.protected if n in modules]
    importance = ScoreImportance(weights, {m: n for n, m in modules.items()})
    was_training = model.training
    model.eval()
    what = type(model).__name__
    gone_heads: dict[str, list[int]] = {}
    try:
        # bounded: BasePruner's own dependency search can explode where plan()'s did not (timm's ReXNet)
        with warnings.catch_warnings(), bounded_groups(model, None, "structured pruning"):
            warnings.filterwarnings("ignore", message="Unwrapped parameters")  # ViT cls_token/pos_embed: last dim
            with attention_lib.untraced([t for _, _, tables in attention.values() for t in tables]):
                pruner = tp.pruner.BasePruner(
                    model, example, importance=importance, pruning_ratio=0.0, pruning_ratio_dict=ratios,
                    ignored_layers=ignored, round_to=round_to if round_to > 1 else None, num_heads=num_heads,
                    prune_num_heads=bool(head_ratios), prune_head_dims=False,
                    head_pruning_ratio_dict=head_ratios or None, in_channel_groups={},
                    out_channel_groups=attention_lib.mha_groups(model),  # (a fresh dict: BasePruner fills it)
                    forward_fn=trace_forward,
                )
            for group in pruner.step(interactive=True):
                for attn, (layers, heads, _) in attention.items():
                    gone_heads.setdefault(attn, []).extend(
                        attention_lib.removed_heads(group, layers[0], heads, fused=len(layers) == 1))
                group.prune()
    except _TP_ERRORS as exc:
        raise _failed(model, exc) from None
    finally:
        model.train(was_training)
    for attn, (layers, heads, tables) in attention.items():
        gone = sorted(set(gone_heads.get(attn, [])))
        attention_lib.update(modules[attn], layers, heads - len(gone), gone, tables, heads)
    _check_still_runs(model, example, what, shape)
    unmapped = importance.unmapped
    return Widths(_widths(model, structure), [
        f"{len(unmapped)} coupled group(s) kept whole, torch-pruning cannot map their channels through a split or "
        f"chunk (first: {unmapped[0]})"] if unmapped else [])


def _prune_blocks(model: nn.Module, example: torch.Tensor, structure: StructurePlan, fractions: dict[str, float],
                  scores: Scores | None, round_to: int, shape: tuple | None) -> Widths:
    """:func:`_prune` inside every block of a plan made of blocks; a block torch-pruning fails in keeps its widths."""
    modules = dict(model.named_modules())
    kept, notes = [], []
    for name, block_input in structure.blocks.items():
        cut = len(name) + 1

        def inside(table, name=name, cut=cut):
            return {k[cut:]: v for k, v in (table or {}).items() if k.startswith(name + ".")}
        sub = StructurePlan(groups=[[m[cut:] for m in g] for g in structure.groups if g[0].startswith(name + ".")],
                            channels=inside(structure.channels), numels=inside(structure.numels),
                            protected=set(inside(dict.fromkeys(structure.protected))))
        block = modules[name]
        backup = _copy(block)
        try:
            notes += _prune(block, block_input, sub, inside(fractions), inside(scores) or None, round_to,
                            _output_shape(block, block_input)).skipped
        except ModelError:
            blocks_lib.adopt(block, backup)
            kept.append(name)
    _check_still_runs(model, example, type(model).__name__, shape)
    if kept:
        notes.append(f"{len(kept)} block(s) kept whole, torch-pruning fails inside them (first: {kept[0]})")
    return Widths(_widths(model, structure), notes)


def _failed(model: nn.Module, exc: Exception) -> ModelError:
    text = str(exc).splitlines()[0][:160] if str(exc).strip() else ""
    return ModelError(f"structured pruning of {type(model).__name__} is not supported: torch-pruning failed on it "
                      f"({type(exc).__name__}: {text})")


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _shapes(output) -> tuple | None:
    """The shapes of every output tensor (a segmentation model's ``out`` and ``aux``, a detector's heads), None
    for an output without one."""
    return tuple(tuple(t.shape) for t in output_tensors(output)) or None


def _output_shape(model: nn.Module, example: torch.Tensor) -> tuple | None:
    """Shapes of ``model``'s output tensors on one example (None: an output without tensors, or a forward that
    fails)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return _shapes(dense_forward(model, example[:1]))
    except Exception:  # noqa: BLE001  (the model's own problem: plan() or the first attempt reports it)
        return None
    finally:
        model.train(was_training)


class _ForwardFailed(ModelError):
    """The pruned model fails in its forward; ``module``: the innermost of its modules that raised (None: the
    model's own forward, or no module on the traceback)."""

    def __init__(self, what: str, exc: Exception, module: str | None):
        self.cause = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc).strip() else ''}"
        self.module = module or None
        super().__init__(f"structured pruning of {what} is not supported: the pruned model fails ({self.cause}), a "
                         "coupling torch-pruning cannot see (e.g. a reshape by the head count)")


def _failing_module(model: nn.Module, exc: Exception) -> str | None:
    """Name of the innermost submodule of ``model`` whose code is on ``exc``'s traceback."""
    names = {id(m): n for n, m in model.named_modules()}
    found, tb = None, exc.__traceback__
    while tb is not None:
        owner = tb.tb_frame.f_locals.get("self")
        if isinstance(owner, nn.Module) and id(owner) in names:
            found = names[id(owner)]
        tb = tb.tb_next
    return found


def _check_still_runs(model: nn.Module, example: torch.Tensor, what: str, shape: tuple | None = None) -> None:
    """A coupling torch-pruning cannot see (a reshape by a head count or a width kept in an attribute) leaves a
    model that fails at its next forward, or whose output changed shape: refuse it here, in one line, instead of
    returning it broken."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = dense_forward(model, example[:1])
    except Exception as exc:  # noqa: BLE001  (any failure of the user's forward means the same thing here)
        raise _ForwardFailed(what, exc, _failing_module(model, exc)) from None
    finally:
        model.train(was_training)
    got = _shapes(out) if shape is not None else None
    if got != shape:
        raise ModelError(f"structured pruning of {what} is not supported: the pruned model's output has shape "
                         f"{_shape_text(got)}, not {_shape_text(shape)}")


def _shape_text(shapes: tuple | None) -> str:
    return str(shapes[0]) if shapes and len(shapes) == 1 else str(list(shapes or []))


def _widths(model: nn.Module, structure: StructurePlan) -> dict[str, int]:
    modules = dict(model.named_modules())
    out = {}
    for members in structure.groups:
        for m in members:
            w = modules[m].weight
            out[m] = int(w.shape[1] if getattr(modules[m], "transposed", False) else w.shape[0])
    return out


def fractions_from_params(vector: dict[str, float]) -> dict[str, float]:
    """A strategy vector keyed by "<module>.weight" -> the same keyed by module name."""
    return {(k[: -len(".weight")] if k.endswith(".weight") else k): v for k, v in vector.items()}


def removed_share(before: dict[str, int], after: dict[str, int]) -> float:
    """Fraction of the listed layers' output channels removed (for summaries)."""
    total = sum(before.values())
    return 1.0 - sum(after.get(k, v) for k, v in before.items()) / total if total else 0.0


__all__ = ["ScoreImportance", "StructurePlan", "Widths", "plan", "group_fractions", "prune_channels",
           "fractions_from_params", "removed_share"]

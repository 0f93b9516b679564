"""Structured pruning driven by per-layer fractions: whole channels, neurons and heads leave the model.

torch-pruning's :class:`~torch_pruning.pruner.BasePruner` does the work on its dependency graph, so channels
coupled through residual sums, concatenations, depthwise and grouped convolutions move together and the
pruned model is an ordinary, smaller ``nn.Module``. :func:`prune_channels` removes the channels in place: each
coupled group (:func:`~edgeprune.surgery.structure.group_fractions`) loses its lowest-importance ``fraction`` of
channels (:class:`~edgeprune.surgery.importance.ScoreImportance`; rounded down to ``round_to`` widths); attention
layers lose whole heads (their q/k/v never lose channels otherwise, :mod:`edgeprune.surgery.heads`); an
``nn.MultiheadAttention`` narrows every head alike with the stream. A model torch-pruning cannot trace as a whole
(ShuffleNet, Swin, CSPNet, DPN) is pruned inside its blocks that trace alone, their input and output widths kept
(:mod:`edgeprune.surgery.blocks`). When torch-pruning fails on the full plan, or the pruned model no longer runs, it
retries on a fresh copy with more layers kept whole (:mod:`edgeprune.surgery.fallback`) and says what it kept
(:class:`~edgeprune.surgery.structure.Widths`); last, with the modules the pruned model failed in kept whole (a
hand-written attention reshaping by ``self.h``).
"""

from __future__ import annotations

import contextlib
import itertools
import warnings
from dataclasses import replace

import torch
from torch import nn

from edgeprune.errors import ConfigError, ModelError
from edgeprune.surgery import blocks as blocks_lib
from edgeprune.surgery import branch_weights
from edgeprune.surgery import fallback as fallback_lib
from edgeprune.surgery import heads as heads_lib
from edgeprune.surgery.attributes import widths_followed
from edgeprune.surgery.channels import Originals, lost, merge
from edgeprune.surgery.checks import ForwardFailed, check_still_runs, output_shape, twin
from edgeprune.surgery.graph import dismantle, trace_forward
from edgeprune.surgery.groups import TP_ERRORS, failed
from edgeprune.surgery.importance import ScoreImportance
from edgeprune.surgery.lazy import tp
from edgeprune.surgery.rules import customized_pruners
from edgeprune.surgery.search import bounded_groups, glu_parts
from edgeprune.surgery.structure import Scores, StructurePlan, Widths, group_fractions, kept_channels, widths_of

WHAT = "structured pruning"


def _exact_ratio(fraction: float, channels: int, round_to: int, groups: int) -> float:
    """The ratio that makes torch-pruning keep exactly :func:`kept_channels` of a group: it keeps
    ``int(part * (1 - ratio))`` of each of the ``groups`` equal parts (``part`` channels each). Its own ``round_to``
    rounds a part's count against the whole width: a RegNet group of 48 channels in 2 parts asked to keep 32 in
    multiples of 16 kept 16."""
    part = channels // groups
    return 1.0 - (kept_channels(channels, fraction, round_to, groups) // groups + 0.25) / part


def prune_channels(model: nn.Module, example: torch.Tensor, structure: StructurePlan, fractions: dict[str, float],
                   scores: Scores | None = None, *, round_to: int = 1) -> Widths:
    """Remove channels of ``model`` IN PLACE: every group loses ``fraction`` of its lowest-scoring channels.

    ``fractions``: module name -> fraction in [0, 1) (see :func:`group_fractions`; protected layers are
    skipped). For attention (a fused ``qkv``, or split q/k/v: their mean fraction) the fraction is the share
    of heads removed (rounded, at least one head stays). ``scores``: "<module>.weight" -> per-weight score
    (None: magnitude). ``round_to``: kept widths are multiples of it. Returns module name -> output channels
    after pruning, for every group member (:class:`Widths`).

    Should torch-pruning fail on the plan, or the pruned model not run or change its output shape, the retries
    of :func:`edgeprune.surgery.fallback.retries` follow, each on a fresh copy of the input model; the first that
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
    original, shape = twin(model), output_shape(model, example)
    attempts = itertools.chain([(structure, [])], (
        (replace(structure, protected=protected, heads=heads), [note])
        for protected, heads, note in fallback_lib.retries(original, structure.groups, structure.protected,
                                                           structure.heads)))
    first = None
    for i, (attempt, skipped) in enumerate(attempts):
        if i < structure.retry:
            continue
        candidate = model if first is None else twin(original)
        try:
            widths = _prune(candidate, example, attempt, fractions, scores, round_to, shape)
        except ModelError as exc:
            first = first or exc
            continue
        # a retry seen to remove channels before removes none now only because the fractions are too small
        if i > 0 and i != structure.retry and _params(candidate) >= _params(original):
            first = first or ModelError(f"structured pruning of {type(model).__name__} removed nothing")
            continue
        if candidate is not model:
            blocks_lib.adopt(model, candidate)
        for m, training in zip(model.modules(), modes):  # (mixed train/eval modes survive)
            m.training = training
        structure.retry = i
        return Widths(widths, structure.skipped + skipped + widths.skipped, widths.removed)
    widths = _keeping_failures_whole(model, example, structure, fractions, scores, round_to, shape, original, first)
    for m, training in zip(model.modules(), modes):
        m.training = training
    return widths


# how many times the full plan is retried with the module the pruned model (or the search) failed in kept whole
MAX_KEPT_WHOLE = 6
MAX_BISECTED = 3  # groups found by bisection (each log2(groups) pruned copies) before the model is refused


def _keeping_failures_whole(model, example, structure, fractions, scores, round_to, shape, original, failed):
    """After every retry failed: the full plan again with the modules whose forward failed, or that torch-pruning's
    search ran away from, kept whole (:func:`edgeprune.surgery.fallback.failing_modules`), until it runs; where the
    model's own forward fails (no module to name), the group that breaks it is found by bisection
    (:func:`_breaking_group`). Once it runs, ``structure`` keeps them whole from then on (and says so in
    ``skipped``); should nothing be left to prune, or the model itself fail, the first failure is raised and
    ``model`` left as it was."""
    first, kept, inputs_only, note = failed, [], set(), ""
    breaking: list[list[str]] = []  # the groups found by bisection to break the model's own forward
    protected, heads = structure.protected, structure.heads
    for _ in range(MAX_KEPT_WHOLE):
        more = fallback_lib.failing_modules(original, getattr(failed, "module", None), kept)
        if more:
            kept += more
            if isinstance(failed, ForwardFailed):
                inputs_only |= fallback_lib.failed_on_input(original, more)
            protected, heads = fallback_lib.keep_whole(original, kept, structure.groups, structure.consumers,
                                                       structure.protected.union(*breaking), structure.heads, inputs_only)
            note = fallback_lib.kept_whole_note(original, kept, failed.why, inputs_only)
        elif isinstance(failed, ForwardFailed) and failed.module is None and len(breaking) < MAX_BISECTED:
            group = _breaking_group(original, example, replace(structure, protected=protected, heads=heads), fractions,
                                    scores, round_to, shape)
            if not group:
                break
            breaking.append(group)
            protected = protected | set(group)
            names = [m for g in breaking for m in g]
            note = (f"output channels of {', '.join(names[:4])}{' and more' if len(names) > 4 else ''} kept "
                    f"whole: the model's own forward fails when they lose any ({failed.cause}), a reshape by a fixed "
                    "width torch-pruning cannot see")
        else:
            break
        attempt = replace(structure, protected=protected, heads=heads, retry=0, skipped=[*structure.skipped, note])
        if not attempt.heads and all(set(g) & protected for g in structure.groups):
            first = ModelError(f"structured pruning of {type(model).__name__} is not supported: nothing is left to "
                               f"prune once {note}")
            break
        candidate = twin(original)
        try:
            widths = _prune(candidate, example, attempt, fractions, scores, round_to, shape)
        except ModelError as exc:
            failed = exc
            continue
        blocks_lib.adopt(model, candidate)
        structure.protected, structure.heads, structure.skipped, structure.retry = protected, heads, attempt.skipped, 0
        return Widths(widths, structure.skipped + widths.skipped, widths.removed)
    blocks_lib.adopt(model, original)  # the failed first attempt may have left it half pruned
    raise first


def _breaking_group(original, example, structure, fractions, scores, round_to, shape) -> list[str] | None:
    """The group whose channels the model's own forward cannot lose (``x.view(-1, 320)`` after the last conv): the
    plan is cut to the first k of the groups it would thin, k bisected between one that runs and one that fails
    (log2 of the groups pruned copies); None when it fails with none of them pruned (not a width's fault)."""
    open_groups = [g for g in structure.groups if not set(g) & structure.protected]

    def runs(k: int) -> bool:
        rest = {m for g in open_groups[k:] for m in g}
        try:
            _prune(twin(original), example, replace(structure, protected=structure.protected | rest), fractions,
                   scores, round_to, shape)
            return True
        except ModelError:
            return False

    lo, hi = 0, len(open_groups)  # pruning the first lo groups runs, the first hi fails
    if not open_groups or not runs(0):
        return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if runs(mid) else (lo, mid)
    return open_groups[hi - 1]


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _head_ratios(model: nn.Module, structure: StructurePlan, fractions: dict[str, float]):
    """torch-pruning's head settings for the attention ``structure`` names: (ratios, head ratios, head counts,
    {attention module: (projections, heads, per-head tables)}, names of every projection)."""
    modules = dict(model.named_modules())
    ratios, head_ratios, num_heads, attention, projections = {}, {}, {}, {}, set()
    for first, (attn, heads) in structure.heads.items():
        if first not in modules or attn not in modules:
            continue
        layers = heads_lib.projections(modules[attn])
        names = [n for n, m in modules.items() if any(m is layer for layer in layers)]
        projections.update(names)
        asked = [float(fractions[n]) for n in names if n in fractions]
        gone = min(round(sum(asked) / len(asked) * heads), heads - 1) if asked else 0
        if gone <= 0:
            continue
        attention[attn] = (layers, heads, heads_lib.head_tables(model, attn, heads))
        for layer in layers:
            num_heads[layer] = heads
            head_ratios[layer] = (gone - 0.5) / heads  # BasePruner removes ceil(ratio * heads) heads ...
            ratios[layer] = 0.5  # ... while it visits the group's width scope (widths stay: no head dims)
    return ratios, head_ratios, num_heads, attention, projections


@contextlib.contextmanager
def _uncounted():
    """BasePruner's constructor lists every group to count the channels of global pruning, which we do not use: a
    third of the dependency searches of each pruned copy (Swin-T: 45 -> 30). Inside, that listing is empty."""
    original = tp.DependencyGraph.get_all_groups
    tp.DependencyGraph.get_all_groups = lambda self, *args, **kwargs: iter(())
    try:
        yield
    finally:
        tp.DependencyGraph.get_all_groups = original


def _run_pruner(model: nn.Module, example: torch.Tensor, importance: ScoreImportance, ignored: list, ratios: dict,
                heads: tuple) -> tuple[dict[str, list[int]], dict]:
    """BasePruner over ``model`` (in place, eval mode) with ``ratios`` that give the widths exactly (no rounding of
    its own); the heads every attention module lost and the original indices every module lost."""
    head_ratios, num_heads, attention = heads
    gone_heads: dict[str, list[int]] = {}
    removed: dict = {}
    was_training = model.training
    model.eval()
    pruner = None
    try:
        # bounded: BasePruner's own dependency search can explode where plan()'s did not (timm's ReXNet)
        with warnings.catch_warnings(), bounded_groups(model, None, WHAT):
            warnings.filterwarnings("ignore", message="Unwrapped parameters")  # ViT cls_token/pos_embed: last dim
            with heads_lib.untraced([t for _, _, tables in attention.values() for t in tables]), _uncounted():
                pruner = tp.pruner.BasePruner(
                    model, example, importance=importance, pruning_ratio=0.0, pruning_ratio_dict=ratios,
                    ignored_layers=ignored, round_to=None, num_heads=num_heads,
                    prune_num_heads=bool(head_ratios), prune_head_dims=False,
                    head_pruning_ratio_dict=head_ratios or None, in_channel_groups={},
                    out_channel_groups=heads_lib.mha_groups(model),  # (a fresh dict: BasePruner fills it)
                    forward_fn=trace_forward, customized_pruners=customized_pruners(),
                    # the plan's roots: searches from an LSTM (timm's Sequencer: 36 of 2 s each) find nothing it prunes
                    root_module_types=[tp.ops.TORCH_CONV, tp.ops.TORCH_LINEAR],
                )
            pruner.out_channel_groups.update(glu_parts(pruner.DG))  # a GLU's halves lose the same neurons
            branch_weights.roots_last(pruner.DG)
            originals = Originals(pruner.DG)
            with widths_followed(model):
                for group in pruner.step(interactive=True):
                    for attn, (layers, count, _) in attention.items():
                        gone_heads.setdefault(attn, []).extend(
                            heads_lib.removed_heads(group, layers[0], count, fused=len(layers) == 1))
                    record = lost(pruner.DG, originals, group)
                    group.prune()
                    merge(removed, record)
    except TP_ERRORS as exc:
        raise failed(model, exc, WHAT) from None
    finally:
        model.train(was_training)
        if pruner is not None:
            dismantle(pruner.DG)
    return gone_heads, removed


def _prune(model: nn.Module, example: torch.Tensor, structure: StructurePlan, fractions: dict[str, float],
           scores: Scores | None, round_to: int, shape: tuple | None) -> Widths:
    """One attempt of :func:`prune_channels` with ``structure`` (in place; ModelError if it fails)."""
    if structure.blocks:
        return _prune_blocks(model, example, structure, fractions, scores, round_to, shape)
    modules = dict(model.named_modules())
    ratios, head_ratios, num_heads, attention, projections = _head_ratios(model, structure, fractions)
    for name, value in group_fractions(structure, fractions).items():
        if name in projections or name not in modules:
            continue
        value = _exact_ratio(value, structure.channels[name], round_to, structure.channel_groups.get(name, 1))
        if value > 0:
            ratios[modules[name]] = value
    if not ratios and not head_ratios:
        return Widths(widths_of(model, structure))
    weights = {modules[n[: -len(".weight")]]: s for n, s in (scores or {}).items() if n[: -len(".weight")] in modules}
    ignored = [modules[n] for n in structure.protected if n in modules]
    importance = ScoreImportance(weights, {m: n for n, m in modules.items()})
    what = type(model).__name__
    gone_heads, removed = _run_pruner(model, example, importance, ignored, ratios, (head_ratios, num_heads, attention))
    for attn, (layers, heads, tables) in attention.items():
        gone = sorted(set(gone_heads.get(attn, [])))
        if len(gone) >= heads:  # (HF Hiera: groups coupled with its q/k/v through reshapes remove every head)
            raise ModelError(f"structured pruning of {what} is not supported: torch-pruning removed every head of {attn}")
        heads_lib.update(modules[attn], layers, heads - len(gone), gone, tables, heads)
    check_still_runs(model, example, what, shape)
    unmapped = importance.unmapped
    return Widths(widths_of(model, structure), [
        f"{len(unmapped)} coupled group(s) kept whole, torch-pruning cannot map their channels (through a split, a "
        f"chunk or a functional operation on a bare parameter; first: {unmapped[0]})"] if unmapped else [], removed)


def _prune_blocks(model: nn.Module, example: torch.Tensor, structure: StructurePlan, fractions: dict[str, float],
                  scores: Scores | None, round_to: int, shape: tuple | None) -> Widths:
    """:func:`_prune` inside every block of a plan made of blocks; a block torch-pruning fails in keeps its widths."""
    modules = dict(model.named_modules())
    kept, notes, removed = [], [], {}
    for name, block_input in structure.blocks.items():
        cut = len(name) + 1

        def inside(table, name=name, cut=cut):
            return {k[cut:]: v for k, v in (table or {}).items() if k.startswith(name + ".")}
        sub = StructurePlan(groups=[[m[cut:] for m in g] for g in structure.groups if g[0].startswith(name + ".")],
                            channels=inside(structure.channels), numels=inside(structure.numels),
                            channel_groups=inside(structure.channel_groups),
                            protected=set(inside(dict.fromkeys(structure.protected))))
        block = modules[name]
        backup = twin(block)
        try:
            part = _prune(block, block_input, sub, inside(fractions), inside(scores) or None, round_to,
                          output_shape(block, block_input))
            notes += part.skipped
            merge(removed, [(n, side, idx) for n, r in part.removed.items() for side, idx in r.items()], name)
        except ModelError:
            blocks_lib.adopt(block, backup)
            kept.append(name)
    check_still_runs(model, example, type(model).__name__, shape)
    if kept:
        notes.append(f"{len(kept)} block(s) kept whole, torch-pruning fails inside them (first: {kept[0]})")
    return Widths(widths_of(model, structure), notes, removed)

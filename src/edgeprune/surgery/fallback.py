"""What structured pruning retries when torch-pruning's full plan fails on a model (see
:func:`edgeprune.surgery.ratios.prune_channels`).

Torch-pruning cannot see every coupling: timm's CrossViT, CaiT and ConViT attention reshape q/k/v by
``C // num_heads`` with ``C`` the input width, PVT reshapes by its hidden size, some index mappings fail
outright. Rather than refuse the whole model, structured pruning then retries on a fresh copy of it with less
pruned, each retry keeping more layers whole (:func:`retries`):

1. attention kept whole: every Conv/Linear inside a module with an int ``num_heads``/``num_attention_heads``/
   ``heads`` (its q/k/v, output projection -- hence the residual stream it writes to --, spatial reduction...),
   except the q/k/v of attention :mod:`edgeprune.surgery.heads` handles, which still lose whole heads; MLP
   hidden neurons and conv channels elsewhere still go;
2. only groups outside attention whose members are convs or widening Linears (``d -> h``, ``h > d``): MLP
   hidden widths (with their depthwise conv, as in PVT-v2) and conv channels; no heads.

Each retry says what it kept whole in one line (the structured contract's note, the Mix-and-Match records).

When every retry fails too, the module whose forward failed in the pruned model is what torch-pruning could not
follow, whatever its head count is called (a hand-written attention reshaping by ``self.h``) -- or the layer its
dependency search ran away from (ReXNet's chained partial residuals): :func:`failing_modules` names it and every
module of its class, :func:`keep_whole` keeps their layers and every group coupled to their widths whole, and the
full plan is retried without them (:func:`kept_whole_note`).
"""

from __future__ import annotations

from torch import nn

from edgeprune.surgery import heads as heads_lib

_HEAD_ATTRS = ("num_heads", "num_attention_heads", "heads")
_LAYERS = (nn.modules.conv._ConvNd, nn.Linear)


def _has_heads(module: nn.Module) -> bool:
    return any(isinstance(v, int) and not isinstance(v, bool) and v >= 1
               for v in (getattr(module, a, None) for a in _HEAD_ATTRS))


def attention_modules(model: nn.Module) -> dict[str, list[str]]:
    """Innermost modules with a head count -> the names of the Conv/Linear layers inside them."""
    named = dict(model.named_modules())
    heads = [n for n, m in named.items() if _has_heads(m) and not isinstance(m, nn.MultiheadAttention)]
    inner = [n for n in heads if not any(o != n and (not n or o.startswith(n + ".")) for o in heads)]
    out = {}
    for name in inner:
        prefix = f"{name}." if name else ""
        layers = [f"{prefix}{c}" if c else name for c, m in named[name].named_modules() if isinstance(m, _LAYERS)]
        if layers:
            out[name] = layers
    return out


def _kinds(model: nn.Module, names) -> str:
    named = dict(model.named_modules())
    counts: dict[str, int] = {}
    for n in names:
        kind = type(named[n]).__name__
        counts[kind] = counts.get(kind, 0) + 1
    return ", ".join(f"{k} x{v}" if v > 1 else k for k, v in sorted(counts.items()))


def retries(model: nn.Module, groups: list[list[str]], protected: set[str], heads: dict[str, tuple[str, int]]):
    """The retries after a failed plan, in order: ``(protected layer names, attention heads to prune, note)``.

    ``groups``, ``protected``, ``heads``: the failed :class:`~edgeprune.surgery.structure.StructurePlan`'s.
    """
    named = dict(model.named_modules())
    attention = attention_modules(model)
    inside = {layer for layers in attention.values() for layer in layers}
    handled = {attn for attn, _ in heads.values() if attn in attention}
    projections = {id(layer) for attn in handled for layer in heads_lib.projections(named[attn])}
    q_k_v = {n for n, m in named.items() if id(m) in projections}
    if inside - q_k_v - protected:
        kept = [n for n in attention if n not in handled]
        parts = [f"attention kept whole ({_kinds(model, kept)})"] if kept else []
        if any(set(attention[n]) - q_k_v for n in handled):
            parts.append(f"only whole heads pruned in {_kinds(model, handled)}")
        yield (protected | (inside - q_k_v), heads,
               f"{'; '.join(parts)} (torch-pruning cannot follow their reshapes by the head count)")

    def simple(members: list[str]) -> bool:  # MLP hidden widths (a widening Linear, its depthwise conv) and convs
        return not any(m in inside for m in members) and all(
            isinstance(named[m], nn.modules.conv._ConvNd)
            or (isinstance(named[m], nn.Linear) and named[m].out_features > named[m].in_features) for m in members)
    others = {m for g in groups if not simple(g) for m in g}
    yield (protected | others, {}, "only MLP hidden widths and conv channels outside attention pruned (residual "
                                   "streams and attention kept whole: torch-pruning cannot follow their couplings)")


def _within(name: str, modules) -> bool:
    return any(name == m or name.startswith(m + ".") for m in modules)


def failing_modules(model: nn.Module, failing: str | None, kept: list[str]) -> list[str]:
    """What to keep whole after the pruned model failed in the forward of module ``failing``: it and every module
    of its class (one forward reshapes alike), or its parent's, when it is kept whole already (``kept``) and
    still fails. A class of torch's own (a Linear) stands for itself only. [] when the model itself failed."""
    named = dict(model.named_modules())
    name = failing
    while name and _within(name, kept):
        name = name.rpartition(".")[0]
    if not name or name not in named:
        return []
    kind = type(named[name])
    if kind.__module__.startswith("torch."):
        return [name]
    return [n for n, m in named.items() if n and type(m) is kind and not _within(n, kept)]


def failed_on_input(model: nn.Module, modules: list[str]) -> set[str]:
    """The layers of torch's own among ``modules`` whose forward failed: their weights agree with each other, so their
    input was cut wrongly (SKNet's paths read a split of a fixed size), not their output."""
    named = dict(model.named_modules())
    return {n for n in modules if isinstance(named.get(n), _LAYERS) and type(named[n]).__module__.startswith("torch.")}


def keep_whole(model: nn.Module, modules: list[str], groups: list[list[str]], consumers: list[list[str]],
               protected: set[str], heads: dict[str, tuple[str, int]], inputs_only: set[str] = frozenset()
               ) -> tuple[set[str], dict[str, tuple[str, int]]]:
    """``protected`` and ``heads`` with ``modules`` kept whole: their Conv/Linear layers, and every coupled group one
    of those layers produces or reads (``consumers``: per group, its readers), keep their channels and heads. Of the
    layers in ``inputs_only`` (:func:`failed_on_input`), only the groups they read are kept whole."""
    named = dict(model.named_modules())
    inside = {n for n, m in named.items() if isinstance(m, _LAYERS) and _within(n, set(modules) - inputs_only)}
    coupled = {m for g, readers in zip(groups, consumers) if inside & {*g, *readers} or inputs_only & set(readers)
               for m in g}
    return protected | inside | coupled, {k: v for k, v in heads.items() if not _within(v[0], modules)}


def kept_whole_note(model: nn.Module, modules: list[str], why: str, inputs_only: set[str] = frozenset()) -> str:
    """One line: which modules were kept whole (or only their inputs), and ``why`` (the failure that made it so)."""
    shown = ", ".join(modules[:4]) + (f" and {len(modules) - 4} more" if len(modules) > 4 else "")
    return f"{'the inputs of ' if set(modules) <= inputs_only else ''}{_kinds(model, modules)} kept whole ({shown}): {why}"


__all__ = ["attention_modules", "retries", "failing_modules", "failed_on_input", "keep_whole", "kept_whole_note"]

"""Layer roles: what every prunable tensor of a model is, found from types, shapes and data flow.

:func:`classify` runs ONE forward pass on an example input with hooks on every leaf module and reads the
autograd graph the pass builds. Layer names are never looked at, so renaming every module gives the same
roles. The graph tells, for each prunable layer (a Conv/Linear weight with ndim >= 2, the same set as
:func:`edgeprune.measure.prunable_weights`), which other prunable layers feed it directly (through
non-prunable operations only: activations, norms, reshapes, residual additions, attention arithmetic) and
whether an attention operation (softmax or scaled-dot-product attention) lies on that path.

Roles (first matching rule wins):

``norm``
    BatchNorm/InstanceNorm (``_NormBase``), LayerNorm, GroupNorm, RMSNorm, LocalResponseNorm, or an unknown
    leaf module whose parameters are all 1-D and whose output is invariant to scaling its input
    (f(3x) == f(x): the defining property of a normalisation; this catches e.g. custom channels-first
    LayerNorms without catching LayerScale, for which f(3x) == 3 f(x)). Norm rows have ``param_name=None``.
``classifier``
    the prunable layers whose outputs reach the model's output without passing another prunable layer,
    and whose output size is the number of classes (LeViT: head and distillation head both).
``attn_proj``
    a Linear whose input comes from an attention operation (softmax / SDPA on its input path); also the
    ``out_proj`` of torch's ``nn.MultiheadAttention`` (its fused ``in_proj_weight`` is a bare parameter,
    not a Conv/Linear weight, so it is not prunable in edgeprune and has no row).
``attn_qkv``
    the Linears feeding that attention: every prunable layer upstream of an ``attn_proj`` (fused d->3d
    qkv, separate q/k/v, LeViT's fused d->h(2k+v) qkv and its separate queries/keys_values).
``patch_embed``
    in a model that has attention: every prunable layer that runs (in forward order) before the first
    attention layer (ViT/DeiT/Swin: the patchify conv; LeViT: its 4-conv stem). In a model without
    attention: the first conv consuming the image if it is a *patchify* conv (kernel == stride > 1, as
    ConvNeXt's stem); ordinary stems (ResNet's 3x3/7x7) stay ``conv``.
``mlp_in`` / ``mlp_out``
    a Linear h->d (mlp_out) whose only prunable input is a Linear d->h with h > d (mlp_in), with no
    attention on the path (ViT/Swin/DeiT fc1/fc2, LeViT linear_up/linear_down, ConvNeXt pwconv1/pwconv2).
    Gated MLPs too, where the hidden units are a product: several Linears d->h multiplied (SwiGLU / GeGLU with
    separate gate and value layers, as ViTamin and Llama-style blocks: every one is ``mlp_in``, the first called
    is mlp_out's partner, the others are its *gates*) or one Linear d->2h whose two halves are multiplied (timm's
    GluMlp in EVA-02).
``conv``
    any other convolution. Its ``depth`` is its position among the ``conv`` layers (first 0, last 1) --
    the paper's VGG code sets conv ranges by conv index, so FC layers must not stretch the conv scale.
``linear``
    any other Linear (LeNet FCs, VGG FCs, Swin patch merging).

``depth`` of the other roles is the position among all prunable layers (first 0, last 1); a norm takes
the depth of the prunable layer before it. ``small`` is ``numel < 10_000`` (the paper's small-layer rule;
:mod:`edgeprune.ranges` applies it).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from edgeprune import tasks as tasks_lib
from edgeprune.errors import ModelError
from edgeprune.roles.table import ROLES, SMALL_NUMEL, LayerRole, RoleTable
from edgeprune.roles.trace import CONV_TYPES, Call, is_norm, is_prunable, trace_calls, upstream_of

__all__ = ["ROLES", "SMALL_NUMEL", "LayerRole", "RoleTable", "classify"]


def classify(model: nn.Module, example_input: torch.Tensor) -> RoleTable:
    """The role of every prunable weight and norm layer of ``model``, in forward order.

    ``example_input`` is one batch the model accepts (e.g. ``torch.zeros(1, C, H, W)``); the model is run
    once in eval mode (its train/eval state and ``requires_grad`` flags are restored). Raises ModelError
    if the model cannot run on the input.
    """
    try:
        calls, outputs, leaf = trace_calls(model, example_input)
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(f"cannot classify layers: the model failed on an input of shape "
                         f"{tuple(example_input.shape)} ({type(exc).__name__}: {exc})") from None
    # the class (channel) width of each output: logits [B, C] or [B, ..., C]; dense maps [B, C, H, W]
    widths = {int(o.shape[1] if o.ndim == 4 else o.shape[-1]) for o in outputs if o.ndim}
    num_classes = int(outputs[0].shape[1] if outputs[0].ndim == 4 else outputs[0].shape[-1]) if outputs and outputs[0].ndim else None

    prunable_modules = [(n, m) for n, m in model.named_modules() if is_prunable(m)]
    # Prunable layers never called in the forward pass still get a row (at the end, role from type).
    for name, module in prunable_modules:
        if name not in calls:
            calls[name] = Call(name, module, len(calls))
    ordered = sorted(calls.values(), key=lambda c: c.order)
    prunable = [c for c in ordered if is_prunable(c.module)]
    norms = {c.name for c in ordered if not is_prunable(c.module) and is_norm(c)}
    role, partner = _roles(prunable, _graph_facts(prunable, outputs, leaf), widths)
    rows = _rows(ordered, norms, role, partner, _depths(prunable, role), _fused_in_proj(model))
    return RoleTable(tuple(rows), num_classes)


def _roles(prunable: list[Call], g: _Graph, widths: set[int]) -> tuple[dict[str, str], dict[str, str]]:
    """(role by layer name, MLP partner by layer name) from the graph facts; conv / linear when no rule applies."""
    role: dict[str, str] = {}
    partner: dict[str, str] = {}
    _classifiers(prunable, g, widths, role)
    _attention(prunable, g, role)
    _mlp_pairs(prunable, g, role, partner)
    _patch_embed(prunable, g, role)
    for c in prunable:
        role.setdefault(c.name, "conv" if isinstance(c.module, CONV_TYPES) else "linear")
    return role, partner


def _depths(prunable: list[Call], role: dict[str, str]) -> dict[str, float]:
    """Relative depth in [0, 1]: convs among convs, everything else among all prunable layers."""
    convs = [c.name for c in prunable if role[c.name] == "conv"]
    conv_depth = {n: _rel(i, len(convs)) for i, n in enumerate(convs)}
    return {c.name: conv_depth.get(c.name, _rel(i, len(prunable))) for i, c in enumerate(prunable)}


def _rows(ordered: list[Call], norms: set[str], role: dict, partner: dict, depth: dict, fused: dict) -> list[LayerRole]:
    """One LayerRole per prunable weight (an MHA's fused q/k/v weight before its out_proj) and per norm, in order."""
    entries = []
    last_depth = 0.0
    for c in ordered:
        if is_prunable(c.module):
            w = c.module.weight
            last_depth = depth[c.name]
            if c.name in fused:  # nn.MultiheadAttention's fused q/k/v weight, just before its out_proj
                mha, weight = fused[c.name]
                entries.append(LayerRole(mha, f"{mha}.in_proj_weight" if mha else "in_proj_weight", "attn_qkv",
                                         weight.numel() < SMALL_NUMEL, last_depth, len(entries), weight.numel(),
                                         tuple(weight.shape), None))
            pname = f"{c.name}.weight" if c.name else "weight"
            entries.append(LayerRole(c.name, pname, role[c.name], w.numel() < SMALL_NUMEL, depth[c.name],
                                     len(entries), w.numel(), tuple(w.shape), partner.get(c.name)))
        elif c.name in norms:
            params = list(c.module.parameters(recurse=False))
            numel = sum(p.numel() for p in params)
            shape = tuple(params[0].shape) if params else ()
            entries.append(LayerRole(c.name, None, "norm", numel < SMALL_NUMEL, last_depth, len(entries),
                                     numel, shape, None))
    return entries


@dataclass
class _Graph:
    """What the autograd graph says about each prunable layer (by module name)."""

    upstream: dict[str, set[str]]  # prunable layers feeding it through non-prunable ops only
    consumers: dict[str, set[str]]  # the reverse
    via_attention: dict[str, bool]  # an attention op (softmax / SDPA) lies between it and its upstream
    after_attention: dict[str, bool]  # an attention op lies anywhere upstream of it
    data: dict[str, bool]  # its input depends on the model input (not only on parameters / constants)
    product: dict[str, bool]  # a product of two computed tensors lies between it and its upstream (a gate)
    output_layers: set[str]  # layers feeding an output directly
    attention: bool  # the model has an attention op


def _graph_facts(prunable: list[Call], outputs: list[torch.Tensor], leaf) -> _Graph:
    owner = {node: c.name for c in prunable for node in c.out_nodes}
    upstream, via, from_input, product = {}, {}, {}, {}
    for c in prunable:
        upstream[c.name], via[c.name], from_input[c.name], product[c.name] = upstream_of(c.in_nodes, owner, leaf)
    output_layers = upstream_of([o.grad_fn for o in outputs], owner)[0]
    consumers: dict[str, set[str]] = {c.name: set() for c in prunable}
    for name, ups in upstream.items():
        for u in ups:
            consumers.setdefault(u, set()).add(name)
    data = dict(from_input)
    after = {n: via[n] or bool(c.forced_role) for n, c in ((c.name, c) for c in prunable)}
    for _ in range(2):  # forward order settles it; a second sweep covers layers called out of order
        for c in prunable:
            data[c.name] = data[c.name] or any(data.get(u, False) for u in upstream[c.name])
            after[c.name] = after[c.name] or any(after.get(u, False) for u in upstream[c.name])
    # focal modulation (FocalNet): a Linear reading the product of a token-wise Linear branch and a conv
    # (spatial context) branch mixes tokens as attention does, without a softmax
    kinds = {c.name: type(c.module) for c in prunable}
    for c in prunable:
        ups = upstream[c.name]
        if (isinstance(c.module, nn.Linear) and product[c.name] and any(issubclass(kinds[u], nn.Linear) for u in ups)
                and any(issubclass(kinds[u], CONV_TYPES) for u in ups)):
            via[c.name] = True
    after = {n: via[n] or bool(c.forced_role) for n, c in ((c.name, c) for c in prunable)}
    for _ in range(2):
        for c in prunable:
            after[c.name] = after[c.name] or any(after.get(u, False) for u in upstream[c.name])
    attention = any(via.values()) or any(c.forced_role for c in prunable)
    return _Graph(upstream, consumers, via, after, data, product, output_layers, attention)


def _classifiers(prunable: list[Call], g: _Graph, widths: set[int], role: dict) -> None:
    """Layers feeding an output directly, with as many outputs as it has classes (channels)."""
    dense_task = not isinstance(tasks_lib.current(), tasks_lib.Classification)
    for c in prunable:
        # a detector's heads reshape their channels (anchors x classes) before the output: under a task other than
        # classification every layer feeding an output directly is an output head
        if c.name in g.output_layers and (dense_task or _out_features(c) in widths):
            role[c.name] = "classifier"
    if not role and prunable and _out_features(prunable[-1]) in widths:
        role[prunable[-1].name] = "classifier"  # fallback: the logits are not reachable through autograd


def _attention(prunable: list[Call], g: _Graph, role: dict) -> None:
    """Projection after softmax/SDPA; its data-dependent prunable inputs are q/k/v (a position-bias MLP
    that reads a constant table feeds the softmax too, but is not a projection of the tokens). The token
    mixing of FocalNet's modulation counts as attention: its context convs stay convs."""
    by_name = {c.name: c for c in prunable}
    for c in prunable:
        if c.forced_role and c.name not in role:
            role[c.name] = c.forced_role
    for c in prunable:
        if c.name in role or not g.via_attention[c.name] or not isinstance(c.module, nn.Linear):
            continue
        if not g.data[c.name]:
            continue
        role[c.name] = "attn_proj"
        for up in g.upstream[c.name]:
            if up not in role and g.data[up] and isinstance(by_name[up].module, nn.Linear):
                role[up] = "attn_qkv"


def _mlp_pairs(prunable: list[Call], g: _Graph, role: dict, partner: dict) -> None:
    """A layer d->h (h > d) feeding only a layer h->d: Linear pairs (directly, or through a depthwise conv as
    PVTv2's MLP), or 1x1-conv pairs (PoolFormer, timm's conv-MLP ConvNeXt); norms/activations in between.
    Gated MLPs: several d->h Linears multiplied, or one d->2h Linear whose halves are multiplied."""
    by_name = {c.name: c for c in prunable}
    for c in prunable:
        if c.name in role or g.via_attention[c.name] or not g.data[c.name]:
            continue
        if len(g.upstream[c.name]) != 1:
            _gated_inputs(c, by_name, g, role, partner)
            continue
        (up_name,) = g.upstream[c.name]
        dw = None
        if isinstance(c.module, nn.Linear) and _is_depthwise(by_name[up_name].module):
            dw = up_name  # fc1 -> depthwise conv -> fc2 (PVTv2)
            if len(g.upstream[dw]) != 1 or g.consumers.get(dw) != {c.name}:
                continue
            (up_name,) = g.upstream[dw]
            if g.consumers.get(up_name) != {dw}:
                continue
        up = by_name[up_name]
        if up_name in role or not g.consumers.get(up_name, set()) <= {c.name, dw}:
            continue  # its hidden units feed another layer too (an SSD feature level read by a head): not an MLP
        dims = _pair_dims(up.module, c.module, chunks=2 if dw is None and g.product[c.name] else 1)
        if dims is None:
            continue
        d, h = dims
        if h > d:
            role[up_name], role[c.name] = "mlp_in", "mlp_out"
            partner[up_name], partner[c.name] = c.name, up_name


def _gated_inputs(c: Call, by_name: dict, g: _Graph, role: dict, partner: dict) -> None:
    """``c`` (h->d) reads the product of several d->h Linears that feed nothing else: a gated MLP."""
    ups = sorted(g.upstream[c.name], key=lambda n: by_name[n].order)
    if not g.product[c.name] or any(u in role or g.consumers.get(u) != {c.name} for u in ups):
        return
    dims = {_pair_dims(by_name[u].module, c.module) for u in ups}
    if len(dims) != 1 or None in dims:
        return
    ((d, h),) = dims
    if h > d:
        role[c.name], partner[c.name] = "mlp_out", ups[0]
        for u in ups:
            role[u], partner[u] = "mlp_in", c.name


def _pair_dims(a: nn.Module, b: nn.Module, chunks: int = 1) -> tuple[int, int] | None:
    """(d, h) when ``a`` maps d -> h (or d -> ``chunks`` * h, the chunks of a gate) and ``b`` maps h -> d, both
    Linear or both 1x1 convs; else None."""
    if isinstance(a, nn.Linear) and isinstance(b, nn.Linear):
        (d, h), (h_b, d_b) = (a.in_features, a.out_features), (b.in_features, b.out_features)
    elif _is_pointwise(a) and _is_pointwise(b):
        (d, h), (h_b, d_b) = (a.in_channels, a.out_channels), (b.in_channels, b.out_channels)
    else:
        return None
    if d_b != d:
        return None
    if h == h_b:
        return d, h
    return (d, h_b) if chunks > 1 and h == chunks * h_b else None


def _is_pointwise(m: nn.Module) -> bool:
    return isinstance(m, nn.Conv2d) and m.groups == 1 and all(k == 1 for k in m.kernel_size) \
        and all(s == 1 for s in m.stride)


def _is_depthwise(m: nn.Module) -> bool:
    return isinstance(m, CONV_TYPES) and m.groups > 1 and m.groups == m.in_channels == m.out_channels


def _patch_embed(prunable: list[Call], g: _Graph, role: dict) -> None:
    """Patch embedding, from structure (never from position alone).

    With attention: a strided, channel-mixing conv with no attention upstream whose output becomes tokens
    (it feeds a Linear, directly or through depthwise convs as CvT's conv projections), reached from the
    image through a plain chain of strided convs (ViT/Swin/PVT: one patchify conv; LeViT: its 4-conv stem)
    -- that conv and its chain. A MobileNet stem or block feeding more convs is no patch embedding.
    Without attention: the first conv on the image if it patchifies (kernel == stride > 1, ConvNeXt).
    """
    by_name = {c.name: c for c in prunable}
    if not g.attention:
        for c in prunable:
            if c.name in role or g.upstream[c.name]:
                continue
            if isinstance(c.module, CONV_TYPES) and _is_patchify(c.module):
                role[c.name] = "patch_embed"
            break
        return

    def stem_conv(name: str) -> bool:
        m = by_name[name].module
        return (isinstance(m, CONV_TYPES) and not _is_depthwise(m) and name not in role
                and any(s > 1 for s in m.stride) and not g.after_attention[name])

    def chain(name: str) -> list[str] | None:
        """``name`` and the strided convs before it, if they form a plain chain from the image."""
        out = [name]
        while True:
            ups = g.upstream[out[-1]]
            if not ups:
                return out if g.data[out[-1]] else None
            if len(ups) != 1:
                return None
            (u,) = ups
            if not stem_conv(u) or g.consumers.get(u) != {out[-1]}:
                return None
            out.append(u)

    def feeds_tokens(name: str) -> bool:
        for d in g.consumers.get(name, ()):
            m = by_name[d].module
            if isinstance(m, nn.Linear):
                return True
            if _is_depthwise(m) and any(isinstance(by_name[e].module, nn.Linear) for e in g.consumers.get(d, ())):
                return True
        return False

    for c in prunable:
        if stem_conv(c.name) and feeds_tokens(c.name):
            for name in chain(c.name) or []:
                role[name] = "patch_embed"


def _fused_in_proj(model: nn.Module) -> dict[str, tuple[str, torch.Tensor]]:
    """{out_proj module name: (MultiheadAttention name, in_proj_weight)} of every fused-q/k/v torch MHA."""
    out = {}
    for name, m in model.named_modules():
        if isinstance(m, nn.MultiheadAttention) and isinstance(m.in_proj_weight, torch.Tensor):
            out[f"{name}.out_proj" if name else "out_proj"] = (name, m.in_proj_weight)
    return out


def _out_features(call: Call) -> int | None:
    m = call.module
    if isinstance(m, nn.Linear):
        return m.out_features
    if isinstance(m, CONV_TYPES):
        return m.out_channels
    return call.out_shape[-1] if call.out_shape else None


def _is_patchify(conv: nn.Module) -> bool:
    k, s = tuple(conv.kernel_size), tuple(conv.stride)
    return k == s and all(v > 1 for v in k)


def _rel(i: int, n: int) -> float:
    return i / (n - 1) if n > 1 else 0.0

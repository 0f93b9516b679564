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

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import torch
from torch import nn

from edgeprune.errors import ModelError
from edgeprune.measure.size import PRUNABLE_TYPES
from edgeprune.models import logits_of

ROLES = ("norm", "patch_embed", "classifier", "attn_qkv", "attn_proj", "mlp_in", "mlp_out", "conv", "linear")
SMALL_NUMEL = 10_000

_NORM_TYPES = (
    nn.modules.batchnorm._NormBase,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.LocalResponseNorm,
    *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()),
)
_CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_ATTENTION_OPS = ("Softmax", "ScaledDotProduct", "FlashAttention", "EfficientAttention", "CudnnAttention")


@dataclass(frozen=True)
class LayerRole:
    """The role of one layer. ``param_name`` is ``"<module>.weight"`` for prunable weights, None for norms."""

    module_name: str
    param_name: str | None
    role: str
    small: bool
    depth: float
    order: int
    numel: int
    shape: tuple[int, ...]
    partner: str | None = None


@dataclass(frozen=True)
class RoleTable(Sequence[LayerRole]):
    """The roles of a model's layers in forward order (norms included, ``param_name=None``)."""

    entries: tuple[LayerRole, ...]
    num_classes: int | None = None
    _by_param: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        self._by_param.update({e.param_name: e for e in self.entries if e.param_name})

    def __getitem__(self, i):
        return self.entries[i]

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[LayerRole]:
        return iter(self.entries)

    def prunable(self) -> list[LayerRole]:
        """Entries with a prunable weight (everything but norms), in forward order."""
        return [e for e in self.entries if e.param_name]

    def by_param(self, name: str) -> LayerRole:
        """The entry of parameter ``name`` (``"<module>.weight"``); KeyError if it is not prunable."""
        try:
            return self._by_param[name]
        except KeyError:
            raise KeyError(f"{name!r} is not a prunable weight of this model") from None

    def by_role(self, role: str) -> list[LayerRole]:
        return [e for e in self.entries if e.role == role]

    def mlp_pairs(self) -> list[tuple[LayerRole, LayerRole]]:
        """(mlp_in, mlp_out) entries of every MLP block, in forward order."""
        by_module = {e.module_name: e for e in self.entries}
        return [(e, by_module[e.partner]) for e in self.entries if e.role == "mlp_in" and e.partner in by_module]

    def counts(self) -> dict[str, int]:
        """role -> number of entries (every role of ROLES present, zeros included)."""
        c = Counter(e.role for e in self.entries)
        return {r: c.get(r, 0) for r in ROLES}

    def rows(self) -> list[list]:
        """Rows for printing: order, module, role, small, depth, shape, numel, partner."""
        return [
            [e.order, e.module_name or "(root)", e.role, "yes" if e.small else "", round(e.depth, 3),
             "x".join(map(str, e.shape)), e.numel, e.partner or ""]
            for e in self.entries
        ]

    COLUMNS = ("#", "module", "role", "small", "depth", "shape", "numel", "partner")


# --------------------------------------------------------------------------------------------- tracing


@dataclass
class _Call:
    """What the hooks saw of one module (first call; later calls only add graph nodes)."""

    name: str
    module: nn.Module
    order: int
    in_nodes: list = field(default_factory=list)  # grad_fn of the input at call time (one per call)
    out_nodes: list = field(default_factory=list)  # grad_fn of the (cloned) output (one per call)
    in_shape: tuple = ()
    out_shape: tuple = ()
    example_in: torch.Tensor | None = None
    example_out: torch.Tensor | None = None
    forced_role: str | None = None  # set when the module type fixes the role (MultiheadAttention.out_proj)


def _first_tensor(args, kwargs) -> torch.Tensor | None:
    for a in list(args) + list((kwargs or {}).values()):
        if isinstance(a, torch.Tensor):
            return a
    return None


def _is_prunable(module: nn.Module) -> bool:
    w = getattr(module, "weight", None)
    return isinstance(module, PRUNABLE_TYPES) and isinstance(w, torch.Tensor) and w.ndim >= 2


def _norm_candidate(module: nn.Module) -> bool:
    """An unknown leaf whose parameters are all 1-D (possible norm; confirmed by the scale test)."""
    params = list(module.parameters(recurse=False))
    return bool(params) and all(p.ndim == 1 for p in params) and len({p.numel() for p in params}) == 1


def _trace(model: nn.Module, example_input: torch.Tensor) -> tuple[dict[str, _Call], torch.Tensor, torch.Tensor]:
    """(calls by module name, logits, the input leaf): the input requires grad so the graph shows which
    layers depend on the data (SwinV2's position-bias MLP reads a constant table, not the image)."""
    calls: dict[str, _Call] = {}
    leaf = None
    if example_input.is_floating_point():  # a non-leaf view of a leaf: its graph node leads to the leaf
        leaf = example_input.detach().clone().requires_grad_(True)
        with torch.enable_grad():  # callers may be under no_grad: the clone must keep its link to the leaf
            example_input = leaf.clone()
    handles = []
    leaves = [(n, m) for n, m in model.named_modules()
              if not list(m.children()) or _is_prunable(m) or isinstance(m, _NORM_TYPES)]

    # torch's nn.MultiheadAttention applies out_proj.weight functionally (out_proj is never called): its
    # call stands for out_proj's, and out_proj is an attention projection by construction.
    mha_proj = set()
    for name, module in model.named_modules():
        if isinstance(module, nn.MultiheadAttention) and _is_prunable(module.out_proj):
            proj_name = f"{name}.out_proj" if name else "out_proj"
            mha_proj.add(proj_name)

            def mha_pre(mod, args, kwargs, _name=proj_name):
                x = _first_tensor(args, kwargs)
                call = calls.get(_name) or calls.setdefault(_name, _Call(_name, mod.out_proj, len(calls)))
                call.forced_role = "attn_proj"
                if x is not None:
                    call.in_shape = call.in_shape or tuple(x.shape)
                    call.in_nodes.append(x.grad_fn)

            def mha_hook(mod, args, kwargs, output, _name=proj_name):
                first = output[0] if isinstance(output, tuple) else output
                if not isinstance(first, torch.Tensor) or not first.requires_grad:
                    return None
                call = calls[_name]
                call.out_shape = call.out_shape or tuple(first.shape)
                first = first.clone()
                call.out_nodes.append(first.grad_fn)
                return (first, *output[1:]) if isinstance(output, tuple) else first

            handles.append(module.register_forward_pre_hook(mha_pre, with_kwargs=True))
            handles.append(module.register_forward_hook(mha_hook, with_kwargs=True))

    for name, module in leaves:
        if name in mha_proj:
            continue
        prunable = _is_prunable(module)
        watch = prunable or isinstance(module, _NORM_TYPES) or _norm_candidate(module)
        if not watch:
            continue

        def pre_hook(mod, args, kwargs, _name=name, _prunable=prunable):
            x = _first_tensor(args, kwargs)
            call = calls.get(_name)
            if call is None:
                call = calls[_name] = _Call(_name, mod, len(calls))
                if x is not None:
                    call.in_shape = tuple(x.shape)
                    if not _prunable and not isinstance(mod, _NORM_TYPES):  # kept for the scale test
                        call.example_in = x.detach().clone()
            if x is not None:
                call.in_nodes.append(x.grad_fn)

        def hook(mod, args, kwargs, output, _name=name, _prunable=prunable):
            call = calls[_name]
            if not isinstance(output, torch.Tensor):
                return None
            if not call.out_shape:
                call.out_shape = tuple(output.shape)
                if not _prunable and not isinstance(mod, _NORM_TYPES):
                    call.example_out = output.detach().clone()
            if _prunable and output.requires_grad:
                # A clone gives a graph node of our own that later in-place ops (ReLU(inplace) on a
                # view) cannot rebase away; consumers of the output then reach exactly this node.
                output = output.clone()
                call.out_nodes.append(output.grad_fn)
                return output
            return None

        handles.append(module.register_forward_pre_hook(pre_hook, with_kwargs=True))
        handles.append(module.register_forward_hook(hook, with_kwargs=True))

    modes = [(m, m.training) for m in model.modules()]  # restored one by one: mixed modes survive
    frozen = [p for p in model.parameters() if not p.requires_grad]
    try:
        for p in frozen:
            p.requires_grad_(True)
        model.eval()
        with torch.enable_grad():
            out = logits_of(model(example_input))
    finally:
        for h in handles:
            h.remove()
        for p in frozen:
            p.requires_grad_(False)
        model.train()  # train() drops caches built during the pass (HF LeViT's attention biases, with grads)
        for m, training in modes:
            m.training = training
    return calls, out, leaf


def _upstream(start_nodes, owner: dict, leaf=None) -> tuple[set[str], bool, bool, bool]:
    """Prunable modules reached backwards from ``start_nodes`` without passing another prunable layer,
    whether an attention op lies on those paths, whether they reach the input tensor ``leaf``, and whether
    a product of two computed tensors lies on them (FocalNet's ``q * modulator``, gates)."""
    found: set[str] = set()
    attention = False
    from_input = False
    product = False
    seen = set()
    queue = deque(n for n in start_nodes if n is not None)
    while queue:
        node = queue.popleft()
        if node in seen:
            continue
        seen.add(node)
        if node in owner:
            found.add(owner[node])
            continue
        if any(op in type(node).__name__ for op in _ATTENTION_OPS):
            attention = True
        if leaf is not None and getattr(node, "variable", None) is leaf:
            from_input = True
        if type(node).__name__ == "MulBackward0" and all(
                n is not None and type(n).__name__ != "AccumulateGrad" for n, _ in node.next_functions):
            product = True
        for nxt, _ in node.next_functions:
            if nxt is not None and nxt not in seen:
                queue.append(nxt)
    return found, attention, from_input, product


def _is_norm(call: _Call) -> bool:
    if isinstance(call.module, _NORM_TYPES):
        return True
    if call.example_in is None or call.example_out is None or call.example_in.shape != call.example_out.shape:
        return False
    if not call.example_in.is_floating_point() or call.example_in.numel() < 2:
        return False
    try:
        with torch.no_grad():
            scaled = call.module(call.example_in * 3.0)
        return isinstance(scaled, torch.Tensor) and torch.allclose(scaled, call.example_out, rtol=1e-3, atol=1e-4)
    except Exception:  # an unknown module that cannot be re-run alone is simply not a norm
        return False


# --------------------------------------------------------------------------------------------- classify


def classify(model: nn.Module, example_input: torch.Tensor) -> RoleTable:
    """The role of every prunable weight and norm layer of ``model``, in forward order.

    ``example_input`` is one batch the model accepts (e.g. ``torch.zeros(1, C, H, W)``); the model is run
    once in eval mode (its train/eval state and ``requires_grad`` flags are restored). Raises ModelError
    if the model cannot run on the input.
    """
    try:
        calls, logits, leaf = _trace(model, example_input)
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(f"cannot classify layers: the model failed on an input of shape "
                         f"{tuple(example_input.shape)} ({type(exc).__name__}: {exc})") from None
    num_classes = int(logits.shape[-1]) if logits.ndim else None

    prunable_modules = [(n, m) for n, m in model.named_modules() if _is_prunable(m)]
    # Prunable layers never called in the forward pass still get a row (at the end, role from type).
    for name, module in prunable_modules:
        if name not in calls:
            calls[name] = _Call(name, module, len(calls))
    ordered = sorted(calls.values(), key=lambda c: c.order)
    prunable = [c for c in ordered if _is_prunable(c.module)]
    norms = {c.name for c in ordered if not _is_prunable(c.module) and _is_norm(c)}
    g = _graph_facts(prunable, logits, leaf)

    role: dict[str, str] = {}
    partner: dict[str, str] = {}
    _classifiers(prunable, g, num_classes, role)
    _attention(prunable, g, role)
    _mlp_pairs(prunable, g, role, partner)
    _patch_embed(prunable, g, role)
    for c in prunable:
        role.setdefault(c.name, "conv" if isinstance(c.module, _CONV_TYPES) else "linear")

    # depth: convs among convs, everything else among all prunable layers
    convs = [c.name for c in prunable if role[c.name] == "conv"]
    conv_depth = {n: _rel(i, len(convs)) for i, n in enumerate(convs)}
    depth = {c.name: conv_depth.get(c.name, _rel(i, len(prunable))) for i, c in enumerate(prunable)}

    fused = _fused_in_proj(model)
    entries = []
    last_depth = 0.0
    for c in ordered:
        if _is_prunable(c.module):
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
    return RoleTable(tuple(entries), num_classes)


@dataclass
class _Graph:
    """What the autograd graph says about each prunable layer (by module name)."""

    upstream: dict[str, set[str]]  # prunable layers feeding it through non-prunable ops only
    consumers: dict[str, set[str]]  # the reverse
    via_attention: dict[str, bool]  # an attention op (softmax / SDPA) lies between it and its upstream
    after_attention: dict[str, bool]  # an attention op lies anywhere upstream of it
    data: dict[str, bool]  # its input depends on the model input (not only on parameters / constants)
    output_layers: set[str]  # layers feeding the logits directly
    attention: bool  # the model has an attention op


def _graph_facts(prunable: list[_Call], logits: torch.Tensor, leaf) -> _Graph:
    owner = {node: c.name for c in prunable for node in c.out_nodes}
    upstream, via, from_input, product = {}, {}, {}, {}
    for c in prunable:
        upstream[c.name], via[c.name], from_input[c.name], product[c.name] = _upstream(c.in_nodes, owner, leaf)
    output_layers = _upstream([logits.grad_fn], owner)[0]
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
                and any(issubclass(kinds[u], _CONV_TYPES) for u in ups)):
            via[c.name] = True
    after = {n: via[n] or bool(c.forced_role) for n, c in ((c.name, c) for c in prunable)}
    for _ in range(2):
        for c in prunable:
            after[c.name] = after[c.name] or any(after.get(u, False) for u in upstream[c.name])
    attention = any(via.values()) or any(c.forced_role for c in prunable)
    return _Graph(upstream, consumers, via, after, data, output_layers, attention)


def _classifiers(prunable: list[_Call], g: _Graph, num_classes: int | None, role: dict) -> None:
    """Layers feeding the logits directly, with num_classes outputs."""
    for c in prunable:
        if c.name in g.output_layers and num_classes is not None and _out_features(c) == num_classes:
            role[c.name] = "classifier"
    if not role and prunable and _out_features(prunable[-1]) == num_classes:
        role[prunable[-1].name] = "classifier"  # fallback: the logits are not reachable through autograd


def _attention(prunable: list[_Call], g: _Graph, role: dict) -> None:
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


def _mlp_pairs(prunable: list[_Call], g: _Graph, role: dict, partner: dict) -> None:
    """A layer d->h (h > d) feeding only a layer h->d: Linear pairs (directly, or through a depthwise conv as
    PVTv2's MLP), or 1x1-conv pairs (PoolFormer, timm's conv-MLP ConvNeXt); norms/activations in between."""
    by_name = {c.name: c for c in prunable}
    for c in prunable:
        if c.name in role or g.via_attention[c.name] or not g.data[c.name] or len(g.upstream[c.name]) != 1:
            continue
        (up_name,) = g.upstream[c.name]
        if isinstance(c.module, nn.Linear) and _is_depthwise(by_name[up_name].module):
            dw = up_name  # fc1 -> depthwise conv -> fc2 (PVTv2)
            if len(g.upstream[dw]) != 1 or g.consumers.get(dw) != {c.name}:
                continue
            (up_name,) = g.upstream[dw]
            if g.consumers.get(up_name) != {dw}:
                continue
        up = by_name[up_name]
        if up_name in role:
            continue
        dims = _pair_dims(up.module, c.module)
        if dims is None:
            continue
        d, h = dims
        if h > d:
            role[up_name], role[c.name] = "mlp_in", "mlp_out"
            partner[up_name], partner[c.name] = c.name, up_name


def _pair_dims(a: nn.Module, b: nn.Module) -> tuple[int, int] | None:
    """(d, h) when ``a`` maps d -> h and ``b`` maps h -> d, both Linear or both 1x1 convs; else None."""
    if isinstance(a, nn.Linear) and isinstance(b, nn.Linear):
        d, h = a.in_features, a.out_features
        return (d, h) if b.in_features == h and b.out_features == d else None
    if _is_pointwise(a) and _is_pointwise(b):
        d, h = a.in_channels, a.out_channels
        return (d, h) if b.in_channels == h and b.out_channels == d else None
    return None


def _is_pointwise(m: nn.Module) -> bool:
    return isinstance(m, nn.Conv2d) and m.groups == 1 and all(k == 1 for k in m.kernel_size) \
        and all(s == 1 for s in m.stride)


def _is_depthwise(m: nn.Module) -> bool:
    return isinstance(m, _CONV_TYPES) and m.groups > 1 and m.groups == m.in_channels == m.out_channels


def _patch_embed(prunable: list[_Call], g: _Graph, role: dict) -> None:
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
            if isinstance(c.module, _CONV_TYPES) and _is_patchify(c.module):
                role[c.name] = "patch_embed"
            break
        return

    def stem_conv(name: str) -> bool:
        m = by_name[name].module
        return (isinstance(m, _CONV_TYPES) and not _is_depthwise(m) and name not in role
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


def _out_features(call: _Call) -> int | None:
    m = call.module
    if isinstance(m, nn.Linear):
        return m.out_features
    if isinstance(m, _CONV_TYPES):
        return m.out_channels
    return call.out_shape[-1] if call.out_shape else None


def _is_patchify(conv: nn.Module) -> bool:
    k, s = tuple(conv.kernel_size), tuple(conv.stride)
    return k == s and all(v > 1 for v in k)


def _rel(i: int, n: int) -> float:
    return i / (n - 1) if n > 1 else 0.0

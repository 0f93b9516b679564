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


def _trace(model: nn.Module, example_input: torch.Tensor) -> tuple[dict[str, _Call], torch.Tensor]:
    calls: dict[str, _Call] = {}
    handles = []
    leaves = [(n, m) for n, m in model.named_modules() if not list(m.children()) or _is_prunable(m)]

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
        for m, training in modes:
            m.training = training
    return calls, out


def _upstream(start_nodes, owner: dict) -> tuple[set[str], bool]:
    """Prunable modules reached backwards from ``start_nodes`` without passing another prunable layer,
    and whether an attention op lies on those paths."""
    found: set[str] = set()
    attention = False
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
        for nxt, _ in node.next_functions:
            if nxt is not None and nxt not in seen:
                queue.append(nxt)
    return found, attention


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
        calls, logits = _trace(model, example_input)
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

    owner = {node: c.name for c in prunable for node in c.out_nodes}
    upstream: dict[str, set[str]] = {}
    via_attention: dict[str, bool] = {}
    for c in prunable:
        upstream[c.name], via_attention[c.name] = _upstream(c.in_nodes, owner)
    output_layers, _ = _upstream([logits.grad_fn], owner)

    role: dict[str, str] = {}
    partner: dict[str, str] = {}

    # classifier: layers feeding the logits directly, with num_classes outputs
    for c in prunable:
        if c.name in output_layers and num_classes is not None and _out_features(c) == num_classes:
            role[c.name] = "classifier"
    if not any(r == "classifier" for r in role.values()) and prunable and _out_features(prunable[-1]) == num_classes:
        role[prunable[-1].name] = "classifier"  # fallback: the logits are not reachable through autograd

    # attention: projection after softmax/SDPA; its prunable inputs are q/k/v
    for c in prunable:
        if c.forced_role and c.name not in role:
            role[c.name] = c.forced_role
    for c in prunable:
        if c.name in role or not via_attention[c.name] or not isinstance(c.module, nn.Linear):
            continue
        role[c.name] = "attn_proj"
        for up in upstream[c.name]:
            if up not in role:
                role[up] = "attn_qkv"

    # MLP pairs: Linear d->h (h > d) feeding only a Linear h->d
    by_name = {c.name: c for c in prunable}
    for c in prunable:
        if c.name in role or via_attention[c.name] or not isinstance(c.module, nn.Linear) or len(upstream[c.name]) != 1:
            continue
        (up_name,) = upstream[c.name]
        up = by_name[up_name]
        if up_name in role or not isinstance(up.module, nn.Linear):
            continue
        d, h = up.module.in_features, up.module.out_features
        if h > d and c.module.in_features == h and c.module.out_features == d:
            role[up_name], role[c.name] = "mlp_in", "mlp_out"
            partner[up_name], partner[c.name] = c.name, up_name

    # patch embedding
    attention_roles = ("attn_qkv", "attn_proj")
    if any(r in attention_roles for r in role.values()):
        for c in prunable:
            if role.get(c.name) in attention_roles:
                break
            role.setdefault(c.name, "patch_embed")
    else:
        for c in prunable:
            if c.name in role or upstream[c.name]:
                continue
            if isinstance(c.module, _CONV_TYPES) and _is_patchify(c.module):
                role[c.name] = "patch_embed"
            break

    for c in prunable:
        role.setdefault(c.name, "conv" if isinstance(c.module, _CONV_TYPES) else "linear")

    # depth: convs among convs, everything else among all prunable layers
    convs = [c.name for c in prunable if role[c.name] == "conv"]
    conv_depth = {n: _rel(i, len(convs)) for i, n in enumerate(convs)}
    depth = {c.name: conv_depth.get(c.name, _rel(i, len(prunable))) for i, c in enumerate(prunable)}

    entries = []
    last_depth = 0.0
    for c in ordered:
        if _is_prunable(c.module):
            w = c.module.weight
            last_depth = depth[c.name]
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

"""One traced forward pass: what hooks on every leaf module saw, and the autograd graph between them."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import torch
from torch import nn

from edgeprune import tasks as tasks_lib
from edgeprune.measure.size import PRUNABLE_TYPES

NORM_TYPES = (
    nn.modules.batchnorm._NormBase,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.LocalResponseNorm,
    *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()),
)
CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
ATTENTION_OPS = ("Softmax", "ScaledDotProduct", "FlashAttention", "EfficientAttention", "CudnnAttention")


@dataclass
class Call:
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
    seq: int = -1  # the autograd sequence number when it was first called (graph nodes made later have larger)


def first_tensor(args, kwargs) -> torch.Tensor | None:
    for a in list(args) + list((kwargs or {}).values()):
        if isinstance(a, torch.Tensor):
            return a
    return None


def is_prunable(module: nn.Module) -> bool:
    w = getattr(module, "weight", None)
    return isinstance(module, PRUNABLE_TYPES) and isinstance(w, torch.Tensor) and w.ndim >= 2


def norm_candidate(module: nn.Module) -> bool:
    """An unknown leaf whose parameters are all 1-D (possible norm; confirmed by the scale test)."""
    params = list(module.parameters(recurse=False))
    return bool(params) and all(p.ndim == 1 for p in params) and len({p.numel() for p in params}) == 1


def trace_calls(model: nn.Module, example_input: torch.Tensor) -> tuple[dict[str, Call], torch.Tensor, torch.Tensor]:
    """(calls by module name, logits, the input leaf): the input requires grad so the graph shows which
    layers depend on the data (SwinV2's position-bias MLP reads a constant table, not the image)."""
    calls: dict[str, Call] = {}
    leaf = None
    if example_input.is_floating_point():  # a non-leaf view of a leaf: its graph node leads to the leaf
        leaf = example_input.detach().clone().requires_grad_(True)
        with torch.enable_grad():  # callers may be under no_grad: the clone must keep its link to the leaf
            example_input = leaf.clone()
    handles, mha_proj = _hook_mha(model, calls)
    handles += _hook_leaves(model, calls, skip=mha_proj)
    modes = [(m, m.training) for m in model.modules()]  # restored one by one: mixed modes survive
    frozen = [p for p in model.parameters() if not p.requires_grad]
    try:
        for p in frozen:
            p.requires_grad_(True)
        model.eval()
        with torch.enable_grad():
            out = role_outputs(tasks_lib.current().deployable(model)(example_input))
    finally:
        for h in handles:
            h.remove()
        for p in frozen:
            p.requires_grad_(False)
        model.train()  # train() drops caches built during the pass (HF LeViT's attention biases, with grads)
        for m, training in modes:
            m.training = training
    _add_functional_calls(model, calls, out)
    return calls, out, leaf


def _now() -> int:
    """The autograd sequence number a graph node made now gets."""
    with torch.enable_grad():
        return torch.zeros((), requires_grad=True).clone().grad_fn._sequence_nr()


_WEIGHT_VIEWS = ("TBackward0", "TransposeBackward0", "PermuteBackward0", "ViewBackward0", "ReshapeAliasBackward0")


def _weight_of(node):
    """The parameter a graph input node stands for: the leaf itself or a transposed / reshaped view of it."""
    while node is not None:
        if type(node).__name__ == "AccumulateGrad":
            return node.variable
        if type(node).__name__ not in _WEIGHT_VIEWS or len(node.next_functions) != 1:
            return None
        node = node.next_functions[0][0]
    return None


def _add_functional_calls(model: nn.Module, calls: dict[str, Call], outputs: list[torch.Tensor]) -> None:
    """A prunable layer whose forward never ran but whose weight the graph uses (torchvision's Swin attention
    calls ``F.linear(x, self.qkv.weight, ...)``): the graph node applying the weight stands for its call, placed
    in forward order after the hooked layer created just before it."""
    unused = {id(m.weight): n for n, m in model.named_modules() if is_prunable(m) and n not in calls}
    if not unused:
        return
    applied: dict[str, list] = {}
    seen, queue = set(), deque(o.grad_fn for o in outputs if o.grad_fn is not None)
    while queue:
        node = queue.popleft()
        if node in seen:
            continue
        seen.add(node)
        for child, _ in node.next_functions:
            weight = _weight_of(child)
            if weight is not None and id(weight) in unused:
                applied.setdefault(unused[id(weight)], []).append(node)
            if child is not None and child not in seen:
                queue.append(child)
    for name, nodes in applied.items():
        nodes.sort(key=lambda n: n._sequence_nr())
        first = nodes[0]._sequence_nr()
        before = max((c.order for c in calls.values() if 0 <= c.seq < first), default=-1)
        module = model.get_submodule(name)
        calls[name] = Call(name, module, before + first / (1 << 40), out_nodes=nodes,
                           in_nodes=[c for n in nodes for c, _ in n.next_functions if _weight_of(c) is not module.weight])


def _hook_mha(model: nn.Module, calls: dict[str, Call]) -> tuple[list, set[str]]:
    """Hooks on every nn.MultiheadAttention that record its call as its out_proj's; (handles, out_proj names).

    torch's nn.MultiheadAttention applies out_proj.weight functionally (out_proj is never called): its
    call stands for out_proj's, and out_proj is an attention projection by construction."""
    handles, mha_proj = [], set()
    for name, module in model.named_modules():
        if isinstance(module, nn.MultiheadAttention) and is_prunable(module.out_proj):
            proj_name = f"{name}.out_proj" if name else "out_proj"
            mha_proj.add(proj_name)
            pre_hook, hook = _mha_hooks(calls, proj_name)
            handles.append(module.register_forward_pre_hook(pre_hook, with_kwargs=True))
            handles.append(module.register_forward_hook(hook, with_kwargs=True))
    return handles, mha_proj


def _mha_hooks(calls: dict[str, Call], proj_name: str):
    def mha_pre(mod, args, kwargs):
        x = first_tensor(args, kwargs)
        call = calls.get(proj_name) or calls.setdefault(proj_name, Call(proj_name, mod.out_proj, len(calls)))
        call.forced_role = "attn_proj"
        if x is not None:
            call.in_shape = call.in_shape or tuple(x.shape)
            call.in_nodes.append(x.grad_fn)

    def mha_hook(mod, args, kwargs, output):
        first = output[0] if isinstance(output, tuple) else output
        if not isinstance(first, torch.Tensor) or not first.requires_grad:
            return None
        call = calls[proj_name]
        call.out_shape = call.out_shape or tuple(first.shape)
        first = first.clone()
        call.out_nodes.append(first.grad_fn)
        return (first, *output[1:]) if isinstance(output, tuple) else first

    return mha_pre, mha_hook


def _hook_leaves(model: nn.Module, calls: dict[str, Call], skip: set[str]) -> list:
    """Hooks on every prunable layer, norm and possible norm (leaves, except the names in ``skip``); their handles."""
    handles = []
    for name, module in model.named_modules():
        if name in skip or not (not list(module.children()) or is_prunable(module) or isinstance(module, NORM_TYPES)):
            continue
        prunable = is_prunable(module)
        if not (prunable or isinstance(module, NORM_TYPES) or norm_candidate(module)):
            continue
        pre_hook, hook = _leaf_hooks(calls, name, prunable)
        handles.append(module.register_forward_pre_hook(pre_hook, with_kwargs=True))
        handles.append(module.register_forward_hook(hook, with_kwargs=True))
    return handles


def _leaf_hooks(calls: dict[str, Call], name: str, prunable: bool):
    def pre_hook(mod, args, kwargs):
        x = first_tensor(args, kwargs)
        call = calls.get(name)
        if call is None:
            call = calls[name] = Call(name, mod, len(calls), seq=_now())
            if x is not None:
                call.in_shape = tuple(x.shape)
                if not prunable and not isinstance(mod, NORM_TYPES):  # kept for the scale test
                    call.example_in = x.detach().clone()
        if x is not None:
            call.in_nodes.append(x.grad_fn)

    def hook(mod, args, kwargs, output):
        call = calls[name]
        if not isinstance(output, torch.Tensor):
            return None
        if not call.out_shape:
            call.out_shape = tuple(output.shape)
            if not prunable and not isinstance(mod, NORM_TYPES):
                call.example_out = output.detach().clone()
        if prunable and output.requires_grad:
            # A clone gives a graph node of our own that later in-place ops (ReLU(inplace) on a
            # view) cannot rebase away; consumers of the output then reach exactly this node.
            output = output.clone()
            call.out_nodes.append(output.grad_fn)
            return output
        return None

    return pre_hook, hook


def role_outputs(output) -> list[torch.Tensor]:
    """The output tensors roles are read from: the current task's (a classifier's logits); per-pixel logits
    [B, classes, H, W] bring every dense output of the model along (torchvision's ``out`` and ``aux``), so the
    layers producing any of them are its classifiers, whatever the task in hand."""
    outs = tasks_lib.current().scored_outputs(output)
    if len(outs) == 1 and outs[0].ndim == 4:
        return [t for t in tasks_lib.output_tensors(output) if t.ndim == 4 and t.shape[1] == outs[0].shape[1]]
    return outs


def upstream_of(start_nodes, owner: dict, leaf=None) -> tuple[set[str], bool, bool, bool]:
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
        if any(op in type(node).__name__ for op in ATTENTION_OPS):
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


def is_norm(call: Call) -> bool:
    if isinstance(call.module, NORM_TYPES):
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



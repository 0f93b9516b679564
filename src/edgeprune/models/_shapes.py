"""Layer structure of a model and resizing a fresh model to it: how physically pruned models load back.

Structured pruning (torch-pruning channel pruning, Reconvene's narrower convs, VBP's narrower MLPs, removed
attention heads) changes shape-defining attributes (``out_channels``, ``groups``, ``num_features``,
``normalized_shape``, ``embed_dim``, ``num_heads``...) and the shapes of parameters and buffers (BatchNorm
running stats included); depth pruning replaces residual blocks by ``nn.Identity``. :func:`structure` records
them; :func:`resize` gives a freshly built model the recorded attributes, identities and parameters/buffers of
the saved shapes, so the state_dict then loads strictly; :func:`check_structure` then refuses a record whose
attributes disagree with the loaded tensors (a width or head count edited in the file).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from edgeprune.errors import CheckpointError
from edgeprune.models._common import to_plain
from edgeprune.models.mha import split_mha

# shape-defining attributes per layer type: what structured pruning changes
SHAPE_ATTRS: tuple[tuple[type, tuple[str, ...]], ...] = (
    (nn.modules.conv._ConvNd, ("in_channels", "out_channels", "groups")),
    (nn.Linear, ("in_features", "out_features")),
    (nn.modules.batchnorm._NormBase, ("num_features",)),
    (nn.LayerNorm, ("normalized_shape",)),
    (nn.GroupNorm, ("num_groups", "num_channels")),
    (nn.MultiheadAttention, ("embed_dim", "kdim", "vdim", "head_dim")),
    (nn.Embedding, ("num_embeddings", "embedding_dim")),
    (nn.PReLU, ("num_parameters",)),
    (nn.RNNBase, ("input_size", "hidden_size")),  # structured pruning thins a recurrent layer's input
)
# head counts that attention layers (ours, HF, nn.MultiheadAttention) read at forward time
HEAD_ATTRS = ("num_heads", "num_attention_heads", "attention_head_size", "all_head_size", "attn_dim")


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module behind torch.compile / DataParallel / DDP wrappers."""
    model = getattr(model, "_orig_mod", model)
    if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
        model = model.module
    return model


def structure(model: nn.Module) -> dict[str, dict]:
    """Module name -> {"type", shape-defining attributes} of every layer whose shape pruning can change.

    Known layers (Conv/Linear/norms/MultiheadAttention/Embedding/PReLU) and attention modules with head
    counts record their attributes; any other module owning parameters or buffers directly (a ViT's
    ``cls_token``, a user's ``nn.Parameter`` scale) records their shapes, so they are resized too.
    """
    out: dict[str, dict] = {}
    for name, module in model.named_modules():
        record: dict = {}
        for types, attrs in SHAPE_ATTRS:
            if isinstance(module, types):
                record.update({a: to_plain(getattr(module, a), "layer structure") for a in attrs})
        for attr in HEAD_ATTRS:
            value = getattr(module, attr, None)
            if isinstance(value, int) and not isinstance(value, bool):
                record[attr] = value
        if isinstance(module, nn.Identity) and name:
            record["type"] = "Identity"  # a removed block (or an identity the model always had)
        if not record:
            own = [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]
            if own:
                record["shapes"] = {n: list(t.shape) for n, t in own if t is not None}
        if record:
            out[name] = {"type": type(module).__name__, **record}
    return out


def state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """CPU state_dict with torch.nn.utils.prune re-parametrisations baked in (weight = weight_orig * mask)."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    for key in [k for k in state if k.endswith("_orig")]:
        base = key[: -len("_orig")]
        if f"{base}_mask" in state:
            state[base] = state.pop(key) * state.pop(f"{base}_mask")
    return state


def resize(model: nn.Module, layers: dict, state: dict[str, torch.Tensor]) -> None:
    """Give each recorded layer its saved attributes and fresh parameters/buffers of the saved shapes."""
    split = {n for n, r in layers.items() if isinstance(r, dict) and r.get("type") == "SplitMultiheadAttention"}
    if split:  # saved after structured pruning split its nn.MultiheadAttention layers (models.mha)
        split_mha(model, only=split)
    modules = dict(model.named_modules())
    removed = [n for n, r in layers.items() if isinstance(r, dict) and r.get("type") == "Identity"
               and n in modules and not isinstance(modules[n], nn.Identity)]
    for name in removed:  # saved after depth pruning removed these blocks (surgery.depth)
        model.set_submodule(name, nn.Identity())
    if removed:
        modules = dict(model.named_modules())
    for name, record in layers.items():
        module = modules.get(name)
        if module is None or not isinstance(record, dict) or type(module).__name__ != record.get("type"):
            continue  # a layer the model does not have: reported by the key check
        for attr, value in record.items():
            current = getattr(module, attr, None)
            if attr not in ("type", "shapes") and current is not None:
                value = tuple(value) if isinstance(current, tuple) else value
                if value != current:
                    setattr(module, attr, value)
        prefix = f"{name}." if name else ""
        bias = state.get(prefix + "bias")
        if bias is not None and getattr(module, "bias", False) is None:  # reconstruction gave the layer a bias
            module.bias = nn.Parameter(torch.empty(bias.shape, dtype=bias.dtype, device=module.weight.device))
        for pname, param in list(module.named_parameters(recurse=False)):
            saved = state.get(prefix + pname)
            if saved is not None and saved.shape != param.shape:
                setattr(module, pname, nn.Parameter(torch.empty(saved.shape, dtype=param.dtype, device=param.device),
                                                    requires_grad=param.requires_grad))
        for bname, buf in list(module.named_buffers(recurse=False)):
            saved = state.get(prefix + bname)
            if saved is not None and saved.shape != buf.shape:
                setattr(module, bname, torch.empty(saved.shape, dtype=buf.dtype, device=buf.device))


def check_keys(model: nn.Module, state: dict[str, torch.Tensor], source: str, target: str) -> None:
    """One-line CheckpointError when ``state`` does not load strictly into ``model`` (``target`` names it)."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [f"{k} {tuple(state[k].shape)} vs {tuple(expected[k].shape)}"
                  for k in state if k in expected and state[k].shape != expected[k].shape]
    problems = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", mismatched)):
        if keys:
            problems.append(f"{label} ({len(keys)}): {', '.join(keys[:5])}{', ...' if len(keys) > 5 else ''}")
    if problems:
        raise CheckpointError(f"{source} does not fit {target}: {'; '.join(problems)}")


# (what the layer records, the size it implies, the tensor's dotted path in the layer, its dimension or None
# for the whole shape, whether the tensor's size need only be a multiple of it)
Rule = tuple[str, object, str, "int | None", bool]
_HEAD_SIZES = ("head_dim", "attention_head_size")
_HEAD_TOTALS = ("all_head_size", "attn_dim")


def _layer_rules(module: nn.Module) -> Iterator[Rule]:
    """Sizes the shape-defining attributes of a known layer type imply for its own tensors."""
    if isinstance(module, nn.modules.conv._ConvNd):
        first, second = ("in_channels", "out_channels") if module.transposed else ("out_channels", "in_channels")
        size, grouped = getattr(module, first), getattr(module, second)
        yield f"{first}={size}", size, "weight", 0, False
        yield f"{second}={grouped} with groups={module.groups}", grouped / module.groups, "weight", 1, False
        yield f"out_channels={module.out_channels}", module.out_channels, "bias", 0, False
    elif isinstance(module, nn.Linear):
        yield f"out_features={module.out_features}", module.out_features, "weight", 0, False
        yield f"in_features={module.in_features}", module.in_features, "weight", 1, False
        yield f"out_features={module.out_features}", module.out_features, "bias", 0, False
    elif isinstance(module, nn.modules.batchnorm._NormBase):
        for tensor in ("weight", "bias", "running_mean", "running_var"):
            yield f"num_features={module.num_features}", module.num_features, tensor, 0, False
    elif isinstance(module, nn.LayerNorm):
        shape = list(module.normalized_shape)
        for tensor in ("weight", "bias"):
            yield f"normalized_shape={shape}", tuple(shape), tensor, None, False
    elif isinstance(module, nn.GroupNorm):
        for tensor in ("weight", "bias"):
            yield f"num_channels={module.num_channels}", module.num_channels, tensor, 0, False
    elif isinstance(module, nn.Embedding):
        yield f"num_embeddings={module.num_embeddings}", module.num_embeddings, "weight", 0, False
        yield f"embedding_dim={module.embedding_dim}", module.embedding_dim, "weight", 1, False
    elif isinstance(module, nn.PReLU):
        yield f"num_parameters={module.num_parameters}", module.num_parameters, "weight", 0, False
    elif isinstance(module, nn.MultiheadAttention):
        yield from _mha_rules(module)
    elif isinstance(module, nn.RNNBase):
        yield f"input_size={module.input_size}", module.input_size, "weight_ih_l0", 1, False
        if not getattr(module, "proj_size", 0):
            yield f"hidden_size={module.hidden_size}", module.hidden_size, "weight_hh_l0", 1, False


def _mha_rules(module: nn.MultiheadAttention) -> Iterator[Rule]:
    embed = module.embed_dim
    if module._qkv_same_embed_dim:
        yield f"embed_dim={embed}", 3 * embed, "in_proj_weight", 0, False
        yield f"embed_dim={embed}", embed, "in_proj_weight", 1, False
        yield f"num_heads={module.num_heads} x head_dim={module.head_dim}", module.num_heads * module.head_dim, \
            "in_proj_weight", 1, False
    else:
        for tensor, inputs in (("q_proj_weight", "embed_dim"), ("k_proj_weight", "kdim"), ("v_proj_weight", "vdim")):
            yield f"embed_dim={embed}", embed, tensor, 0, False
            yield f"{inputs}={getattr(module, inputs)}", getattr(module, inputs), tensor, 1, False
    yield f"embed_dim={embed}", embed, "out_proj.weight", 0, False


def _int_attr(module: nn.Module, names: tuple[str, ...]) -> tuple[str, int] | None:
    for name in names:
        value = getattr(module, name, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return name, value
    return None


def _head_rules(module: nn.Module) -> Iterator[Rule]:
    """Sizes an attention module's head counts imply for its q/k/v projections: the fused ``qkv`` Linear
    (timm, zoo ViTs; a multiple of the heads, as some layouts hold unequal q, k and v) or the query Linear
    (HF ``query``, ``q_proj``)."""
    heads = _int_attr(module, ("num_heads", "num_attention_heads"))
    if heads is None or isinstance(module, nn.MultiheadAttention):
        return
    (attr, count), size, total = heads, _int_attr(module, _HEAD_SIZES), _int_attr(module, _HEAD_TOTALS)
    label = f"{attr}={count}" + (f" x {size[0]}={size[1]}" if size else "")
    width = count * size[1] if size else count
    if isinstance(getattr(module, "qkv", None), nn.Linear):
        yield label, width, "qkv.weight", 0, True
        if total:
            yield f"{total[0]}={total[1]}", 3 * total[1], "qkv.weight", 0, False
        return
    query = next((n for n in ("query", "q_proj") if isinstance(getattr(module, n, None), nn.Linear)), None)
    if query is not None:
        yield label, width, f"{query}.weight", 0, size is None
        if total:
            yield f"{total[0]}={total[1]}", total[1], f"{query}.weight", 0, False
        if isinstance(getattr(module, "embed_dim", None), int) and hasattr(module, "out_proj"):  # models.mha
            yield f"embed_dim={module.embed_dim}", module.embed_dim, f"{query}.weight", 1, False


def _tensor(module: nn.Module, path: str) -> torch.Tensor | None:
    """The parameter or buffer at dotted ``path`` under ``module``; None if absent (no bias, no affine) or
    not materialised yet (lazy layers)."""
    owner_path, _, name = path.rpartition(".")
    owner = getattr(module, owner_path, None) if owner_path else module
    if not isinstance(owner, nn.Module):
        return None
    tensor = owner._parameters.get(name, owner._buffers.get(name))
    if tensor is None or isinstance(tensor, nn.parameter.UninitializedTensorMixin):
        return None
    return tensor


def _breaks(rule: Rule, tensor: torch.Tensor) -> bool:
    _, size, _, dim, multiple = rule
    if dim is None:
        return tuple(tensor.shape) != size
    if tensor.dim() <= dim:
        return True
    actual = tensor.shape[dim]
    return actual % size != 0 if multiple else actual != size


def check_structure(model: nn.Module, layers: dict, source: str) -> None:
    """One-line CheckpointError when a recorded layer's shape-defining attributes (widths, channels, groups,
    normalized shape, head counts) disagree with the shapes of its loaded tensors (``source`` names the file).

    Run after the weights are loaded: a Linear can hold ``out_features`` 116 beside a 121-row weight and still
    run, so an edited record would otherwise load silently and be saved again."""
    modules = dict(model.named_modules())
    for name, record in layers.items():
        module = modules.get(name)
        if module is None or not isinstance(record, dict) or type(module).__name__ != record.get("type"):
            continue
        for rule in (*_layer_rules(module), *_head_rules(module)):
            tensor = _tensor(module, rule[2])
            if tensor is not None and _breaks(rule, tensor):
                raise CheckpointError(
                    f"{source}: layer {name!r} ({record['type']}) records {rule[0]}, but its {rule[2]} has shape "
                    f"{tuple(tensor.shape)}; allowed: attributes that match the saved weights (the structure "
                    f"record was edited or belongs to other weights)")

"""Layer structure of a model and resizing a fresh model to it: how physically pruned models load back.

Structured pruning (torch-pruning channel pruning, Reconvene's narrower convs, VBP's narrower MLPs, removed
attention heads) changes shape-defining attributes (``out_channels``, ``groups``, ``num_features``,
``normalized_shape``, ``embed_dim``, ``num_heads``...) and the shapes of parameters and buffers (BatchNorm
running stats included); depth pruning replaces residual blocks by ``nn.Identity``. :func:`structure` records
them; :func:`resize` gives a freshly built model the recorded attributes, identities and parameters/buffers of
the saved shapes, so the state_dict then loads strictly.
"""

from __future__ import annotations

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
    for name in removed:  # saved after depth pruning removed these blocks (prune.depth)
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

"""Safe checkpoints that rebuild their model, including physically pruned (narrower) models.

A checkpoint is one ``torch.save`` dict of plain types and tensors::

    {"format": "edgeprune-checkpoint", "version": 1, "build": {...}, "state_dict": {...},
     "structure": {module name: shape-defining attributes}, "meta": {...}}

``load`` reads it with ``weights_only=True``, rebuilds the model from ``build``, resizes every recorded
Conv/Linear/norm layer to its saved width (structured pruning removes channels and hidden neurons), and
loads the weights strictly.
"""

from __future__ import annotations

import os
import pickle
import re
import warnings
from pathlib import Path

import torch
from torch import nn

from edgeprune.errors import CheckpointError, ConfigError, ModelError
from edgeprune.models import hf
from edgeprune.models._common import first_line, to_plain
from edgeprune.models.registry import create
from edgeprune.utils.io import atomic_path

FORMAT = "edgeprune-checkpoint"
VERSION = 1

# shape-defining attributes per layer type: what structured pruning changes
_SHAPE_ATTRS: tuple[tuple[type, tuple[str, ...]], ...] = (
    (nn.modules.conv._ConvNd, ("in_channels", "out_channels", "groups")),
    (nn.Linear, ("in_features", "out_features")),
    (nn.modules.batchnorm._NormBase, ("num_features",)),
    (nn.LayerNorm, ("normalized_shape",)),
    (nn.GroupNorm, ("num_groups", "num_channels")),
)
# head counts that attention layers (ours, HF) read at forward time; pruning whole heads changes them
_HEAD_ATTRS = ("num_heads", "num_attention_heads", "attention_head_size", "all_head_size")


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module behind torch.compile / DataParallel / DDP wrappers."""
    model = getattr(model, "_orig_mod", model)
    if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
        model = model.module
    return model


def structure(model: nn.Module) -> dict[str, dict]:
    """Shape-defining attributes of every Conv/Linear/BatchNorm/LayerNorm/GroupNorm (and attention heads)."""
    out: dict[str, dict] = {}
    for name, module in model.named_modules():
        record: dict = {}
        for types, attrs in _SHAPE_ATTRS:
            if isinstance(module, types):
                record.update({a: to_plain(getattr(module, a), "layer structure") for a in attrs})
        for attr in _HEAD_ATTRS:
            value = getattr(module, attr, None)
            if isinstance(value, int) and not isinstance(value, bool):
                record[attr] = value
        if record:
            out[name] = {"type": type(module).__name__, **record}
    return out


def _state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """CPU state_dict with torch.nn.utils.prune re-parametrisations baked in (weight = weight_orig * mask)."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    for key in [k for k in state if k.endswith("_orig")]:
        base = key[: -len("_orig")]
        if f"{base}_mask" in state:
            state[base] = state.pop(key) * state.pop(f"{base}_mask")
    return state


def _build_info(model: nn.Module, spec: str | None) -> dict:
    build = getattr(model, "edgeprune_build", None)
    if spec is None:
        if not isinstance(build, dict):
            raise CheckpointError(
                f"{type(model).__name__} has no edgeprune_build; build it with edgeprune.models.create or pass spec="
            )
        return to_plain(build, "model build info")
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"spec must be a non-empty model spec string, got {spec!r}")
    if isinstance(build, dict):
        build = {**build, "spec": spec}
        if not spec.startswith(("hf:", "hf-config:")):
            build.pop("hf_config", None)
            build.pop("hf_class", None)
    else:  # no build info: the spec with create()'s defaults
        build = {"spec": spec, "num_classes": 10, "in_channels": 3, "image_size": 32, "kwargs": {}}
    return to_plain(build, "model build info")


def save(model: nn.Module, path: str | os.PathLike, *, spec: str | None = None, meta: dict | None = None) -> Path:
    """Write ``model`` to ``path`` atomically (temp file + os.replace); returns the path.

    The build info comes from ``model.edgeprune_build`` (set by ``create``); ``spec=`` overrides its spec.
    ``meta`` is any dict of plain values (metrics, seed, sparsity...) returned later by :func:`load_meta`.
    """
    if meta is not None and not isinstance(meta, dict):
        raise ConfigError(f"meta must be a dict, got {type(meta).__name__}")
    payload = {"format": FORMAT, "version": VERSION, **snapshot(model, spec), "meta": to_plain(meta or {}, "checkpoint meta")}
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def _describe(path: Path) -> str:
    """What a non-checkpoint file looks like, for error messages."""
    with open(path, "rb") as f:
        head = f.read(256)
    if not head:
        return "an empty file"
    if head.startswith(b"PK\x03\x04"):
        return "a zip archive that torch cannot read (truncated or not written by torch.save)"
    if head[:1] == b"\x80":
        return "a plain Python pickle (not written by torch.save)"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return f"{path.stat().st_size} bytes of binary data"
    first = text.strip().splitlines()[0] if text.strip() else ""
    return f"a text file starting with {first[:40]!r}"


def _read(path: str | os.PathLike, map_location) -> dict:
    path = Path(path)
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "does not exist"
        raise CheckpointError(f"checkpoint {str(path)!r} {what}")
    try:
        with warnings.catch_warnings():
            # torch warns about non-default pickle protocols before refusing them; we report our own error
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        message = str(exc)
        found = re.search(r"GLOBAL ([\w.]+)", message)
        if found:
            raise CheckpointError(
                f"checkpoint {str(path)!r} contains pickled code ({found.group(1)}), which safe weights_only "
                f"loading refuses; load only files you trust and re-save them with edgeprune.models.save"
            ) from None
        if "Unsupported operand" in message or "invalid load key" in message:
            raise CheckpointError(f"{str(path)!r} is not a torch checkpoint (found {_describe(path)})") from None
        raise CheckpointError(
            f"checkpoint {str(path)!r} holds content that safe weights_only loading refuses ({first_line(exc)})"
        ) from None
    except Exception:  # noqa: BLE001  (torch raises KeyError/UnicodeDecodeError/EOFError/RuntimeError for junk)
        raise CheckpointError(f"{str(path)!r} is not a torch checkpoint (found {_describe(path)})") from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        if isinstance(obj, dict):
            keys = ", ".join(str(k) for k in list(obj)[:5])
            found = f"a dict with keys {keys}{', ...' if len(obj) > 5 else ''}"
        else:
            found = f"a {type(obj).__name__}"
        raise CheckpointError(
            f"{str(path)!r} is a torch file but not an edgeprune checkpoint (found {found}; expected "
            f"'format': {FORMAT!r}); save models with edgeprune.models.save"
        )
    version = obj.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise CheckpointError(f"checkpoint {str(path)!r} has version {version!r}; allowed: <= {VERSION}")
    build, state = obj.get("build"), obj.get("state_dict")
    if (not isinstance(build, dict) or not isinstance(build.get("spec"), str)
            or not all(isinstance(build.get(k), int) for k in ("num_classes", "in_channels", "image_size"))):
        raise CheckpointError(
            f"checkpoint {str(path)!r} has no valid build info (spec, num_classes, in_channels, image_size)"
        )
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"checkpoint {str(path)!r} has no valid state_dict (a dict of tensors)")
    return obj


def _rebuild(build: dict) -> nn.Module:
    if "hf_config" in build:
        model = hf.from_build(build)
    else:
        model = create(build["spec"], build["num_classes"], build["in_channels"], build["image_size"],
                       **(build.get("kwargs") or {}))
    model.edgeprune_build = build
    return model


def _resize(model: nn.Module, layers: dict, state: dict[str, torch.Tensor]) -> None:
    """Give each recorded layer its saved attributes and fresh parameters/buffers of the saved shapes."""
    modules = dict(model.named_modules())
    for name, record in layers.items():
        module = modules.get(name)
        if module is None or not isinstance(record, dict) or type(module).__name__ != record.get("type"):
            continue  # a layer the rebuilt model does not have: reported by the key check
        for attr, value in record.items():
            current = getattr(module, attr, None)
            if attr != "type" and current is not None:
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


def _check_keys(model: nn.Module, state: dict[str, torch.Tensor], source: str, spec: str) -> None:
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
        raise CheckpointError(f"{source} does not fit its rebuilt model {spec!r}: {'; '.join(problems)}")


def snapshot(model: nn.Module, spec: str | None = None) -> dict:
    """What rebuilds ``model``: ``build`` info, CPU ``state_dict`` and layer ``structure`` (what :func:`save` stores)."""
    model = unwrap(model)
    return {"build": _build_info(model, spec), "state_dict": _state_dict(model), "structure": structure(model)}


def restore(build: dict, state: dict[str, torch.Tensor], layers: dict | None, source: str) -> nn.Module:
    """Rebuild the model ``build`` describes, resize its layers to ``layers`` and load ``state`` strictly.

    ``source`` names the file in errors (e.g. ``"checkpoint 'm.pt'"``); raises CheckpointError.
    """
    try:
        model = _rebuild(build)
    except (ConfigError, ModelError) as exc:
        raise CheckpointError(f"{source} cannot rebuild its model ({exc})") from None
    _resize(model, layers or {}, state)
    _check_keys(model, state, source, build["spec"])
    model.load_state_dict(state, strict=True)
    return model


def load(path: str | os.PathLike, map_location="cpu") -> nn.Module:
    """Rebuild and return the model saved at ``path`` (in eval mode, on ``map_location``).

    The model carries ``edgeprune_build`` (so it can be saved again) and ``edgeprune_meta``.

    Physically pruned layers are resized to their saved widths before the strict state_dict load.
    Raises CheckpointError for missing/foreign/unsafe files or weights that do not fit the model.
    """
    obj = _read(path, map_location)
    model = restore(obj["build"], obj["state_dict"], obj.get("structure"), f"checkpoint {str(path)!r}")
    if isinstance(map_location, (str, torch.device)):
        model.to(map_location)
    model.edgeprune_meta = obj.get("meta") or {}
    return model.eval()


def load_meta(path: str | os.PathLike) -> dict:
    """The ``meta`` dict saved with the checkpoint, plus its build info under ``"build"``."""
    obj = _read(path, "cpu")
    return {**(obj.get("meta") or {}), "build": obj["build"]}


__all__ = ["save", "load", "load_meta", "structure", "snapshot", "restore", "unwrap"]

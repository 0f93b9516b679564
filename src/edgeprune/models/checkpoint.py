"""Safe checkpoints of any model, including physically pruned (narrower) ones and the user's own classes.

A checkpoint is one ``torch.save`` dict of plain types and tensors::

    {"format": "edgeprune-checkpoint", "version": 1, "build": {...}, "state_dict": {...},
     "structure": {module name: shape-defining attributes}, "meta": {...}}

``sha256`` (since edgeprune 0.2) is a hash of everything else (every tensor's name, dtype, shape and bytes;
build, structure and meta as canonical JSON), checked on load: a file whose bytes changed on disk (a flipped
bit, a bad copy) is refused with one line naming it. Files written before the hash existed load as before,
with a warning that they are unverified.

``build`` is :func:`edgeprune.models.rebuild.build_info`: the spec and sizes a model was created with plus
its class, or ``spec`` None for a model of the user's own class. ``load`` reads the file with
``weights_only=True``, rebuilds the model from its spec (or takes the caller's ``model=`` instance),
resizes every recorded layer to its saved shape (structured pruning removes channels, hidden neurons and
heads), and loads the weights strictly.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import warnings
from pathlib import Path

import torch
from torch import nn

from edgeprune.errors import CheckpointError, ConfigError
from edgeprune.models._common import first_line, to_plain
from edgeprune.models._shapes import structure, unwrap
from edgeprune.models.rebuild import restore, snapshot
from edgeprune.utils.io import atomic_path

FORMAT = "edgeprune-checkpoint"
VERSION = 1

def save(model: nn.Module, path: str | os.PathLike, *, spec: str | None = None, meta: dict | None = None) -> Path:
    """Write ``model`` to ``path`` atomically (temp file + os.replace); returns the path.

    Any ``nn.Module`` can be saved. The build info comes from ``model.edgeprune_build`` (set by ``create``);
    a model without one (the user's own class) records its class and spec None, and loads back only with
    ``load(path, model=...)``. ``spec=`` replaces the spec; it must rebuild a model that takes these weights
    and gives the same outputs (create()'s default sizes when the model has no build info), else a one-line
    CheckpointError is raised before anything is written.
    ``meta`` is any dict of plain values (metrics, seed, sparsity...) returned later by :func:`load_meta`.
    """
    if meta is not None and not isinstance(meta, dict):
        raise ConfigError(f"meta must be a dict, got {type(meta).__name__}")
    payload = {"format": FORMAT, "version": VERSION, **snapshot(model, spec), "meta": to_plain(meta or {}, "checkpoint meta")}
    digest = content_hash(payload)
    if digest is not None:
        payload["sha256"] = digest
    path = Path(path)
    # a file object, not a path: torch then writes through Python, so a refused write (disk full, I/O error)
    # keeps its OSError, which atomic_path turns into one line naming the file and the reason
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(payload, f)
    return path


def content_hash(payload: dict) -> str | None:
    """sha256 of a checkpoint's content (tensors byte for byte, the rest as canonical JSON); None if some
    tensor cannot be viewed as bytes (then the file carries no hash)."""
    digest = hashlib.sha256()
    rest = {k: v for k, v in payload.items() if k not in ("state_dict", "sha256")}
    digest.update(json.dumps(rest, sort_keys=True, default=repr).encode())
    for name, tensor in sorted(payload.get("state_dict", {}).items()):
        try:
            raw = tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()
        except (RuntimeError, TypeError):  # quantized / sparse / exotic tensors
            return None
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(raw.data)
    return digest.hexdigest()


def _verify(obj: dict, path: Path) -> None:
    stored = obj.get("sha256")
    if stored is None:
        warnings.warn(f"checkpoint {str(path)!r} has no content hash (written before edgeprune checked them); "
                      "loaded unverified — re-save it to add one", stacklevel=3)
        return
    if stored != content_hash(obj):
        raise CheckpointError(f"checkpoint {str(path)!r} is damaged: its weights do not match the content hash "
                              "written with them (changed on disk?); restore it from a good copy")


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


def _read(path: str | os.PathLike, map_location, verify: bool = True) -> dict:
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
    sizes = ("num_classes", "in_channels", "image_size")
    if not isinstance(build, dict) or not (
            (isinstance(build.get("spec"), str) and all(isinstance(build.get(k), int) for k in sizes))
            or (build.get("spec") is None and isinstance(build.get("class"), str))):
        raise CheckpointError(
            f"checkpoint {str(path)!r} has no valid build info (spec, num_classes, in_channels, image_size, "
            f"or a class name)"
        )
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"checkpoint {str(path)!r} has no valid state_dict (a dict of tensors)")
    if verify:
        _verify(obj, path)
    return obj


def load(path: str | os.PathLike, *, model=None, map_location="cpu") -> nn.Module:
    """The model saved at ``path`` with its weights, in eval mode; carries ``edgeprune_meta``.

    Without ``model=`` the model is rebuilt from the saved spec (on ``map_location``) and carries
    ``edgeprune_build`` (so it can be saved again). With ``model=`` (a fresh instance of the saved class, or a
    zero-argument callable returning one) that very instance is returned: its recorded layers are resized
    to the saved shapes and the weights loaded strictly; it keeps its device and dtype and gets
    ``edgeprune_build`` only when the file has a spec. Raises CheckpointError for missing/foreign/unsafe
    files, a custom model without ``model=``, a ``model=`` of another class, or weights that do not fit.
    """
    obj = _read(path, map_location, verify=False)
    loaded = restore(obj["build"], obj["state_dict"], obj.get("structure"), f"checkpoint {str(path)!r}",
                     model=model)
    _verify(obj, Path(path))  # after restore: a file edited to other shapes or keys gets the more precise error
    if model is None and isinstance(map_location, (str, torch.device)):
        loaded.to(map_location)
    loaded.edgeprune_meta = obj.get("meta") or {}
    return loaded.eval()


def load_meta(path: str | os.PathLike) -> dict:
    """The ``meta`` dict saved with the checkpoint, plus its build info under ``"build"``."""
    obj = _read(path, "cpu")
    return {**(obj.get("meta") or {}), "build": obj["build"]}


__all__ = ["save", "load", "load_meta", "structure", "snapshot", "restore", "unwrap"]

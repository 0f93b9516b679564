"""Compressed sparse artifact (``.epz``): one file that rebuilds an unstructured-pruned model exactly.

Layout (little-endian)::

    b"EPZ1" | blake2b-128 digest of everything after it | u32 header length | header | payload

The header is zlib-compressed JSON: the model's build info (``model.edgeprune_build``), its layer
structure (so physically pruned layers are resized as :func:`edgeprune.models.load` does), the ``meta``
dict, and one short entry per state_dict tensor saying how its bytes in the payload are coded.

Each tensor is stored the cheaper of two ways:

* ``dense``: all its values;
* ``sparse``: the positions of its non-zeros, Golomb-coded as gaps between the positions of whichever
  of zero / non-zero is rarer (near the ``n·H(d)`` bound for i.i.d. patterns, see
  :mod:`edgeprune.export.golomb`), then the non-zero values in order.

Values of prunable weights (Conv/Linear, ndim >= 2) are FP32, FP16, or INT8 with a symmetric scale per
output channel or per tensor; every other tensor (biases, norms, buffers) keeps its exact dtype. A value
section is stored as byte planes (all first bytes, then all second bytes...); the planes that are not
noise (the sign/exponent byte of floats, INT8 codes) are LZMA-compressed (:mod:`edgeprune.export.sparse_values`).

"Non-zero" is numeric: every non-zero FP32 value (NaN included) round-trips bit-exactly and zeros come
back as ``+0.0`` (masking by multiplication leaves ``-0.0`` behind, which compares equal to it).

:func:`describe` puts the file's bytes beside the information bound, per tensor ``n·H(d)`` bits for the
pattern (``H`` the binary entropy of the density ``d``) plus ``nnz·b`` bits for ``b``-bit values, and
beside the dense FP32 bytes. The bound counts values at their raw width and no INT8 scales.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import math
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from edgeprune.errors import CheckpointError, ConfigError
from edgeprune.export.golomb import GolombCode, decode_positions, encode_positions
from edgeprune.export.sparse_values import VALUE_DTYPE, encode_values, unpack_values
from edgeprune.measure.size import prunable_weights
from edgeprune.models._common import to_plain
from edgeprune.models.checkpoint import restore, snapshot, unwrap
from edgeprune.utils.io import atomic_path

MAGIC = b"EPZ1"
FORMAT = "edgeprune-sparse"
VERSION = 1
DIGEST_BYTES = 16
VALUE_FORMATS = ("fp32", "fp16", "int8")
SCALE_MODES = ("channel", "tensor")
SUFFIX = ".epz"

ValueFormat = Literal["fp32", "fp16", "int8"]

# torch dtype name -> numpy dtype, for the tensors a state_dict holds
_NUMPY = {
    "float32": np.float32, "float64": np.float64, "float16": np.float16, "int64": np.int64,
    "int32": np.int32, "int16": np.int16, "int8": np.int8, "uint8": np.uint8, "bool": np.bool_,
}


def binary_entropy(p: float) -> float:
    """H(p) in bits; 0 at p = 0 or 1."""
    if p <= 0.0 or p >= 1.0:
        return 0.0
    return -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


# ----------------------------------------------------------------------------------------------------
# tensor entries: what the header records, and what can be derived from it
# ----------------------------------------------------------------------------------------------------


def _numel(entry: dict) -> int:
    return int(np.prod(entry["shape"], dtype=np.int64))


def _value_dtype(entry: dict) -> np.dtype:
    fmt = entry["values"]
    return np.dtype(_NUMPY[entry["dtype"]] if fmt == "exact" else VALUE_DTYPE[fmt])


def _per_channel(entry: dict, scale_mode: str) -> bool:
    return entry["values"] == "int8" and scale_mode == "channel" and len(entry["shape"]) >= 2 and _numel(entry) > 0


def _sizes(entry: dict) -> dict:
    """Pattern, value and scale bytes of one entry, from its section lengths."""
    lengths = list(entry["lengths"])
    pattern = lengths.pop(0) if entry["coding"] == "sparse" else 0
    return {"pattern_bytes": pattern, "value_bytes": lengths[0], "scale_bytes": sum(lengths[1:])}


def _bound_bits(entry: dict) -> float:
    n, nnz = _numel(entry), entry["nnz"]
    return n * binary_entropy(nnz / n if n else 0.0) + nnz * 8 * _value_dtype(entry).itemsize


# ----------------------------------------------------------------------------------------------------
# writing
# ----------------------------------------------------------------------------------------------------


def _encode_tensor(name: str, tensor: torch.Tensor, fmt: str, scale_mode: str) -> tuple[dict, list[bytes]]:
    """Header entry and byte sections of one tensor; ``fmt`` is fp32/fp16/int8 or "exact"."""
    dtype_name = str(tensor.dtype).removeprefix("torch.")
    if dtype_name not in _NUMPY:
        raise ConfigError(f"tensor {name!r} has dtype {dtype_name}, which the sparse artifact cannot store; "
                          f"allowed: {', '.join(_NUMPY)}")
    arr = tensor.detach().cpu().contiguous().numpy()
    flat = arr.reshape(-1)
    n = flat.size
    keep = flat != 0  # numeric: NaN is kept, -0.0 is a zero
    nnz = int(keep.sum())
    entry = {"name": name, "dtype": dtype_name, "shape": list(arr.shape), "nnz": nnz, "values": fmt}
    value_bits = 8 * _value_dtype(entry).itemsize

    per_channel = _per_channel(entry, scale_mode)
    row_len = n // arr.shape[0] if per_channel else 1
    n_rows = arr.shape[0] if per_channel else 1

    invert = nnz > n - nnz
    code = encode_positions(np.flatnonzero(~keep if invert else keep), n)
    # sparse when the pattern costs less than the zeros it leaves out (judged on raw value bits)
    if n and len(code.data) * 8 < (n - nnz) * value_bits:
        sections, planes = encode_values(flat[keep], fmt, np.flatnonzero(keep) // row_len if per_channel else None,
                                          n_rows)
        entry.update({"coding": "sparse", "invert": bool(invert), "m": code.m, "unary_bits": code.unary_bits})
        sections = [code.data, *sections]
    else:
        sections, planes = encode_values(flat, fmt, np.arange(n) // row_len if per_channel else None, n_rows)
        entry["coding"] = "dense"
    entry.update({"lzma_planes": planes, "lengths": [len(s) for s in sections]})
    return entry, sections


def save(
    model: nn.Module,
    path: str | os.PathLike,
    *,
    values: ValueFormat = "fp32",
    int8_scale: Literal["channel", "tensor"] = "channel",
    meta: dict | None = None,
) -> dict:
    """Write ``model`` as a compressed sparse artifact at ``path`` (atomically); returns :func:`describe`.

    ``values`` is the precision of the prunable weights' values (``fp32`` round-trips bit-exactly);
    ``int8_scale`` picks one INT8 scale per output channel or one per tensor.
    """
    if values not in VALUE_FORMATS:
        raise ConfigError(f"values {values!r} is not a value format; allowed: {', '.join(VALUE_FORMATS)}")
    if int8_scale not in SCALE_MODES:
        raise ConfigError(f"int8_scale {int8_scale!r} is not allowed; allowed: {', '.join(SCALE_MODES)}")
    snap = snapshot(model)
    state = snap["state_dict"]
    weights = set(prunable_weights(unwrap(model)))
    entries, payload = [], []
    for name, tensor in state.items():
        fmt = values if name in weights and tensor.is_floating_point() else "exact"
        entry, sections = _encode_tensor(name, tensor, fmt, int8_scale)
        entries.append(entry)
        payload.extend(sections)
    header = {
        "format": FORMAT, "version": VERSION, "values": values, "int8_scale": int8_scale,
        "build": snap["build"], "structure": snap["structure"], "meta": to_plain(meta or {}, "artifact meta"),
        "tensors": entries,
    }
    head = zlib.compress(json.dumps(header, separators=(",", ":")).encode(), 9)
    body = struct.pack("<I", len(head)) + head + b"".join(payload)
    digest = hashlib.blake2b(body, digest_size=DIGEST_BYTES).digest()
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(MAGIC + digest + body)
    return describe(path)


# ----------------------------------------------------------------------------------------------------
# reading
# ----------------------------------------------------------------------------------------------------


@dataclass
class Artifact:
    """A decoded artifact: its header and its state_dict (FP32 tensors for FP16/INT8-stored weights)."""

    header: dict
    state_dict: dict[str, torch.Tensor]

    @property
    def build(self) -> dict:
        return self.header["build"]

    @property
    def meta(self) -> dict:
        return self.header.get("meta") or {}


def _read_header(path: Path) -> tuple[dict, bytes]:
    """Check magic and checksum; return (header, payload). CheckpointError names what is wrong."""
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "does not exist"
        raise CheckpointError(f"sparse artifact {str(path)!r} {what}")
    blob = path.read_bytes()
    if blob[:4] != MAGIC:
        raise CheckpointError(f"{str(path)!r} is not an edgeprune sparse artifact (it does not start with {MAGIC!r})")
    if len(blob) < 4 + DIGEST_BYTES + 4:
        raise CheckpointError(f"sparse artifact {str(path)!r} is corrupt: truncated to {len(blob)} bytes")
    digest, body = blob[4:4 + DIGEST_BYTES], blob[4 + DIGEST_BYTES:]
    if hashlib.blake2b(body, digest_size=DIGEST_BYTES).digest() != digest:
        raise CheckpointError(
            f"sparse artifact {str(path)!r} is corrupt: checksum mismatch (modified or truncated after it was "
            f"written); re-export it"
        )
    (head_len,) = struct.unpack("<I", body[:4])
    try:
        header = json.loads(zlib.decompress(body[4:4 + head_len]))
    except (zlib.error, ValueError) as exc:
        raise CheckpointError(f"sparse artifact {str(path)!r} has an unreadable header ({exc})") from None
    if header.get("format") != FORMAT or not isinstance(header.get("version"), int) or header["version"] > VERSION:
        raise CheckpointError(
            f"{str(path)!r} has format {header.get('format')!r} version {header.get('version')!r}; "
            f"allowed: {FORMAT!r} version <= {VERSION}"
        )
    return header, body[4 + head_len:]


def _decode_tensor(entry: dict, sections: list[bytes], scale_mode: str) -> torch.Tensor:
    n, nnz, shape = _numel(entry), entry["nnz"], entry["shape"]
    dtype = np.dtype(_NUMPY[entry["dtype"]])
    if entry["coding"] == "sparse":
        count = n - nnz if entry["invert"] else nnz
        positions = decode_positions(GolombCode(sections[0], count, entry["m"], entry["unary_bits"]), n)
        keep = np.zeros(n, dtype=bool)
        keep[positions] = True
        if entry["invert"]:
            keep = ~keep
        sections = sections[1:]
    else:
        keep = None
    vals = unpack_values(sections[0], entry["lzma_planes"], _value_dtype(entry), nnz if keep is not None else n)
    if entry["values"] == "int8":
        scales = np.frombuffer(sections[1], dtype=np.float32)
        if _per_channel(entry, scale_mode):
            rows = (np.flatnonzero(keep) if keep is not None else np.arange(n)) // (n // shape[0])
            vals = vals.astype(np.float32) * scales[rows]
        else:
            vals = vals.astype(np.float32) * scales[0]
    vals = vals.astype(dtype, copy=False)
    if keep is None:
        flat = vals.copy()
    else:
        flat = np.zeros(n, dtype=dtype)
        flat[keep] = vals
    return torch.from_numpy(flat.reshape(shape))


def read(path: str | os.PathLike) -> Artifact:
    """Verify the checksum and decode every tensor; CheckpointError for foreign or corrupt files."""
    path = Path(path)
    header, payload = _read_header(path)
    state, offset = {}, 0
    for entry in header["tensors"]:
        sections = []
        for length in entry["lengths"]:
            sections.append(payload[offset:offset + length])
            offset += length
        try:
            state[entry["name"]] = _decode_tensor(entry, sections, header["int8_scale"])
        except (KeyError, ValueError, IndexError, lzma.LZMAError) as exc:
            raise CheckpointError(
                f"sparse artifact {str(path)!r}: tensor {entry.get('name')!r} cannot be decoded ({exc})"
            ) from None
    return Artifact(header, state)


def load(path: str | os.PathLike) -> nn.Module:
    """Rebuild the model stored at ``path`` (eval mode); an FP32 artifact reproduces every weight exactly."""
    artifact = read(path)
    model = restore(artifact.build, artifact.state_dict, artifact.header.get("structure"),
                    f"sparse artifact {str(path)!r}")
    model.edgeprune_meta = artifact.meta
    return model.eval()


# ----------------------------------------------------------------------------------------------------
# sizes
# ----------------------------------------------------------------------------------------------------


def describe(path: str | os.PathLike) -> dict:
    """Bytes of the artifact beside the information bound and dense FP32, in total and per tensor.

    ``pattern_bytes`` / ``pattern_bound_bytes`` isolate the position coding (the part the bound is about);
    ``value_bytes`` can fall below ``nnz·b/8`` when LZMA finds structure in the values.
    """
    path = Path(path)
    header, _ = _read_header(path)
    total = path.stat().st_size
    rows, sums = [], {"pattern_bytes": 0, "value_bytes": 0, "scale_bytes": 0}
    bound_bits = pattern_bits = raw_value_bits = 0.0
    dense_fp32 = 0
    for entry in header["tensors"]:
        n, nnz = _numel(entry), entry["nnz"]
        sizes = _sizes(entry)
        for key in sums:
            sums[key] += sizes[key]
        bits = _bound_bits(entry)
        bound_bits += bits
        pattern_bits += n * binary_entropy(nnz / n if n else 0.0)
        raw_value_bits += nnz * 8 * _value_dtype(entry).itemsize
        dense_fp32 += n * (4 if entry["dtype"].startswith("float") else np.dtype(_NUMPY[entry["dtype"]]).itemsize)
        rows.append({"name": entry["name"], "shape": entry["shape"], "nnz": nnz,
                     "sparsity": 1 - nnz / n if n else 0.0, "coding": entry["coding"], "values": entry["values"],
                     **sizes, "bound_bytes": bits / 8})
    bound = bound_bits / 8
    return {
        "path": str(path),
        "values": header["values"],
        "int8_scale": header["int8_scale"] if header["values"] == "int8" else None,
        "bytes": total,
        "bound_bytes": bound,
        "ratio_to_bound": total / bound if bound else float("nan"),
        "dense_fp32_bytes": dense_fp32,
        "ratio_to_dense": total / dense_fp32 if dense_fp32 else float("nan"),
        **sums,
        "pattern_bound_bytes": pattern_bits / 8,
        "raw_value_bytes": raw_value_bits / 8,
        "header_bytes": total - sum(sums.values()),
        "tensors": rows,
    }

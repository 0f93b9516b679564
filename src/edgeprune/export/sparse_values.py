"""The value sections of the sparse artifact (:mod:`edgeprune.export.sparse`): values as byte planes, the
compressible planes LZMA-coded; INT8 values with a symmetric scale per row or per tensor."""

from __future__ import annotations

import lzma

import numpy as np

VALUE_DTYPE = {"fp32": np.float32, "fp16": np.float16, "int8": np.int8}


def lzma_filters(nbytes: int) -> list[dict]:
    """Raw LZMA2 with a dictionary just large enough for ``nbytes`` (the decoder derives the same size; a
    fixed 8-64 MiB dictionary would cost tens of milliseconds per small section to set up)."""
    dict_size = max(4096, 1 << max(nbytes - 1, 1).bit_length())
    return [{"id": lzma.FILTER_LZMA2, "preset": 6, "dict_size": dict_size}]


def plane_entropy(plane: np.ndarray) -> float:
    """Order-0 entropy of a byte plane in bits per byte (first 1 MiB: an estimate, cheap to get)."""
    counts = np.bincount(plane[: 1 << 20], minlength=256)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


def pack_values(arr: np.ndarray) -> tuple[bytes, list[int]]:
    """Values split into byte planes (plane-major); planes that look compressible are LZMA-coded together.

    The sign/exponent byte of trained FP32 weights carries ~3 bits of information, while the low mantissa
    bytes are noise that LZMA cannot shrink (trying would only cost time). Returns (section, lzma planes).
    """
    width = arr.itemsize
    planes = np.ascontiguousarray(arr).view(np.uint8).reshape(-1, width).T
    squeeze = [i for i in range(width) if arr.size >= 64 and plane_entropy(planes[i]) < 7.6]
    raw = b"".join(planes[i].tobytes() for i in range(width) if i not in squeeze)
    if squeeze:
        data = b"".join(planes[i].tobytes() for i in squeeze)
        packed = lzma.compress(data, format=lzma.FORMAT_RAW, filters=lzma_filters(len(data)))
        if len(packed) < len(data):
            return raw + packed, squeeze
    return np.ascontiguousarray(planes).tobytes(), []


def unpack_values(blob: bytes, lzma_planes: list[int], dtype: np.dtype, count: int) -> np.ndarray:
    width = dtype.itemsize
    raw_planes = [i for i in range(width) if i not in lzma_planes]
    split = len(raw_planes) * count
    if len(blob) < split or (not lzma_planes and len(blob) != split):
        raise ValueError(f"value section holds {len(blob)} bytes, expected {width * count}")
    packed = lzma.decompress(blob[split:], format=lzma.FORMAT_RAW,
                             filters=lzma_filters(len(lzma_planes) * count)) if lzma_planes else b""
    if len(packed) != len(lzma_planes) * count:
        raise ValueError("compressed value planes have the wrong length")
    planes = np.empty((width, count), dtype=np.uint8)
    for k, i in enumerate(raw_planes):
        planes[i] = np.frombuffer(blob, dtype=np.uint8, count=count, offset=k * count)
    for k, i in enumerate(lzma_planes):
        planes[i] = np.frombuffer(packed, dtype=np.uint8, count=count, offset=k * count)
    return np.ascontiguousarray(planes.T).view(dtype).reshape(-1)


def quantize_int8(values: np.ndarray, rows: np.ndarray | None, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric INT8: q = round(v / s), s = max|v| / 127 per row (``rows`` = row of every value) or per tensor."""
    mags = np.abs(values)
    if rows is None:
        scales = np.array([mags.max() / 127.0 if mags.size else 0.0], dtype=np.float32)
        per_value = scales[np.zeros(values.shape, dtype=np.int64)]
    else:
        scales = np.zeros(n_rows, dtype=np.float32)
        np.maximum.at(scales, rows, mags)
        scales = (scales / 127.0).astype(np.float32)
        per_value = scales[rows]
    q = np.clip(np.rint(values / np.where(per_value > 0, per_value, 1.0)), -127, 127).astype(np.int8)
    return q, scales


def encode_values(values: np.ndarray, fmt: str, rows: np.ndarray | None, n_rows: int) -> tuple[list[bytes], list[int]]:
    """The value section (and INT8 scales) of ``values`` in format ``fmt`` ("exact" keeps the dtype)."""
    if fmt == "int8":
        q, scales = quantize_int8(values.astype(np.float32), rows, n_rows)
        blob, planes = pack_values(q)
        return [blob, scales.tobytes()], planes
    arr = np.ascontiguousarray(values) if fmt == "exact" else values.astype(VALUE_DTYPE[fmt])
    blob, planes = pack_values(arr)
    return [blob], planes

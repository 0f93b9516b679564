"""Golomb coding of a sparsity pattern: the gaps between the positions of the rarer symbol.

For an i.i.d. Bernoulli(p) pattern the gaps are geometric, and a Golomb code with the right parameter
``m`` is the optimal prefix code for a geometric source (Gallager & van Voorhis, 1975): its length stays
within a few percent of the entropy ``n·H(p)`` for every density. The code is vectorised with numpy by
splitting each codeword into three streams that are concatenated into one bit string:

* ``A`` the quotients ``g // m`` in unary (``q`` ones, then a zero),
* ``B`` the first ``b - 1`` bits of the truncated-binary remainder (``b = ceil(log2 m)``),
* ``C`` the one extra bit of the remainders that need ``b`` bits.

The bit count is exactly that of the textbook interleaved Golomb code; only the order of the bits differs,
which lets both directions run without a Python loop over symbols.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GolombCode:
    """One coded pattern: ``count`` positions in a length-``n`` sequence, parameter ``m``, ``unary_bits``."""

    data: bytes
    count: int
    m: int
    unary_bits: int

    def header(self) -> dict:
        return {"count": self.count, "m": self.m, "unary_bits": self.unary_bits}


def _remainder_params(m: int) -> tuple[int, int]:
    """(b, u): remainders r < u take b - 1 bits, the others b bits (truncated binary); m = 1 takes none."""
    if m == 1:
        return 0, 0
    b = math.ceil(math.log2(m))
    return b, (1 << b) - m


def code_length(gaps: np.ndarray, m: int) -> int:
    """Exact number of bits of the Golomb code of ``gaps`` with parameter ``m``."""
    if gaps.size == 0:
        return 0
    q, r = np.divmod(gaps, m)
    b, u = _remainder_params(m)
    if m == 1:
        return int(q.sum()) + gaps.size
    return int(q.sum()) + gaps.size + gaps.size * (b - 1) + int((r >= u).sum())


def best_parameter(gaps: np.ndarray, n: int) -> int:
    """The ``m`` that codes ``gaps`` shortest, searched around the geometric-source optimum.

    For gap probability ``θ`` (one minus the density) the optimum is ``ceil(log(1+θ) / log(1/θ))``; real
    masks are not exactly i.i.d., so the neighbours (and the nearest powers of two) are measured too.
    """
    if gaps.size == 0:
        return 1
    density = gaps.size / max(n, 1)
    theta = min(max(1.0 - density, 1e-12), 1 - 1e-12)
    m0 = max(1, math.ceil(math.log(1 + theta) / math.log(1 / theta)))
    candidates = {max(1, round(m0 * f)) for f in (0.5, 0.7, 0.85, 1.0, 1.2, 1.4, 2.0)} | {
        max(1, m0 - 2), max(1, m0 - 1), m0 + 1, m0 + 2,
    }
    return min(sorted(candidates), key=lambda m: code_length(gaps, m))


def _bits_of(values: np.ndarray, width: int) -> np.ndarray:
    """Big-endian ``width``-bit representation of every value, concatenated (uint8 0/1)."""
    if width <= 0 or values.size == 0:
        return np.zeros(0, dtype=np.uint8)
    shifts = np.arange(width - 1, -1, -1, dtype=np.int64)
    return ((values[:, None] >> shifts) & 1).astype(np.uint8).ravel()


def encode_positions(positions: np.ndarray, n: int, m: int | None = None) -> GolombCode:
    """Golomb-code the sorted positions (0 <= p < n) of one symbol in a length-``n`` sequence."""
    positions = np.asarray(positions, dtype=np.int64)
    gaps = np.diff(positions, prepend=-1) - 1
    m = best_parameter(gaps, n) if m is None else int(m)
    q, r = np.divmod(gaps, m)
    unary = np.ones(int(q.sum()) + gaps.size, dtype=np.uint8)
    unary[np.cumsum(q + 1) - 1] = 0
    b, u = _remainder_params(m)
    if m == 1:
        body, extra = np.zeros(0, dtype=np.uint8), np.zeros(0, dtype=np.uint8)
    else:
        long = r >= u
        t = np.where(long, (r + u) >> 1, r)
        body = _bits_of(t, b - 1)
        extra = ((r[long] + u) & 1).astype(np.uint8)
    bits = np.concatenate([unary, body, extra])
    return GolombCode(np.packbits(bits).tobytes(), int(gaps.size), m, int(unary.size))


def decode_positions(code: GolombCode, n: int) -> np.ndarray:
    """Inverse of :func:`encode_positions`: the sorted positions; ValueError if the code does not fit ``n``."""
    count, m, la = code.count, code.m, code.unary_bits
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    bits = np.unpackbits(np.frombuffer(code.data, dtype=np.uint8))
    if la > bits.size:
        raise ValueError("pattern stream shorter than its unary part")
    unary = bits[:la]
    ends = np.flatnonzero(unary == 0)
    if ends.size != count:
        raise ValueError(f"pattern stream holds {ends.size} codewords, expected {count}")
    q = np.diff(ends, prepend=-1) - 1
    b, u = _remainder_params(m)
    if m == 1:
        r = np.zeros(count, dtype=np.int64)
    else:
        width = b - 1
        start = la + count * width
        if start > bits.size:
            raise ValueError("pattern stream too short")
        if width:
            body = bits[la:start].reshape(count, width).astype(np.int64)
            t = body @ (1 << np.arange(width - 1, -1, -1, dtype=np.int64))
        else:
            t = np.zeros(count, dtype=np.int64)
        long = t >= u
        n_long = int(long.sum())
        if start + n_long > bits.size:
            raise ValueError("pattern stream too short")
        extra = bits[start:start + n_long].astype(np.int64)
        r = t.copy()
        r[long] = ((t[long] << 1) | extra) - u
    positions = np.cumsum(q * m + r + 1) - 1
    if positions[-1] >= n:
        raise ValueError(f"pattern position {int(positions[-1])} outside a tensor of {n} elements")
    return positions

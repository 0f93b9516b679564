"""Golomb coding of sparsity patterns: exact round trip for any position set, and within a few percent of
n·H(p) for i.i.d. patterns at every density from 1% to 50% (sparsities 50-99%)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeprune.export.golomb import code_length, decode_positions, encode_positions


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 3000).flatmap(lambda n: st.tuples(st.just(n), st.sets(st.integers(0, n - 1), max_size=n))),
       st.one_of(st.none(), st.integers(1, 300)))
def test_round_trip_any_positions(case, m):
    n, chosen = case
    positions = np.array(sorted(chosen), dtype=np.int64)
    code = encode_positions(positions, n, m)
    assert np.array_equal(decode_positions(code, n), positions)
    gaps = np.diff(positions, prepend=-1) - 1
    assert len(code.data) == math.ceil(code_length(gaps, code.m) / 8)


@pytest.mark.parametrize("density", [0.5, 0.4, 0.3, 0.2, 0.1, 0.05, 0.02, 0.01])
def test_close_to_entropy_for_iid_patterns(density):
    n = 200_000
    mask = np.random.default_rng(1).random(n) < density
    code = encode_positions(np.flatnonzero(mask), n)
    p = mask.mean()
    bound = n * -(p * math.log2(p) + (1 - p) * math.log2(1 - p))
    assert 8 * len(code.data) <= 1.04 * bound + 8


def test_decoding_refuses_inconsistent_streams():
    code = encode_positions(np.array([3, 9, 40]), 50)
    with pytest.raises(ValueError):
        decode_positions(code, 20)  # a position beyond the tensor

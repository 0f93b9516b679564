"""Interval functions of edgeprune.report.stats against values computed by hand (and published tables)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgeprune.report import stats


def test_wilson_matches_hand_computed_values():
    # 5 of 10: (0.5 + 1.96²/20 ± 1.96·sqrt(0.025 + 1.96²/400)) / (1 + 1.96²/10) = [0.2366, 0.7634]
    lo, hi = stats.wilson(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    # 0 of 10: lower bound 0, upper z²/n / (1 + z²/n) = 0.2775
    assert stats.wilson(0, 10) == (0.0, pytest.approx(0.2775, abs=1e-4))
    # the research note's figures: n = 360 at 97 % -> about ±1.8 pp; n = 10 000 at 98 % -> about ±0.27 pp
    lo, hi = stats.wilson(349, 360)
    assert 1.6 < 100 * (hi - lo) / 2 < 2.0
    lo, hi = stats.wilson(9800, 10000)
    assert 100 * (hi - lo) / 2 == pytest.approx(0.27, abs=0.01)
    assert stats.wilson(0, 0) == (0.0, 1.0)


def test_mcnemar_exact_p():
    assert stats.mcnemar_p(1, 9) == pytest.approx(2 * (1 + 10) / 2 ** 10)  # 0.021484375
    assert stats.mcnemar_p(0, 0) == 1.0
    assert stats.mcnemar_p(5, 5) == 1.0
    # thousands of discordant images (an undertrained pair): no float overflow, the tails still exact
    assert stats.mcnemar_p(1000, 1100) == pytest.approx(0.030, abs=0.001)
    assert stats.mcnemar_p(3000, 3000) == 1.0


def test_paired_difference_and_verdict():
    n = 360
    a = np.ones(n, dtype=bool)
    b = a.copy()
    b[:2] = False  # B misses two images A gets right: +0.56 pp, noise on 360 images
    d = stats.paired(a, b)
    assert d.diff == pytest.approx(2 / n) and d.p == pytest.approx(0.5)
    assert d.lo <= 0.0 <= d.hi and not d.significant
    assert stats.verdict(d, "A", "B").startswith("no significant difference between A and B")
    b[:40] = False  # 40 of 360 disagreements, all in A's favour: significant
    d = stats.paired(a, b)
    assert d.significant and d.lo > 0 and stats.verdict(d, "A", "B").startswith("A is better than B")
    assert stats.paired(a, b) == d  # fixed seed: the same interval every time


def test_t_interval_over_seeds():
    # mean 0.01, sd 0.01, n 3: half-width 4.303 · 0.01 / sqrt(3)
    mean, lo, hi = stats.t_interval([0.0, 0.01, 0.02])
    assert mean == pytest.approx(0.01)
    assert hi - mean == pytest.approx(4.303 * 0.01 / math.sqrt(3))
    rng = np.random.default_rng(0)
    pairs = [(rng.random(100) < 0.9, rng.random(100) < 0.9) for _ in range(3)]
    d = stats.over_seeds(pairs)
    assert d.seeds == 3 and d.p is None and d.lo < d.diff < d.hi
    same = [(pairs[0][0], pairs[0][1])] * 3  # identical seeds: the t-interval collapses, the image bootstrap does not
    d = stats.over_seeds(same)
    assert d.lo < d.diff < d.hi and d.hi - d.lo > 0.05


def test_pack_roundtrip():
    c = np.random.default_rng(1).random(1001) < 0.5
    packed = stats.pack(c)
    assert packed["n"] == 1001 and len(packed["bits"]) <= 4 * (1001 // 8 + 1) // 3 + 4
    assert np.array_equal(stats.unpack(packed), c)

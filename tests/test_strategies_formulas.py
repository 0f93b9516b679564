"""The ten strategies on a hand-made 3-layer example; every number below was worked out by hand."""

import pytest

from edgeprune.errors import ConfigError
from edgeprune.roles import LayerRole, RoleTable
from edgeprune.strategies import NAMES, build, build_all, duplicates, global_sparsity

# A: early conv (40 weights), B: late conv (900), C: classifier (60); N = 1000
ROLES = RoleTable((
    LayerRole("a", "a.weight", "conv", True, 0.0, 0, 40, (4, 10)),
    LayerRole("b", "b.weight", "conv", True, 1.0, 1, 900, (30, 30)),
    LayerRole("c", "c.weight", "classifier", True, 1.0, 2, 60, (6, 10)),
))
RANGES = {"a.weight": (0.2, 0.6), "b.weight": (0.5, 0.9), "c.weight": (0.0, 0.3)}

EXPECTED = {
    "min": (0.2, 0.5, 0.0),
    "max": (0.6, 0.9, 0.3),
    "balanced": (0.4, 0.7, 0.15),  # (lo + hi) / 2
    "p30": (0.32, 0.62, 0.09),  # lo + 0.3 (hi - lo)
    "p50": (0.4, 0.7, 0.15),
    "p70": (0.48, 0.78, 0.21),
    "p90": (0.56, 0.86, 0.27),
    # beta = min(1, 10 n / N): a 0.4, b 1 (capped from 9), c 0.6
    "param_prop": (0.2 + 0.4 * 0.4, 0.9, 0.6 * 0.3),
    # classifier and depth >= 0.75 at hi, the rest at lo
    "late_heavy": (0.2, 0.9, 0.3),
    # non-classifier layers with depth < 0.5 at hi, the rest at the midpoint
    "early_heavy": (0.6, 0.7, 0.15),
}


@pytest.mark.parametrize("name", NAMES)
def test_formula(name):
    got = build(name, RANGES, ROLES)
    assert list(got) == ["a.weight", "b.weight", "c.weight"]
    assert tuple(got.values()) == pytest.approx(EXPECTED[name], abs=1e-12)


def test_global_sparsity_counts_floors_like_the_masks():
    # min: floor(0.2*40)=8, floor(0.5*900)=450, 0 -> 458 of 1000
    assert global_sparsity(build("min", RANGES, ROLES), ROLES) == 0.458
    # p30: floor(12.8)=12, floor(558)=558, floor(5.4)=5 -> 575
    assert global_sparsity(build("p30", RANGES, ROLES), ROLES) == 0.575
    assert global_sparsity({}, ROLES) == 0.0  # layers not named stay dense


def test_duplicates_find_balanced_equal_to_p50():
    dups = duplicates(build_all(RANGES, ROLES))
    assert dups == {"balanced": ["p50"], "p50": ["balanced"]}


def test_bad_input():
    with pytest.raises(ConfigError, match="unknown strategy 'p40'"):
        build("p40", RANGES, ROLES)
    with pytest.raises(ConfigError, match="c.weight"):
        build("min", {**RANGES, "c.weight": (0.5, 0.3)}, ROLES)
    with pytest.raises(ConfigError, match="not a prunable weight"):
        build("min", {**RANGES, "zz.weight": (0.1, 0.2)}, ROLES)

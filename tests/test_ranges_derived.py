"""The paper's phase 1: ranges from global MAG/SNIP/GraSP runs at 70/80/90 %, then the role constraints."""

import torch

from edgeprune import data, models, ranges, roles, scores
from edgeprune.prune.masks import global_masks, per_layer_sparsity


def test_derived_ranges_contain_every_baseline_run():
    torch.manual_seed(0)
    model = models.create("lenet5", num_classes=10, in_channels=1, image_size=8, padding=2)
    table = roles.classify(model, torch.zeros(1, 1, 8, 8))
    batches = scores.calibration_batches(data.load("digits").train, 2, 32)
    by_baseline = {name: scores.compute(name, model, batches) for name in ("magnitude", "snip", "grasp")}

    raw = ranges.derived(table, by_baseline, constrain=False)
    runs = [per_layer_sparsity(global_masks(s, t)) for s in by_baseline.values() for t in (0.7, 0.8, 0.9)]
    for name, (lo, hi) in raw.items():
        got = [run[name] for run in runs]
        # every run's sparsity lies in [lo, hi]; a layer a global run empties entirely is capped at the
        # ceiling (0.999): a range must stay inside [0, 1)
        assert lo == min(got) and hi == min(max(got), 0.999)
    assert len({raw[n] for n in raw}) > 1  # global pruning spreads sparsity unevenly over layers

    constrained = ranges.derived(table, by_baseline)
    limit = ranges.small_limit(table, ranges.RangeRules())  # the paper's 10 K, capped at 5 % of the largest layer
    assert limit == min(10_000, 0.05 * max(e.numel for e in table.prunable()))
    for e in table.prunable():
        if e.numel < limit:
            assert constrained[e.param_name] == (0.0, 0.10)
        else:
            assert constrained[e.param_name] == raw[e.param_name]

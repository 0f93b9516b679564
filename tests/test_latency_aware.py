"""Latency-aware allocation (issue 29): channels leave where they cost the least importance per millisecond the latency
table says they save, until the table predicts the limit; the strategy joins the ten on a latency budget's front."""

import numpy as np
import pytest
import torch
from torch import nn

import edgeprune
import edgeprune.methods.catalog  # noqa: F401  (fills the method registry)
from edgeprune import data as data_lib
from edgeprune import models
from edgeprune.measure.budget import parse
from edgeprune.methods import structured_mam
from edgeprune.methods.base import get_method
from edgeprune.select import allocation, latency_table
from edgeprune.surgery import depth as depth_lib
from edgeprune.surgery.structure import plan


class TwoBranches(nn.Module):
    """Two independent groups of equal width: ``a`` runs on a 16x16 map, ``b`` on a 2x2 map (64x cheaper)."""

    def __init__(self):
        super().__init__()
        self.a1, self.a2 = nn.Conv2d(3, 32, 3, padding=1), nn.Conv2d(32, 8, 3, padding=1)
        self.pool = nn.AvgPool2d(8)
        self.b1, self.b2 = nn.Conv2d(8, 32, 1), nn.Conv2d(32, 8, 1)
        self.fc = nn.Linear(8 * 4, 10)

    def forward(self, x):
        x = self.pool(self.a2(torch.relu(self.a1(x))))
        return self.fc(self.b2(torch.relu(self.b1(x))).flatten(1))


def synthetic_table(ops) -> latency_table.LatencyTable:
    """A table whose layer times are exactly proportional to their MACs (so the test knows where time goes)."""
    layers = {}
    for name, (op, calls) in ops.items():
        cins, couts = sorted({1, op.cin}), sorted({1, op.cout})
        area = int(np.prod(op.spatial)) if op.spatial else 1
        layers[name] = {"calls": calls, "cin": cins, "cout": couts, "depthwise": False,
                        "ms": [[1e-6 * ci * co * area for co in couts] for ci in cins]}
    return latency_table.LatencyTable("t", {"name": "synthetic"}, 1, layers)


def two_branches():
    """TwoBranches with its plan, layer census, synthetic table, importance and group index by first layer name."""
    torch.manual_seed(0)
    model, example = TwoBranches().eval(), torch.randn(2, 3, 16, 16)
    structure = plan(model, example)
    ops = latency_table.census(model, example)
    importance = allocation.channel_importance(structure, model, None)
    group = {structure.groups[g][0]: g for g in importance}
    return model, structure, ops, synthetic_table(ops), importance, group


def test_the_expensive_group_loses_channels_first_and_the_limit_is_met():
    model, structure, ops, table, importance, group = two_branches()
    dense = table.predict({n: (op.cin, op.cout) for n, (op, _) in ops.items()})
    ceilings = dict.fromkeys(importance, 0.9)
    kept, _, _, _ = allocation.allocate(table, ops, structure, model, importance, ceilings, 0.6 * dense, round_to=4)
    assert kept[group["a1"]] < 32 and kept[group["b1"]] == 32  # equal importance, 64x the time saved per channel
    members = {m: k for g, k in kept.items() for m in structure.groups[g]}
    assert table.predict(latency_table.widths_from(ops, structure, members, {}, model)) <= 0.6 * dense
    assert all(k % 4 == 0 and k >= 32 * 0.1 for k in kept.values())
    floor, _, _, _ = allocation.allocate(table, ops, structure, model, importance, dict.fromkeys(importance, 0.5), 0.0, 4)
    assert all(k == 16 for g, k in floor.items() if g in (group["a1"], group["b1"]))  # no further than the ceiling


def test_a_group_the_table_sees_no_saving_in_still_goes_when_the_limit_needs_it():
    model, structure, ops, table, importance, group = two_branches()
    for name in ("b1", "b2"):  # b's times flat in width, as a table fitted on noisy timings can be
        layer = table.layers[name]
        layer["ms"] = [[layer["ms"][-1][-1]] * len(row) for row in layer["ms"]]
    kept, _, _, _ = allocation.allocate(table, ops, structure, model, importance, dict.fromkeys(importance, 0.5), 0.0, 4)
    assert kept[group["a1"]] == 16 and kept[group["b1"]] == 16  # both down to their ceilings, not only a
    dense = table.predict({n: (op.cin, op.cout) for n, (op, _) in ops.items()})
    reachable, _, _, _ = allocation.allocate(table, ops, structure, model, importance, dict.fromkeys(importance, 0.9),
                                          0.9 * dense, 4)
    assert reachable[group["b1"]] == 32  # a limit the table can meet: b, which it sees saving nothing, keeps all


def test_a_residual_channel_read_by_many_layers_counts_for_each():
    model = models.create("resnet20", num_classes=10, in_channels=1, image_size=8).eval()
    structure = plan(model, torch.zeros(2, 1, 8, 8))
    importance = allocation.channel_importance(structure, model, None)
    sizes = {g: len(set(structure.groups[g]) | set(structure.consumers[g])) for g in importance}
    stream = max(sizes, key=sizes.get)
    inner = min(sizes, key=sizes.get)
    assert importance[stream].mean() > 2 * importance[inner].mean()


def test_latency_aware_joins_a_latency_budgets_front_through_the_public_api():
    digits = data_lib.load("digits")
    # twice as wide: at width 1 and 8 px a ResNet-20 runs in 0.06 ms, where load moves single timings by 15 %
    model = models.create("resnet20", num_classes=10, in_channels=1, image_size=8, width_mult=2.0)
    pruned = edgeprune.prune(model, digits, method="mix_and_match", granularity="channel", budget="latency<=80%",
                             finetune=0, criteria=["magnitude"], strategies=["balanced"], deploy_metrics=False)
    strategies = {r["decided"]["strategy"]: r for r in pruned.candidates}
    assert set(strategies) == {"balanced", "latency_aware"}
    aware = strategies["latency_aware"]["decided"]
    assert aware["measured"] <= aware["limit"] and aware["shift"] is None
    assert aware["importance"] == "taylor"  # the call has data: first-order Taylor over its calibration batches


def test_attention_heads_are_units_of_the_allocation():
    torch.manual_seed(0)
    model, example = models.create("vit", num_classes=10, in_channels=1, image_size=16).eval(), torch.randn(2, 1, 16, 16)
    structure = plan(model, example)
    heads = latency_table.kept_heads(structure, {}, model)
    importance = allocation.head_importance(heads, model, None)
    assert heads and all(len(v) == heads[a][2] for a, v in importance.items())
    ops = latency_table.census(model, example)
    table = synthetic_table(ops)
    dense = table.predict({n: (op.cin, op.cout) for n, (op, _) in ops.items()})
    _, kept, _, _ = allocation.allocate(table, ops, structure, model, importance, dict.fromkeys(importance, 0.9),
                                  0.8 * dense, round_to=8, heads=heads)
    assert kept and min(kept.values()) >= 1 and any(k < heads[a][2] for a, k in kept.items())
    widths = latency_table.widths_from(ops, structure, {}, {a: (heads[a][0], k, heads[a][2]) for a, k in kept.items()},
                                       model)
    assert table.predict(widths) <= 0.8 * dense


def test_without_a_table_the_budget_is_bisected_and_latency_aware_left_out(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("an operator the runner cannot load")

    monkeypatch.setattr(latency_table, "cached", broken)
    digits = data_lib.load("digits")
    model = models.create("resnet20", num_classes=10, in_channels=1, image_size=8)
    with pytest.warns(UserWarning, match="no latency table for ResNet.*calibrated on whole-model timings"):
        pruned = edgeprune.prune(model, digits, method="mix_and_match", granularity="channel", budget="latency<=80%",
                                 finetune=0, criteria=["magnitude"], strategies=["balanced"], deploy_metrics=False)
    [record] = pruned.candidates
    assert record["decided"]["strategy"] == "balanced" and "latency_table" not in record["decided"]
    assert record["decided"]["measured"] <= record["decided"]["limit"]


def test_after_a_miss_the_table_aims_lower_until_a_proposal_prunes_more(monkeypatch):
    """A proposal timed 1 % over the limit, and the table rescaled to that timing rounds to the same widths: the next
    proposal must still prune more (seen in the suite: latency_aware left out of a ResNet-20 front by noise)."""
    model = models.create("resnet20", num_classes=10, in_channels=1, image_size=8).eval()
    options = get_method("structured", criteria=["magnitude"], deploy_metrics=False).options
    state = structured_mam.prepare(model, None, torch.randn(2, 1, 8, 8), options)
    timings = iter([1.01, 0.99])  # ms: the first proposal misses the 1 ms limit, the next one fits
    monkeypatch.setattr(state.meter, "value", lambda *args, **kwargs: next(timings))
    monkeypatch.setattr(structured_mam, "pruned_copy", lambda *args, **kwargs: (None, None))
    monkeypatch.setattr(structured_mam, "_table_value", lambda *args: 1.0)
    scale = [1.0]

    def propose():  # widths in coarse steps: a table aiming 1 % lower keeps them
        pruning = int(10 * scale[0]) / 10
        return {"pruning": pruning}, pruning, 0

    pruning, vector, measured, _, timed = structured_mam._confirm(state, None, parse("latency<=1ms"), propose, scale)
    assert (pruning, measured, timed) == (1.1, 0.99, 2)


def resnet20_allocation(width_mult: float = 1.0):
    torch.manual_seed(0)
    model = models.create("resnet20", num_classes=10, in_channels=1, image_size=8, width_mult=width_mult).eval()
    example = torch.randn(2, 1, 8, 8)
    structure = plan(model, example)
    ops = latency_table.census(model, example)
    table = synthetic_table(ops)
    importance = allocation.channel_importance(structure, model, None)
    blocks = allocation.internal_units(depth_lib.removable_blocks(model, example[:1]), structure, importance, {})
    dense = table.predict({n: (op.cin, op.cout) for n, (op, _) in ops.items()})
    return model, structure, ops, table, importance, blocks, dense


def test_blocks_are_units_of_the_allocation_when_thinning_cannot_reach_the_limit():
    model, structure, ops, table, importance, blocks, dense = resnet20_allocation()
    assert len(blocks) == 7 and all(len(units) == 1 for units in blocks.values())  # identity shortcuts: inner group
    ceilings = dict.fromkeys(importance, 0.5)
    thin = allocation.allocate(table, ops, structure, model, importance, ceilings, 0.2 * dense, 4)
    assert thin.ms > 0.2 * dense and thin.blocks == []  # half the channels at most: the limit is out of reach
    deep = allocation.allocate(table, ops, structure, model, importance, ceilings, 0.2 * dense, 4,
                               blocks=blocks, max_blocks=6)
    assert 1 <= len(deep.blocks) <= 6 and set(deep.blocks) <= set(blocks)
    members = {m: k for g, k in deep.channels.items() for m in structure.groups[g]}
    assert deep.ms == pytest.approx(table.predict(latency_table.widths_from(ops, structure, members, {}, model,
                                                                            deep.blocks)))
    assert deep.ms < thin.ms


def test_a_block_whose_channels_matter_least_goes_first():
    model, structure, ops, table, importance, blocks, dense = resnet20_allocation()
    idle = sorted(blocks)[4]
    for u in blocks[idle]:
        importance[u] = importance[u] * 1e-6  # as if the block barely changed the loss
    chosen = allocation.allocate(table, ops, structure, model, importance, dict.fromkeys(importance, 0.9),
                                 0.85 * dense, 4, blocks=blocks, max_blocks=1)
    assert chosen.blocks == [idle]  # thinned first, then gone with what little it kept
    capped = allocation.allocate(table, ops, structure, model, importance, dict.fromkeys(importance, 0.9),
                                 0.5 * dense, 4, blocks=blocks, max_blocks=1)
    assert len(capped.blocks) == 1  # never more than max_blocks


def test_latency_aware_blocks_joins_the_front_with_the_blocks_it_chose():
    digits = data_lib.load("digits")
    model = models.create("resnet20", num_classes=10, in_channels=1, image_size=8, width_mult=2.0)
    pruned = edgeprune.prune(model, digits, method="mix_and_match", granularity="channel", budget="latency<=70%",
                             finetune=0, criteria=["magnitude"], strategies=["balanced"], drop_blocks=[0, 2],
                             deploy_metrics=False)
    joint = [r for r in pruned.candidates if r["decided"]["strategy"] == "latency_aware_blocks"]
    assert len(joint) == 1, [r["decided"]["strategy"] for r in pruned.candidates]
    decided = joint[0]["decided"]
    assert decided["measured"] <= decided["limit"] and len(decided["dropped_blocks"]) <= 2
    depth = len(decided["dropped_blocks"])
    assert joint[0]["id"].startswith("mam-magnitude-latency_aware_blocks" + (f"-d{depth}" if depth else "") + "-b")


def plain_greedy(table, ops, structure, model, importance, ceilings, limit_ms, round_to, blocks, max_blocks):
    """The allocation's greedy without its cache: every unit and block priced again at every step."""
    totals = {u: structure.channels[structure.groups[u][0]] for u in importance}
    kept, dropped, frozen = dict(totals), [], set()
    floors = {u: max(min(round_to, c), int(np.ceil(c * (1 - ceilings[u])))) for u, c in totals.items()}
    ranked = {u: np.cumsum(np.sort(v)) for u, v in importance.items()}
    gone = lambda u, k: ranked[u][totals[u] - k - 1] if k < totals[u] else 0.0  # noqa: E731

    def predict(state, out):
        members = {m: k for u, k in state.items() for m in structure.groups[u]}
        return table.predict(latency_table.widths_from(ops, structure, members, {}, model, out))

    now = predict(kept, dropped)
    while now > limit_ms:
        options = []
        for u, k in kept.items():
            step = (k - 1) // round_to * round_to if round_to > 1 else k - 1
            if u not in frozen and step >= floors[u]:
                options.append((u, step, predict({**kept, u: step}, dropped), gone(u, step) - gone(u, k)))
        for block, units in blocks.items() if len(dropped) < max_blocks else ():
            if block not in dropped:
                options.append((block, None, predict(kept, [*dropped, block]),
                                sum(ranked[u][-1] - gone(u, kept[u]) for u in units)))
        if not options:
            break
        u, step, now, _ = min(options, key=lambda o: (o[3] / (now - o[2]) if now - o[2] > 1e-9 else np.inf, o[3]))
        if step is None:
            dropped.append(u)
            frozen.update(blocks[u])
        else:
            kept[u] = step
    return kept, dropped


@pytest.mark.parametrize("round_to", [1, 4])
def test_the_cached_greedy_allocates_as_the_plain_one(round_to):
    # each step prices again only the units sharing a layer with the last one: exact on an additive table
    model, structure, ops, table, importance, blocks, dense = resnet20_allocation(width_mult=0.5)
    ceilings = dict.fromkeys(importance, 0.9)
    for share, max_blocks in ((0.7, 0), (0.4, 2), (0.15, 4)):
        fast = allocation.allocate(table, ops, structure, model, importance, ceilings, share * dense, round_to,
                                   blocks=blocks, max_blocks=max_blocks)
        assert (fast.channels, fast.blocks) == plain_greedy(table, ops, structure, model, importance, ceilings,
                                                            share * dense, round_to, blocks, max_blocks)

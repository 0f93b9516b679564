"""Models with attention get the paper's Swin-T pair (mlp_heavy, attn_aggressive) instead of the CNN pair;
both follow their definitions layer by layer (found by role, not by name)."""

from __future__ import annotations

import torch

from edgeprune import models, ranges, roles, strategies
from edgeprune.methods.base import get_method


def test_transformer_pair_by_role():
    torch.manual_seed(0)
    vit = models.create("vit", num_classes=10, in_channels=1, image_size=16)
    table = roles.classify(vit, torch.zeros(1, 1, 16, 16))
    r = ranges.rules(table)
    assert strategies.names_for(table) == strategies.TRANSFORMER_NAMES
    mlp = strategies.build("mlp_heavy", r, table)
    attn = strategies.build("attn_aggressive", r, table)
    seen = set()
    for e in table.prunable():
        lo, hi = r[e.param_name]
        seen.add(e.role)
        assert mlp[e.param_name] == (hi if e.role in ("mlp_in", "mlp_out") else lo)
        assert attn[e.param_name] == (hi if e.role in ("attn_qkv", "attn_proj") else lo + 0.5 * (hi - lo))
    assert {"mlp_in", "mlp_out", "attn_qkv", "attn_proj"} <= seen

    m = get_method("mix_and_match", criteria=["magnitude"], baselines=[])
    state = m.prepare(vit, None, torch.zeros(1, 1, 16, 16))
    assert state.strategies == strategies.TRANSFORMER_NAMES
    names = {c.setting["strategy"] for c in m.candidates(state, [0.4], [0])}
    assert {"mlp_heavy", "attn_aggressive"} <= names and not names & {"late_heavy", "early_heavy"}

    cnn = models.create("lenet5", num_classes=10, in_channels=1, image_size=8)
    assert strategies.names_for(roles.classify(cnn, torch.zeros(1, 1, 8, 8))) == strategies.NAMES

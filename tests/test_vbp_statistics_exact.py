"""VBP statistics equal a direct float64 computation over the same batches (every token is a sample)."""

import torch

from edgeprune import models
from edgeprune.methods import vbp
from edgeprune.scores.activations import RunningMoments


def test_block_statistics_match_direct_float64():
    torch.manual_seed(0)
    model = models.create("vit", num_classes=10, in_channels=1, image_size=8, dim=16, depth=2, num_heads=2)
    model.train()  # collect_statistics must switch to eval (and restore the mode)
    batches = [(torch.randn(5, 1, 8, 8), torch.zeros(5, dtype=torch.long)) for _ in range(4)]

    seen = {0: [], 1: []}
    hooks = [model.blocks[i].mlp.fc2.register_forward_pre_hook(lambda m, a, i=i: seen[i].append(a[0].detach()))
             for i in range(2)]
    model.eval()
    with torch.no_grad():
        for x, _ in batches[:3]:
            model(x)
    for h in hooks:
        h.remove()
    model.train()

    stats = vbp.collect_statistics(model, batches, calib_batches=3)
    assert model.training
    assert list(stats) == ["blocks.0.mlp.fc1", "blocks.1.mlp.fc1"]
    for i, name in enumerate(stats):
        h = torch.cat(seen[i]).reshape(-1, 64).double()  # 3 batches x 5 images x 17 tokens
        s = stats[name]
        assert s.count == 3 * 5 * 17 and s.mlp_out == f"blocks.{i}.mlp.fc2"
        assert s.mean.dtype == torch.float64 and s.var.dtype == torch.float64
        torch.testing.assert_close(s.mean, h.mean(0), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(s.var, h.var(0, unbiased=True), rtol=1e-10, atol=1e-12)

    every = vbp.collect_statistics(model, batches, calib_batches=0)  # 0 = every batch
    assert next(iter(every.values())).count == 4 * 5 * 17


def test_chan_merge_is_precise_with_a_large_offset():
    gen = torch.Generator().manual_seed(1)
    data = 1e4 + torch.randn(3000, 3, generator=gen, dtype=torch.float64)
    moments = RunningMoments.zeros(3)
    for chunk in data.split(7):
        moments.update(chunk.float())  # float32 input, float64 accumulation
    ref = data.float().double()
    torch.testing.assert_close(moments.mean, ref.mean(0), rtol=1e-12, atol=1e-9)
    torch.testing.assert_close(moments.variance, ref.var(0), rtol=1e-9, atol=1e-9)

"""surgery.ratios on attention that is not a fused timm ``qkv``: HF split q/k/v attention (ViT, DeiT, BEiT
with its per-head relative position bias, DINOv2, Swin) loses whole heads -- the head count, the q/k/v widths
and the parameter count drop, and the pruned model computes exactly what the unpruned one computes with the
removed heads' output columns zeroed (so the kept heads keep their own bias columns); ONNX export keeps
parity. nn.MultiheadAttention (batch_first or not) cannot lose heads alone (its q/k/v width is its
embed_dim, the residual width): it stays whole when the stream is kept, and narrows every head alike with it.
"""

import copy

import pytest
import torch
from torch import nn

from edgeprune import models
from edgeprune.export.onnx import export_verified
from edgeprune.measure import param_count
from edgeprune.surgery import heads as attention
from edgeprune.surgery.ratios import prune_channels
from edgeprune.surgery.structure import plan as plan_structure

pytest.importorskip("transformers")

SIZE = 32
HF = {
    "vit": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, patch_size=8),
    "deit": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, patch_size=8),
    "beit": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, patch_size=8,
                 use_relative_position_bias=True),
    "dinov2": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, mlp_ratio=2, patch_size=8),
    "swin": dict(embed_dim=16, depths=[1, 1], num_heads=[2, 4], window_size=4, patch_size=4),
}


def hf(name):
    torch.manual_seed(0)
    model = models.create(f"hf-config:{name}", num_classes=5, in_channels=3, image_size=SIZE, **HF[name]).eval()
    for p in model.parameters():  # HF zero-initialises the bias tables: make every head's bias its own
        if p.dim() == 2 and p.shape[0] > p.shape[1]:
            p.data.normal_()
    return model


def attention_layers(model):
    """name -> (module, [q, k, v]) of the split attention modules."""
    return {n: (m, attention.projections(m)) for n, m in model.named_modules()
            if isinstance(getattr(m, "num_attention_heads", None), int) and len(attention.projections(m)) == 3}


def prune_heads(model, x, fraction=0.5):
    """Only the attention layers get a fraction (the MLPs and the residual stream keep their widths)."""
    structure = plan_structure(model, x)
    names = {n for n, m in model.named_modules() if any(m is p for _, ps in attention_layers(model).values() for p in ps)}
    prune_channels(model, x, structure, dict.fromkeys(names, fraction))


def kept_heads(before: nn.Linear, after: nn.Linear, head_dim: int) -> list[int]:
    old = before.weight.detach().view(-1, head_dim, before.in_features)
    new = after.weight.detach().view(-1, head_dim, after.in_features)
    return [next(j for j in range(len(old)) if torch.equal(old[j], h)) for h in new]


@pytest.mark.parametrize("name", list(HF))
def test_hf_attention_loses_whole_heads_and_keeps_the_rest_exact(name):
    model, x = hf(name), torch.randn(2, 3, SIZE, SIZE)
    reference, before = copy.deepcopy(model), param_count(model)
    layers_before = attention_layers(reference)
    prune_heads(model, x)
    assert param_count(model) < before
    for n, (module, (q, k, v)) in attention_layers(model).items():
        old, (q0, _, _) = layers_before[n]
        heads0 = old.num_attention_heads
        head_dim = q0.out_features // heads0
        assert module.num_attention_heads == heads0 - min(round(0.5 * heads0), heads0 - 1)
        assert q.out_features == k.out_features == v.out_features == module.num_attention_heads * head_dim
        if isinstance(getattr(module, "head_dim", None), int):
            assert module.head_dim == head_dim  # softmax scale unchanged
        gone = set(range(heads0)) - set(kept_heads(q0, q, head_dim))
        out = _output_projection(old, q0)
        with torch.no_grad():
            for h in gone:  # the reference: the removed heads contribute nothing
                out.weight[:, h * head_dim:(h + 1) * head_dim] = 0
    with torch.no_grad():
        got, want = model(x), reference(x)
    got, want = (getattr(t, "logits", t) for t in (got, want))
    assert got.shape == want.shape and torch.isfinite(got).all()
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def _output_projection(module, q):
    names = ("o_proj", "output", "dense", "proj")
    for n in names:
        layer = getattr(module, n, None)
        if isinstance(layer, nn.Linear) and layer.in_features == q.out_features:
            return layer
    raise AssertionError(f"no output projection in {type(module).__name__}")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["vit", "beit"])
def test_hf_pruned_heads_export_to_onnx_with_parity(name, tmp_path):
    model, x = hf(name), torch.randn(2, 3, SIZE, SIZE)
    prune_heads(model, x)
    assert all(m.num_attention_heads == 2 for m, _ in attention_layers(model).values())
    info = export_verified(model, tmp_path / "model.onnx", x)
    assert info["max_abs_diff"] <= info["tolerance"]


class MHANet(nn.Module):
    """Linear patch embedding -> nn.MultiheadAttention (4 heads) with a residual -> classifier."""

    def __init__(self, batch_first):
        super().__init__()
        self.batch_first = batch_first
        self.embed = nn.Linear(48, 32)
        self.attn = nn.MultiheadAttention(32, 4, batch_first=batch_first)
        self.head = nn.Linear(32, 5)

    def forward(self, x):
        t = self.embed(x.unfold(2, 4, 4).unfold(3, 4, 4).permute(0, 2, 3, 1, 4, 5).flatten(3).flatten(1, 2))
        t = t if self.batch_first else t.transpose(0, 1)
        t = t + self.attn(t, t, t, need_weights=False)[0]
        return self.head((t if self.batch_first else t.transpose(0, 1)).mean(1))


@pytest.mark.slow
@pytest.mark.parametrize("batch_first", [True, False])
def test_multihead_attention_keeps_its_heads_and_narrows_every_head_alike(batch_first, tmp_path):
    torch.manual_seed(0)
    x = torch.randn(2, 3, SIZE, SIZE)
    kept = MHANet(batch_first).eval()
    structure = plan_structure(kept, x, {"embed"})  # the residual stream kept: the attention stays whole
    prune_channels(kept, x, structure, {"embed": 0.5})
    assert (kept.attn.embed_dim, kept.attn.num_heads) == (32, 4)

    model = MHANet(batch_first).eval()
    before = param_count(model)
    structure = plan_structure(model, x)
    prune_channels(model, x, structure, {"embed": 0.3})  # 30 %: not a multiple of the 4 heads
    attn = model.attn
    assert attn.num_heads == 4 and attn.embed_dim == 20 and attn.head_dim == 5
    assert tuple(attn.in_proj_weight.shape) == (60, 20) and attn.out_proj.out_features == 20
    assert param_count(model) < before
    with torch.no_grad():
        out = model(x)
    assert out.shape == (2, 5) and torch.isfinite(out).all()
    info = export_verified(model, tmp_path / "model.onnx", x)
    assert info["max_abs_diff"] <= info["tolerance"]

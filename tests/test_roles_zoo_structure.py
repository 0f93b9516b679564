"""Roles from structure on the families the position rule got wrong (issue 14): SwinV2's position-bias MLP is no
q/k/v, MobileViT's stem and MobileNet blocks and CvT's depthwise q/k/v projections are no patch embedding,
PoolFormer's 1x1-conv MLP and PVTv2's MLP (a depthwise conv between fc1 and fc2) are MLPs, FocalNet's
modulation is token mixing, LeViT keeps its 4-conv stem as patch embedding."""

import pytest
import torch

pytest.importorskip("transformers")

from edgeprune.roles import classify  # noqa: E402
from test_zoo_contract import build  # noqa: E402


def _roles(case):
    model = build(case)
    table = classify(model, torch.zeros(1, 3, 32, 32))
    return {e.module_name.removeprefix("hf_model."): e.role for e in table.prunable()}, table


def test_swinv2_position_bias_mlp_is_not_qkv():
    roles, table = _roles("hf-config:swinv2")
    cpb = {n: r for n, r in roles.items() if "continuous_position_bias_mlp" in n}
    assert cpb and set(cpb.values()) == {"linear"}
    assert table.counts()["attn_qkv"] == 6 and table.counts()["attn_proj"] == 2


def test_mobilevit_has_no_patch_embedding():
    roles, table = _roles("hf-config:mobilevit")
    assert table.counts()["patch_embed"] == 0  # stem and MobileNet blocks feed convs: ordinary convs
    assert table.counts()["attn_proj"] > 0 and table.counts()["mlp_in"] > 0


def test_cvt_depthwise_projections_are_convs():
    roles, _ = _roles("hf-config:cvt")
    assert [n for n, r in roles.items() if r == "patch_embed"] == ["cvt.encoder.stages.0.embedding.convolution_embeddings.projection"]
    dw = {n: r for n, r in roles.items() if "convolution_projection" in n}
    assert dw and set(dw.values()) == {"conv"}


@pytest.mark.parametrize("case,pairs", [("hf-config:poolformer", 4), ("hf-config:pvt_v2", 4), ("timm:convnext_atto", 12)])
def test_conv_and_depthwise_mlps_are_found(case, pairs):
    _, table = _roles(case)
    assert len(table.mlp_pairs()) == pairs


def test_focalnet_modulation_is_token_mixing():
    roles, _ = _roles("hf-config:focalnet")
    assert {r for n, r in roles.items() if n.endswith("modulation.projection_in")} == {"attn_qkv"}
    assert {r for n, r in roles.items() if n.endswith("modulation.projection_out")} == {"attn_proj"}
    assert {r for n, r in roles.items() if "focal_layers" in n or "projection_context" in n} == {"conv"}


def test_levit_stem_is_the_patch_embedding():
    roles, _ = _roles("hf-config:levit")
    assert len([r for r in roles.values() if r == "patch_embed"]) == 4


def test_roles_under_no_grad_are_the_same():
    model = build("vit")
    with torch.no_grad():
        inside = classify(model, torch.zeros(1, 3, 32, 32))
    assert inside.counts() == classify(model, torch.zeros(1, 3, 32, 32)).counts()
    assert inside.counts()["attn_proj"] == 2 and inside.counts()["mlp_in"] == 2


class FunctionalAttention(torch.nn.Module):
    """Attention that applies its projections' weights with F.linear and never calls them (torchvision's Swin)."""

    def __init__(self, dim=8):
        super().__init__()
        self.norm, self.qkv, self.proj = torch.nn.LayerNorm(dim), torch.nn.Linear(dim, 3 * dim), torch.nn.Linear(dim, dim)
        self.fc1, self.fc2, self.head = torch.nn.Linear(dim, 4 * dim), torch.nn.Linear(4 * dim, dim), torch.nn.Linear(dim, 3)

    def forward(self, x):  # x: [B, tokens, dim]
        q, k, v = torch.nn.functional.linear(self.norm(x), self.qkv.weight, self.qkv.bias).chunk(3, -1)
        x = x + torch.nn.functional.linear((q @ k.transpose(1, 2)).softmax(-1) @ v, self.proj.weight, self.proj.bias)
        x = x + self.fc2(torch.relu(self.fc1(x)))
        return self.head(x.mean(1))


def test_weights_applied_functionally_get_their_roles_in_forward_order():
    table = classify(FunctionalAttention(), torch.zeros(1, 5, 8))
    assert [(e.module_name, e.role) for e in table] == [
        ("norm", "norm"), ("qkv", "attn_qkv"), ("proj", "attn_proj"), ("fc1", "mlp_in"), ("fc2", "mlp_out"),
        ("head", "classifier")]


@pytest.mark.parametrize("name", ["swin_t", "swin_v2_t"])
def test_torchvision_swin_attention_and_mlps(name):
    torchvision = pytest.importorskip("torchvision")
    model = getattr(torchvision.models, name)(num_classes=10)
    counts = classify(model, torch.zeros(1, 3, 64, 64)).counts()
    assert {r: counts[r] for r in ("attn_qkv", "attn_proj", "mlp_in", "mlp_out")} == dict.fromkeys(
        ("attn_qkv", "attn_proj", "mlp_in", "mlp_out"), 12)

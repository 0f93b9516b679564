"""Roles of the five HF families built from tiny configs (ViT, DeiT, Swin, LeViT, ConvNeXt)."""

import pytest
import torch

pytest.importorskip("transformers")

from edgeprune import models  # noqa: E402
from edgeprune.measure import prunable_weights  # noqa: E402
from edgeprune.roles import ROLES, classify  # noqa: E402
from helpers import TINY_HF as TINY  # noqa: E402

# ViT/DeiT: separate q, k, v Linears (3 per block) + output projection; Swin adds patch merging (linear);
# LeViT: 4-conv stem = patch_embed, fused qkv per block, subsample blocks have keys_values + queries,
# BatchNorm after every Linear; ConvNeXt: patchify stem, depthwise + downsampling convs, pwconv MLP pairs.
EXPECTED = {
    "vit": {"patch_embed": 1, "attn_qkv": 6, "attn_proj": 2, "mlp_in": 2, "mlp_out": 2, "norm": 5, "classifier": 1},
    "deit": {"patch_embed": 1, "attn_qkv": 6, "attn_proj": 2, "mlp_in": 2, "mlp_out": 2, "norm": 5, "classifier": 1},
    "swin": {"patch_embed": 1, "attn_qkv": 6, "attn_proj": 2, "mlp_in": 2, "mlp_out": 2, "linear": 1, "norm": 7,
             "classifier": 1},
}


def _table(model_type):
    torch.manual_seed(0)
    model = models.create(f"hf-config:{model_type}", num_classes=5, in_channels=3, image_size=32, **TINY[model_type])
    return model, classify(model, torch.zeros(1, 3, 32, 32))


@pytest.mark.parametrize("model_type", sorted(EXPECTED))
def test_transformer_roles(model_type):
    model, table = _table(model_type)
    assert table.counts() == {r: EXPECTED[model_type].get(r, 0) for r in ROLES}
    assert sorted(e.param_name for e in table.prunable()) == sorted(prunable_weights(model))
    assert table.prunable()[0].role == "patch_embed"


def test_levit_roles():
    model, table = _table("levit")
    counts = table.counts()
    prunable = table.prunable()
    assert [e.role for e in prunable[:4]] == ["patch_embed"] * 4  # the conv stem
    assert prunable[-1].role == "classifier" and counts["classifier"] == 1  # edgeprune uses the plain head
    assert counts["conv"] == 0 and counts["linear"] == 0
    assert counts["attn_proj"] >= 3 and counts["attn_qkv"] > counts["attn_proj"]  # subsample: kv + q
    assert counts["mlp_in"] == counts["mlp_out"] == len(table.mlp_pairs()) >= 3
    # every LeViT conv/Linear is followed by a BatchNorm: one norm per layer, stem and head included
    assert counts["norm"] == len(prunable)
    assert len(prunable) == len(prunable_weights(model))


def test_convnext_roles():
    model, table = _table("convnext")
    prunable = table.prunable()
    assert prunable[0].role == "patch_embed"  # patchify stem: kernel == stride
    assert table.counts()["mlp_in"] == table.counts()["mlp_out"] == 3
    assert table.counts()["conv"] == 3 + 2  # depthwise 7x7 per block + 2 downsampling convs
    assert prunable[-1].role == "classifier"
    depthwise = [e for e in prunable if e.role == "conv" and e.shape[1] == 1]
    assert len(depthwise) == 3 and depthwise[0].depth == 0.0 and depthwise[-1].depth == 1.0


def test_levit_with_teacher_has_two_classifiers():
    """HF's LeViT-with-teacher averages a head and a distillation head: both produce the logits."""
    from transformers import LevitConfig, LevitForImageClassificationWithTeacher

    config = LevitConfig(image_size=32, num_labels=5, **TINY["levit"])
    table = classify(LevitForImageClassificationWithTeacher(config), torch.zeros(1, 3, 32, 32))
    assert [e.role for e in table.prunable()[-2:]] == ["classifier", "classifier"]
    assert table.counts()["classifier"] == 2

"""A hand-written ViT whose attention reshapes q/k/v by a head count kept in an attribute torch-pruning does
not know (``self.h``, multiplied with einsum): structured Mix-and-Match keeps that attention whole (its qkv, its
projection and the stream they share), removes MLP hidden neurons around it, says so in one warning naming the
attention modules and records them in ``decided["skipped"]``. VBP (MLP neurons only) prunes it too."""

import warnings

import pytest
import torch

import edgeprune
from byom.einsum_vit import Attention, build
from edgeprune.errors import ModelError
from edgeprune.export.onnx import export_verified

DIM, DEPTH = 32, 2


@pytest.fixture(scope="module")
def digits():
    return edgeprune.data.load("digits")


def _model(data):
    torch.manual_seed(0)
    return build(data.num_classes, data.in_channels, data.image_size, dim=DIM, depth=DEPTH).eval()


def _mlp_widths(model):
    return [block.mlp[0].out_features for block in model.blocks]


def _assert_attention_whole(model):
    for block in model.blocks:
        assert (block.attn.qkv.in_features, block.attn.qkv.out_features) == (DIM, 3 * DIM)
        assert (block.attn.proj.in_features, block.attn.proj.out_features) == (DIM, DIM)
        assert block.attn.h == 4


def _assert_runs_and_exports(model, data, tmp_path):
    x = torch.stack([data.test[i][0] for i in range(8)])
    assert model(x).shape == (8, data.num_classes)
    export_verified(model.eval(), tmp_path / "pruned.onnx", x)


@pytest.mark.slow
@pytest.mark.parametrize("budget", ["macs<=70%", 0.3])
def test_channel_pruning_keeps_the_einsum_attention_whole_and_prunes_the_mlps(digits, budget, tmp_path):
    model = _model(digits)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pruned = edgeprune.prune(model, digits, method="mix_and_match", granularity="channel", budget=budget,
                                 finetune=0)
    said = [str(w.message) for w in caught if "kept whole" in str(w.message)]
    assert len(said) == 1, [str(w.message) for w in caught]
    assert "blocks.0.attn" in said[0] and "blocks.1.attn" in said[0] and "Attention" in said[0]
    assert "\n" not in said[0]
    assert any("blocks.0.attn" in line for line in pruned.decided["skipped"])
    assert all(isinstance(m, Attention) for m in (b.attn for b in pruned.model.blocks))
    _assert_attention_whole(pruned.model)
    assert sum(_mlp_widths(pruned.model)) < sum(_mlp_widths(model))
    if budget == "macs<=70%":
        assert pruned.record["macs"] <= 0.7 * pruned.dense["macs"]
    _assert_runs_and_exports(pruned.model, digits, tmp_path)
    _assert_attention_whole(model)  # the input is untouched
    assert _mlp_widths(model) == [4 * DIM] * DEPTH


@pytest.mark.slow
def test_vbp_prunes_the_mlps_of_the_einsum_vit(digits, tmp_path):
    model = _model(digits)
    pruned = edgeprune.prune(model, digits, method="vbp", budget=0.5, finetune=0)
    _assert_attention_whole(pruned.model)
    assert sum(_mlp_widths(pruned.model)) == DEPTH * 4 * DIM // 2
    _assert_runs_and_exports(pruned.model, digits, tmp_path)


class OnlyAttention(torch.nn.Module):
    """Nothing but the einsum attention between a patch embedding and the classifier: nothing can go."""

    def __init__(self):
        super().__init__()
        self.patch_embed, self.attn = torch.nn.Conv2d(1, DIM, 2, stride=2), Attention(DIM, 4)
        self.head = torch.nn.Linear(DIM, 10)

    def forward(self, x):
        return self.head(self.attn(self.patch_embed(x).flatten(2).transpose(1, 2)).mean(1))


def test_a_model_of_only_such_attention_is_refused_in_one_line(digits):
    with pytest.raises(ModelError) as info:
        edgeprune.prune(OnlyAttention(), digits, method="mix_and_match", granularity="channel", budget=0.3,
                        finetune=0, criteria=["magnitude"], strategies=["balanced"])
    assert "\n" not in str(info.value) and "OnlyAttention" in str(info.value)

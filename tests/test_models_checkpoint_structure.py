"""A checkpoint whose recorded layer structure disagrees with its tensors (the record edited and the content
hash recomputed, so the hash check passes) is refused on load with one line naming the layer, the recorded
value and the tensor's shape; the CLI exits 2."""

import pytest
import torch

import edgeprune
from edgeprune.errors import CheckpointError
from edgeprune.models import create, load, save
from edgeprune.models.checkpoint import content_hash
from helpers import TINY_HF, assert_one_line_error

tp = pytest.importorskip("torch_pruning")


def _forged(path, tmp_path, layer: str, attr: str, value):
    """A copy of the checkpoint at ``path`` with ``layer``'s recorded ``attr`` set to ``value``, rehashed."""
    raw = torch.load(path, weights_only=True)
    raw["structure"][layer][attr] = value
    raw["sha256"] = content_hash(raw)
    forged = tmp_path / "forged.pt"
    torch.save(raw, forged)
    return forged


def _refusal(path) -> str:
    with pytest.raises(CheckpointError) as info:
        load(path)
    return str(info.value)


@pytest.fixture
def narrowed_mlp(tmp_path):
    """A LeNet-300-100 whose first hidden Linear lost 179 of its 300 neurons (121 left), saved."""
    torch.manual_seed(0)
    model = create("lenet300", num_classes=10, in_channels=1, image_size=8)
    tp.prune_linear_out_channels(model.features[1], idxs=list(range(179)))
    tp.prune_linear_in_channels(model.features[3], idxs=list(range(179)))
    path = save(model, tmp_path / "pruned.pt")
    assert load(path).features[1].out_features == 121  # the honest file loads
    return path


def test_an_edited_linear_width_is_refused(narrowed_mlp, tmp_path):
    forged = _forged(narrowed_mlp, tmp_path, "features.1", "out_features", 116)
    message = _refusal(forged)
    assert "\n" not in message
    for needle in ("forged.pt", "'features.1'", "out_features=116", "(121, 64)"):
        assert needle in message, (needle, message)
    with pytest.raises(CheckpointError, match="out_features=116"):
        edgeprune.load(forged)


def test_the_cli_refuses_it_in_one_line(narrowed_mlp, tmp_path, run_cli):
    forged = _forged(narrowed_mlp, tmp_path, "features.3", "in_features", 300)
    code, _, err = run_cli("measure", forged)
    assert_one_line_error(code, err, "'features.3'", "in_features=300", "(100, 121)")


def test_an_edited_conv_and_batchnorm_width_is_refused(tmp_path):
    torch.manual_seed(0)
    model = create("resnet20", num_classes=10).eval()
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=torch.randn(1, 3, 32, 32))
    graph.get_pruning_group(model.layer2[1].conv1, tp.prune_conv_out_channels, idxs=list(range(10))).prune()
    path = save(model, tmp_path / "resnet.pt")
    message = _refusal(_forged(path, tmp_path, "layer2.1.conv1", "out_channels", 32))
    assert "'layer2.1.conv1'" in message and "out_channels=32" in message and "(22, 32, 3, 3)" in message
    message = _refusal(_forged(path, tmp_path, "layer2.1.bn1", "num_features", 32))
    assert "'layer2.1.bn1'" in message and "num_features=32" in message and "(22,)" in message
    message = _refusal(_forged(path, tmp_path, "layer2.1.conv1", "groups", 2))
    assert "groups=2" in message and "(22, 32, 3, 3)" in message


def test_edited_layernorm_and_heads_of_a_vit_are_refused(tmp_path):
    model = create("vit", num_classes=5, in_channels=1, image_size=8, dim=32, depth=1, num_heads=4)
    path = save(model, tmp_path / "vit.pt")
    message = _refusal(_forged(path, tmp_path, "norm", "normalized_shape", [30]))
    assert "'norm'" in message and "normalized_shape=[30]" in message and "(32,)" in message
    message = _refusal(_forged(path, tmp_path, "blocks.0.attn", "num_heads", 5))
    assert "'blocks.0.attn'" in message and "num_heads=5" in message and "(96, 32)" in message


def test_edited_heads_of_an_hf_vit_are_refused(tmp_path):
    pytest.importorskip("transformers")
    model = create("hf-config:vit", num_classes=3, **TINY_HF["vit"])
    path = save(model, tmp_path / "hf.pt")
    attention = next(n for n, r in torch.load(path, weights_only=True)["structure"].items()
                     if "num_attention_heads" in r)
    message = _refusal(_forged(path, tmp_path, attention, "num_attention_heads", 4))
    assert f"'{attention}'" in message and "num_attention_heads=4" in message and "(32, 32)" in message


def test_an_edited_multihead_attention_is_refused(tmp_path):
    """A model of the user's own class (loaded with model=) gets the same check."""
    def fresh():
        return torch.nn.MultiheadAttention(8, 2, batch_first=True)

    path = save(fresh(), tmp_path / "mha.pt")
    forged = _forged(path, tmp_path, "", "embed_dim", 10)
    with pytest.raises(CheckpointError) as info:
        load(forged, model=fresh)
    assert "embed_dim=10" in str(info.value) and "(24, 8)" in str(info.value)


class _Recurrent(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = torch.nn.GRU(8, 4, batch_first=True)

    def forward(self, x):
        return self.rnn(x)[0]


def test_an_edited_recurrent_input_width_is_refused(tmp_path):
    model = _Recurrent()
    model.rnn.weight_ih_l0 = torch.nn.Parameter(model.rnn.weight_ih_l0.detach()[:, :5].clone())  # as pruning leaves it
    model.rnn.input_size = 5
    path = save(model, tmp_path / "pruned.pt")
    assert load(path, model=_Recurrent()).rnn.input_size == 5  # the honest file loads
    forged = _forged(path, tmp_path, "rnn", "input_size", 8)
    with pytest.raises(CheckpointError) as info:
        load(forged, model=_Recurrent())
    for needle in ("'rnn'", "input_size=8", "(12, 5)"):
        assert needle in str(info.value), (needle, str(info.value))

"""Models written the way users write them, through the public call: torch's own ``nn.TransformerEncoder`` (whose eval
mode takes a fused kernel), a forward that turns the batch size into a Python number."""

import copy

import pytest
import torch
from torch import nn

import edgeprune
from edgeprune import data as data_lib
from edgeprune.errors import ModelError
from edgeprune.measure import macs
from edgeprune.models.mha import split_mha


class Encoder(nn.Module):
    """Patchify conv, class token and torch's nn.TransformerEncoder with its defaults (nested tensors, fused kernel)."""

    def __init__(self, dim=32):
        super().__init__()
        self.embed = nn.Conv2d(1, dim, 2, stride=2)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.zeros(1, 17, dim))
        self.enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(dim, 4, 64, dropout=0.0, batch_first=True), 2)
        self.head = nn.Linear(dim, 10)

    def tokens(self, x, batch):
        t = self.embed(x).flatten(2).transpose(1, 2)
        return torch.cat([self.cls.expand(batch, -1, -1), t], 1) + self.pos

    def forward(self, x):
        return self.head(self.enc(self.tokens(x, x.shape[0]))[:, 0])


class BatchAsNumber(Encoder):
    def forward(self, x):
        return self.head(self.enc(self.tokens(x, len(x)))[:, 0])


def test_the_fused_attention_kernel_is_counted_as_the_operators_it_stands_for():
    model, x = Encoder().eval(), torch.zeros(1, 1, 8, 8)
    split = copy.deepcopy(model)
    split_mha(split)
    assert macs(model, x).dense == macs(split, x).dense > 2 * 17 * 32 * 32 * 4  # q, k, v and out of two layers at least


def test_torch_transformer_encoder_loses_channels_under_a_macs_budget():
    torch.manual_seed(0)
    pruned = edgeprune.prune(Encoder(), data_lib.load("digits"), method="structured", budget="macs<=50%", finetune=0,
                             criteria=["magnitude"], strategies=["balanced"])
    assert pruned.record["macs"] <= 0.5 * pruned.dense["macs"]
    assert pruned.record["speedup_b1"] > 0  # timed beside the input model's ONNX file


def test_a_forward_that_fixes_the_batch_is_refused_before_training(monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("trained before the model was refused")

    monkeypatch.setattr("edgeprune.runs.job.fit", no_training)
    with pytest.raises(ModelError, match=r"batch fixed at 2: .*len\(x\).*use x.shape\[0\]"):
        edgeprune.prune(BatchAsNumber(), data_lib.load("digits"), method="structured", budget="macs<=50%",
                        criteria=["magnitude"], strategies=["balanced"])


def _small_cnn():
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float64])
def test_a_model_in_another_precision_is_pruned_as_a_float32_copy(dtype):
    model = _small_cnn().to(dtype)
    with pytest.warns(UserWarning, match=f"are {str(dtype)[6:]}: a float32 copy is pruned"):
        pruned = edgeprune.prune(model, data_lib.load("digits"), method="structured", budget="macs<=50%", finetune=0,
                                 criteria=["magnitude"], strategies=["balanced"], deploy_metrics=False)
    assert pruned.record["macs"] <= 0.5 * pruned.dense["macs"]
    assert next(pruned.model.parameters()).dtype == torch.float32 and next(model.parameters()).dtype == dtype


class Stream(torch.utils.data.IterableDataset):
    def __init__(self, dataset):
        self.dataset = dataset

    def __iter__(self):
        return (self.dataset[i] for i in range(len(self.dataset)))


@pytest.mark.parametrize("method", ["mix_and_match", "structured"])
def test_training_data_without_a_length_needs_the_batches_of_an_epoch(method, monkeypatch):
    digits = data_lib.load("digits")
    val, test = (torch.utils.data.TensorDataset(*part.__getitems__(range(len(part)))) for part in (digits.val, digits.test))
    data = tuple(torch.utils.data.DataLoader(part, batch_size=64) for part in (Stream(digits.train), val, test))
    monkeypatch.setattr("edgeprune.runs.job.fit", lambda *a, **k: pytest.fail("trained before the data was refused"))
    with pytest.raises(edgeprune.errors.DataError, match=r"training data \(Stream\) has no len\(\).*max_batches"):
        edgeprune.prune(_small_cnn(), data, method=method)
    monkeypatch.undo()
    options = {"deploy_metrics": False} if method == "structured" else {}
    pruned = edgeprune.prune(_small_cnn(), data, method=method, finetune={"epochs": 1, "max_batches": 3},
                             criteria=["magnitude"], strategies=["balanced"], **options)
    assert pruned.record["epochs_run"] == 1


def _masked(conv, *amounts):
    for amount in amounts:  # pruned twice: a PruningContainer
        nn.utils.prune.l1_unstructured(conv, "weight", amount=amount)
    return conv


# how a user's weights are computed: (wrap of c1, wrap of c2, the kinds the warning names)
COMPUTED = {
    "parametrizations": (nn.utils.parametrizations.weight_norm, nn.utils.parametrizations.spectral_norm,
                         "WeightNorm", "SpectralNorm"),
    "old hooks": (nn.utils.weight_norm, nn.utils.spectral_norm, "WeightNorm", "SpectralNorm"),
    "nn.utils.prune masks": (lambda c: _masked(c, 0.3), lambda c: _masked(c, 0.2, 0.2),
                             "L1Unstructured", "PruningContainer"),
}


class Normed(nn.Module):
    """Convolutions whose weights are computed: torch's weight_norm / spectral_norm, new and old, or masks of
    torch.nn.utils.prune."""

    def __init__(self, how: str):
        super().__init__()
        wrap1, wrap2, _, _ = COMPUTED[how]
        self.c1 = wrap1(nn.Conv2d(1, 16, 3, padding=1))
        self.c2 = wrap2(nn.Conv2d(16, 32, 3, padding=1))
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        return self.fc(torch.relu(self.c2(torch.relu(self.c1(x)))).mean((2, 3)))


@pytest.mark.filterwarnings("ignore:.torch.nn.utils.weight_norm. is deprecated")
@pytest.mark.parametrize("how", sorted(COMPUTED))
@pytest.mark.parametrize("method", ["mix_and_match", "structured"])
def test_computed_weights_are_pruned_as_the_plain_weights_they_compute(method, how):
    torch.manual_seed(0)
    model = Normed(how).eval()
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        before = model(x)
    kinds = COMPUTED[how][2:]
    with pytest.warns(UserWarning, match=rf"computed by a parametrization \(c1 \({kinds[0]}\), c2 \({kinds[1]}\)\)"):
        pruned = edgeprune.prune(model, data_lib.load("digits"), method=method, finetune={"epochs": 1, "max_batches": 2},
                                 criteria=["magnitude"], strategies=["balanced"])
    assert pruned.record["epochs_run"] == 1
    assert not any(word in k for k in pruned.model.state_dict() for word in ("weight_g", "original", "weight_orig",
                                                                            "weight_mask"))
    with torch.no_grad():
        assert torch.equal(model(x), before)  # the user's model keeps what computes its weights


def test_validation_data_that_yields_nothing_is_refused_up_front():
    digits = data_lib.load("digits")
    few = torch.utils.data.Subset(digits.val, range(30))
    val = torch.utils.data.DataLoader(few, batch_size=64, drop_last=True)
    with pytest.raises(edgeprune.errors.DataError, match=r"validation data is empty.*drops the last batch, and its 30 "
                                                         r"items are fewer than its batch size 64"):
        edgeprune.prune(_small_cnn(), (digits.train, val, digits.test), finetune=0)


def test_a_plain_data_loader_over_edgeprunes_own_data_sets():
    digits = data_lib.load("digits")
    loader = torch.utils.data.DataLoader
    data = (loader(digits.train, batch_size=64, shuffle=True), loader(torch.utils.data.Subset(digits.val, range(100)),
                                                                      batch_size=50), loader(digits.test, batch_size=100))
    pruned = edgeprune.prune(_small_cnn(), data, finetune={"epochs": 1, "max_batches": 2}, criteria=["magnitude"],
                             strategies=["balanced"])
    assert pruned.record["epochs_run"] == 1 and x_of(next(iter(data[1]))).shape == (50, 1, 8, 8)


def x_of(batch):
    return batch[0]


class Hooked(nn.Module):
    """A feature hook that keeps what it sees on the model (Grad-CAM, feature extraction)."""

    def __init__(self):
        super().__init__()
        self.net = _small_cnn()
        self.seen = []
        self.net[2].register_forward_hook(lambda module, inputs, output: self.seen.append(output.shape))

    def forward(self, x):
        return self.net(x)


def test_a_model_with_forward_hooks_is_pruned_as_a_copy_without_them():
    model = Hooked()
    with pytest.warns(UserWarning, match=r"Hooked has forward hooks \(net.2\): the copies edgeprune prunes"):
        pruned = edgeprune.prune(model, data_lib.load("digits"), method="structured", budget="macs<=50%", finetune=0,
                                 criteria=["magnitude"], strategies=["balanced"])
    assert pruned.record["macs"] <= 0.5 * pruned.dense["macs"] and pruned.record["speedup_b1"] > 0
    assert not model.seen and len(model.net[2]._forward_hooks) == 1  # the user's model: its hook, never called by us


def test_images_without_a_channel_dimension():
    digits = data_lib.load("digits")
    x, y = digits.train.__getitems__(range(64))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x[:, 0], y), batch_size=32)
    with pytest.raises(ModelError, match=r"shape \(1, 8, 8\).*no channel dimension: yield x as \[B, 1, \.\.\.\] "
                                         r"\(x.unsqueeze\(1\)\)"):
        edgeprune.prune(_small_cnn(), (loader, loader))


class FlattenByNumber(nn.Module):
    """PyTorch's classic MNIST example, sized for 8x8 digits: ``x.view(-1, 20)`` flattens by a literal width."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 10, 3), nn.Conv2d(10, 20, 3)
        self.fc1, self.fc2 = nn.Linear(20, 50), nn.Linear(50, 10)

    def forward(self, x):
        x = torch.relu(torch.max_pool2d(self.conv1(x), 2))
        x = torch.relu(self.conv2(x)).view(-1, 20)
        return torch.log_softmax(self.fc2(torch.relu(self.fc1(x))), 1)


def test_a_flatten_by_a_literal_width_keeps_that_layer_whole_and_prunes_the_rest(tmp_path):
    with pytest.warns(UserWarning, match=r"output channels of conv2 kept whole: .*\[-1, 20\]"):
        result = edgeprune.sweep(FlattenByNumber(), data_lib.load("digits"), method="structured", finetune=0,
                                 criteria=["magnitude"], strategies=["balanced"], out=tmp_path / "run", progress=False)
    pruned = edgeprune.load(tmp_path / "run" / "chosen.pt", model=FlattenByNumber())
    widths = {n: m.weight.shape[0] for n, m in pruned.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    assert widths["conv2"] == 20 and widths["conv1"] < 10 and widths["fc1"] < 50 and widths["fc2"] == 10
    report = (tmp_path / "run" / "report.md").read_text()
    assert "could not thin:\n\n- output channels of conv2 kept whole: the model's own forward fails" in report, result


class FunctionalConv(nn.Module):
    """A convolution written as ``F.conv2d`` on a bare parameter: no conv layer owns it."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(32, 8, 3, 3) * 0.1)

    def forward(self, x):
        return torch.nn.functional.conv2d(x, self.weight, padding=1)


def test_a_macs_budget_out_of_reach_names_the_convolutions_no_layer_owns():
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), FunctionalConv(), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))
    assert macs(model, torch.zeros(1, 1, 8, 8)).fixed == {"2": 8 * 8 * 32 * 8 * 9}
    with pytest.raises(edgeprune.errors.ConfigError, match=r"cannot be met.*; 9\d% of the dense MACs are in parts channel "
                                                           r"pruning cannot thin: convolutions run outside any conv layer "
                                                           r"by '2' \(FunctionalConv\)"):
        edgeprune.prune(model, data_lib.load("digits"), method="structured", budget="macs<=50%", finetune=0,
                        criteria=["magnitude"], strategies=["balanced"], deploy_metrics=False)


class ConvGRU(nn.Module):
    """A CRNN as keyword spotters are written: 1-D convolutions over the rows of a digit, a bidirectional GRU over
    them in time."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv1d(8, 32, 3, padding=1), nn.ReLU(), nn.Conv1d(32, 32, 3, padding=1), nn.ReLU())
        self.rnn = nn.GRU(32, 16, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        h = self.conv(x[:, 0].transpose(1, 2))
        return self.fc(self.rnn(h.transpose(1, 2))[0][:, -1])


def _pruned_conv_gru():
    torch.manual_seed(0)
    return edgeprune.prune(ConvGRU(), data_lib.load("digits"), method="structured", budget="macs<=60%", finetune=0,
                           criteria=["magnitude"], strategies=["balanced"])


def test_a_conv_gru_loses_channels_up_to_its_recurrent_layer():
    """torch-pruning traces a CPU GRU gate by gate and failed on its splits: the whole model was refused."""
    pruned = _pruned_conv_gru()
    assert pruned.record["macs"] <= 0.6 * pruned.dense["macs"]
    assert pruned.model.rnn.input_size == pruned.model.conv[2].out_channels < 32
    assert pruned.model.rnn.hidden_size == 16


def test_a_pruned_conv_gru_loads_back_with_its_thinner_recurrent_input(tmp_path):
    """The checkpoint recorded the convolutions' widths but not the GRU's input_size: the loaded GRU kept 32 and
    its first call failed (input.size(-1) must be equal to input_size)."""
    pruned = _pruned_conv_gru()
    path = edgeprune.save(pruned, tmp_path / "crnn.pt")
    loaded = edgeprune.load(path, model=ConvGRU())
    x = torch.randn(3, 1, 8, 8)
    assert loaded.rnn.input_size == pruned.model.rnn.input_size
    torch.testing.assert_close(loaded(x), pruned.model.eval()(x))
    assert pruned.record["speedup_b1"] > 0  # its ONNX file timed beside the input model's


def test_a_macs_budget_out_of_reach_names_the_recurrent_layer():
    class Rows(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj, self.rnn, self.fc = nn.Linear(8, 16), nn.GRU(16, 32, batch_first=True), nn.Linear(32, 10)

        def forward(self, x):
            return self.fc(self.rnn(self.proj(x[:, 0]))[0][:, -1])

    with pytest.raises(edgeprune.errors.ConfigError, match=r"cannot be met: the smallest reachable macs is [\d,]+ against a "
                                                           r"limit of [\d,]+ .*; 9\d% of the dense MACs are in parts channel "
                                                           r"pruning cannot thin: the recurrent layer 'rnn' \(GRU\), whose "
                                                           r"hidden width is kept"):
        edgeprune.prune(Rows(), data_lib.load("digits"), method="structured", budget="macs<=50%", finetune=0,
                        criteria=["magnitude"], strategies=["balanced"], deploy_metrics=False)

"""Bad input to the public API: one-line errors naming the value and what is allowed; nothing written."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import edgeprune
from byom.mynet import build
from byom.userdata import loaders
from edgeprune.errors import ConfigError, DataError, EdgepruneError, ModelError


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


def test_unknown_method():
    with pytest.raises(ConfigError) as exc:
        edgeprune.prune(build(), loaders(), method="nope")
    assert "nope" in one_line(exc) and "mix_and_match" in str(exc.value)


@pytest.mark.parametrize("budget", [1.0, -0.1, "lots", True])
def test_budget_outside_the_range(budget):
    with pytest.raises(ConfigError) as exc:
        edgeprune.prune(build(), loaders(), method="magnitude", budget=budget)
    assert repr(budget) in one_line(exc) and "[0, 1)" in str(exc.value)


def test_unknown_method_option():
    with pytest.raises(ConfigError) as exc:
        edgeprune.prune(build(), loaders(), method="vbp", budget=0.5, colour="red")
    assert "colour" in one_line(exc)


def test_input_shape_the_model_rejects():
    x = torch.zeros(32, 3, 8, 8)  # three channels; MyNet takes one
    data = (DataLoader(TensorDataset(x, torch.zeros(32, dtype=torch.long)), 8),) * 2
    with pytest.raises(ModelError) as exc:
        edgeprune.prune(build(), data, method="magnitude", budget=0.5)
    assert "(1, 3, 8, 8)" in one_line(exc)


def test_labels_beyond_the_models_outputs():
    x, y = torch.zeros(32, 1, 8, 8), torch.arange(32) % 12  # MyNet has 10 outputs
    data = (DataLoader(TensorDataset(x, y), 16),) * 2
    with pytest.raises(DataError) as exc:
        edgeprune.prune(build(), data, method="magnitude", budget=0.5)
    assert "label 11" in one_line(exc) and "0 to 9" in str(exc.value)


def test_a_single_sigmoid_logit_for_two_classes_is_told_what_head_to_give():
    x, y = torch.zeros(32, 1, 8, 8), torch.arange(32) % 2
    data = (DataLoader(TensorDataset(x, y), 16),) * 2
    with pytest.raises(DataError) as exc:
        edgeprune.prune(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 1)), data, method="magnitude", budget=0.5)
    assert "label 1" in one_line(exc) and "a single sigmoid logit needs a head of 2 outputs" in str(exc.value)


def test_images_of_another_dtype_than_the_model():
    x, y = torch.zeros(32, 1, 8, 8, dtype=torch.float64), torch.zeros(32, dtype=torch.long)
    data = (DataLoader(TensorDataset(x, y), 16),) * 2
    with pytest.raises(ModelError) as exc:
        edgeprune.prune(build(), data, method="magnitude", budget=0.5)
    assert "x is float64 and the model's parameters float32" in one_line(exc)


@pytest.mark.parametrize("how", ["script", "trace"])
def test_a_torchscript_module(how):
    # scripted: a multi-line RuntimeError from deepcopy; traced: "no prunable layer", which hid the reason
    model = build().eval()
    compiled = torch.jit.script(model) if how == "script" else torch.jit.trace(model, torch.zeros(1, 1, 8, 8))
    with pytest.raises(ModelError) as exc:
        edgeprune.prune(compiled, loaders(), method="mix_and_match")
    assert "TorchScript" in one_line(exc) and "nn.Module it was made from" in str(exc.value)


def test_a_torch_export_program():
    exported = torch.export.export(build().eval(), (torch.zeros(2, 1, 8, 8),))
    with pytest.raises(ModelError) as exc:
        edgeprune.prune(exported, loaders(), method="mix_and_match")
    assert "ExportedProgram" in one_line(exc) and "nn.Module it was exported from" in str(exc.value)


@pytest.mark.parametrize("method", ["mix_and_match", "structured", "snip", "reconvene"])
def test_a_model_frozen_for_inference(method):
    # every parameter requires_grad=False: "optimizer got an empty parameter list" for snip, grasp and reconvene,
    # and no prunable channel for structured (frozen layers are fixed computation, like YOLO's DFL conv)
    model = build().requires_grad_(False)
    with pytest.raises(ModelError) as exc:
        edgeprune.prune(model, loaders(), method=method)
    assert "requires_grad=False" in one_line(exc) and "model.requires_grad_(True)" in str(exc.value)


class AuxHead(torch.nn.Module):
    """Inception-v3's shape of trouble: an auxiliary head, run only in training, whose 5x5 kernel needs a
    feature map larger than small images give."""

    def __init__(self):
        super().__init__()
        self.body, self.aux = torch.nn.Conv2d(3, 4, 3, stride=2), torch.nn.Conv2d(4, 2, 5)
        self.head = torch.nn.Linear(4, 2)

    def forward(self, x):
        features = self.body(x)
        logits = self.head(features.mean((2, 3)))
        return (logits, self.aux(features).mean((2, 3))) if self.training else logits


def test_an_input_the_model_rejects_only_in_training_mode():
    data = tuple(DataLoader(TensorDataset(torch.zeros(16, 3, 8, 8), torch.zeros(16, dtype=torch.long)), 8) for _ in "tv")
    with pytest.raises(ModelError) as exc:
        edgeprune.prune(AuxHead(), data, method="magnitude", budget=0.5)
    assert "AuxHead rejects a training batch of shape (2, 3, 8, 8) in training mode" in one_line(exc)
    assert "Kernel size can't be greater than actual input size" in str(exc.value)
    edgeprune.prune(AuxHead(), tuple(DataLoader(TensorDataset(torch.zeros(16, 3, 16, 16), torch.zeros(16, dtype=torch.long)), 8)
                                     for _ in "tv"), method="magnitude", budget=0.5, finetune=0)


def test_batches_that_are_not_pairs():
    data = (DataLoader(torch.zeros(16, 1, 8, 8), 8),) * 2
    with pytest.raises(DataError) as exc:
        edgeprune.prune(build(), data, method="magnitude", budget=0.5)
    one_line(exc)


def test_not_a_module():
    with pytest.raises(ConfigError) as exc:
        edgeprune.prune({"weights": 1}, loaders(), method="magnitude")
    assert "dict" in one_line(exc)


def test_sweep_into_a_run_of_another_method(tmp_path):
    model, data = build(), loaders()
    edgeprune.sweep(model, data, method="magnitude", budgets=[0.5], out=tmp_path, finetune=0, progress=False)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(EdgepruneError) as exc:
        edgeprune.sweep(model, data, method="random", budgets=[0.5], out=tmp_path, finetune=0, progress=False)
    assert "'magnitude'" in one_line(exc) and "'random'" in str(exc.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == before

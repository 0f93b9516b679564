"""Reconstruction after structural removal and data without labels (issue 30), on a CNN trained on real digits."""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import edgeprune
from edgeprune import data as data_lib
from edgeprune import models
from edgeprune.errors import ConfigError, DataError, ModelError
from edgeprune.methods.vbp import collect_statistics, find_mlp_blocks, prune_with_statistics
from edgeprune.runs import unlabelled
from edgeprune.surgery.ratios import prune_channels
from edgeprune.surgery.reconstruct import reconstruct
from edgeprune.surgery.structure import plan
from edgeprune.tasks import Classification
from edgeprune.train import default_config, fit
from helpers import assert_one_line_error

FAST = dict(criteria=["magnitude"], strategies=["balanced"], deploy_metrics=False, latency_aware=False)


@pytest.fixture(scope="module")
def digits():
    return data_lib.load("digits", seed=0)


@pytest.fixture(scope="module")
def trained(digits):
    torch.manual_seed(0)
    model = models.create("resnet20", num_classes=10, in_channels=1, image_size=8, width_mult=0.5)
    fit(model, digits.train, digits.val, default_config("cnn").replace(epochs=6, batch_size=64))
    return model.eval()


def _inputs(digits, n=256):
    return torch.stack([digits.train[i][0] for i in range(n)])


def _quietly(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kw)


def test_every_refitted_layer_moves_toward_the_dense_outputs(trained, digits):
    x = _inputs(digits)
    pruned = copy.deepcopy(trained)
    structure = plan(pruned, x[:1])
    widths = prune_channels(pruned, x[:1], structure, {n: 0.5 for g in structure.groups for n in g})
    held_out = torch.stack([digits.val[i][0] for i in range(128)])
    with torch.no_grad():
        dense = trained(held_out)
        before = float(((pruned(held_out) - dense) ** 2).mean())
    fits = reconstruct(pruned, trained, widths.removed, x.split(64))
    with torch.no_grad():
        after = float(((pruned(held_out) - dense) ** 2).mean())
    assert fits and all(f.after < f.before for f in fits)
    assert {f.name for f in fits} <= {n for n, r in widths.removed.items() if r["in"]}
    assert after < 0.5 * before  # on images the fit never saw


def test_vbp_reconstruction_refits_the_mlp_output_beyond_the_mean_shift():
    torch.manual_seed(0)
    vit = models.create("vit", num_classes=10, in_channels=1, image_size=16).eval()
    x = torch.randn(128, 1, 16, 16)
    stats = collect_statistics(vit, [(x, None)], blocks=find_mlp_blocks(vit, x[:1]), example_input=x[:1])
    shifted, info = prune_with_statistics(vit, stats, 0.5)
    refitted = copy.deepcopy(shifted)
    fits = reconstruct(refitted, vit, info.removed(), x.split(32))
    assert {f.name for f in fits} == {b.mlp_out for b in info.blocks.values()}
    test = torch.randn(64, 1, 16, 16)
    with torch.no_grad():
        dense = vit(test)
        assert ((refitted(test) - dense) ** 2).mean() < ((shifted(test) - dense) ** 2).mean()


def test_the_public_call_with_reconstruction_keeps_more_accuracy_and_saves_back(trained, digits, tmp_path):
    plain = _quietly(edgeprune.prune, trained, digits, method="structured", budget="macs<=50%", finetune=0,
                     reconstruct=False, **FAST)
    fitted = _quietly(edgeprune.prune, trained, digits, method="structured", budget="macs<=50%", finetune=0,
                      reconstruct=True, **FAST)
    decided = fitted.decided["reconstruction"]
    assert decided["layers"] > 0 and decided["median_error_after"] < decided["median_error_before"]
    assert "reconstruction" not in plain.decided
    assert fitted.record["val_acc"] > plain.record["val_acc"]
    path = edgeprune.save(fitted, tmp_path / "fitted.pt")
    back = edgeprune.load(path, model=models.create("resnet20", num_classes=10, in_channels=1, image_size=8,
                                                     width_mult=0.5))
    x = _inputs(digits, 8)
    assert torch.allclose(back.eval()(x), fitted.model.eval()(x), atol=1e-5)


def test_removed_blocks_are_reconstructed_by_refitting_the_layers_after_them(trained, digits, tmp_path):
    kw = dict(method="structured", budget="macs<=90%", finetune=0, drop_blocks=[3], **FAST)
    plain = _quietly(edgeprune.prune, trained, digits, reconstruct=False, **kw)
    fitted = _quietly(edgeprune.prune, trained, digits, reconstruct=True, **kw)
    assert fitted.decided["reconstruction"]["layers"] > 3  # more than the consumers of removed channels
    assert fitted.record["val_acc"] > plain.record["val_acc"] + 0.05
    back = edgeprune.load(edgeprune.save(fitted, tmp_path / "shallow.pt"),
                          model=models.create("resnet20", num_classes=10, in_channels=1, image_size=8, width_mult=0.5))
    x = _inputs(digits, 8)
    assert torch.allclose(back.eval()(x), fitted.model.eval()(x), atol=1e-5)


@pytest.mark.parametrize("form", ["tensor", "loader"])
def test_inputs_without_labels_are_labelled_by_the_model_and_scored_on_agreement(trained, digits, form):
    x = _inputs(digits, 300)
    data = x if form == "tensor" else DataLoader(TensorDataset(x), batch_size=50)
    pruned = _quietly(edgeprune.prune, trained, data, method="structured", budget="macs<=50%", finetune=1, **FAST)
    record = pruned.record
    assert record["metric"] == "agree" and 0.0 < record["val_agree"] <= 1.0
    assert "test_acc" not in record and "val_acc" not in record
    assert pruned.decided["reconstruction"]["layers"] > 0  # on by default without labels
    assert Classification().primary(pruned.model, digits.test) > 0.5  # measured against the truth


def test_labelled_loaders_are_not_taken_for_unlabelled(digits):
    x = _inputs(digits, 20)
    assert not unlabelled.is_unlabelled(DataLoader(TensorDataset(x, torch.zeros(20, dtype=torch.long)), batch_size=5))
    assert not unlabelled.is_unlabelled(digits) and not unlabelled.is_unlabelled("digits")
    assert unlabelled.is_unlabelled(None) and unlabelled.is_unlabelled(TensorDataset(x))


def test_data_free_synthesises_inputs_from_batch_norm(trained, monkeypatch):
    monkeypatch.setattr(unlabelled, "SYNTHESISED", 64)
    pruned = _quietly(edgeprune.prune, trained, None, method="structured", budget="macs<=50%", finetune=0,
                      example_input=torch.zeros(1, 1, 8, 8), **FAST)
    assert pruned.record["metric"] == "agree" and pruned.decided["reconstruction"]["layers"] > 0
    assert "synthesised" in edgeprune.runs.inputs.describe_data(_data_of(trained, monkeypatch))["name"]


def _data_of(model, monkeypatch):
    monkeypatch.setattr(unlabelled, "SYNTHESISED", 16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return unlabelled.labelled_by_model(model, None, Classification(), torch.zeros(1, 1, 8, 8))[0]


def test_bad_unlabelled_input_is_one_line_before_any_work(trained, digits):
    x = _inputs(digits, 30)
    with pytest.raises(ConfigError, match="trained model"):
        edgeprune.prune("resnet20", x, method="structured", finetune=0)
    with pytest.raises(DataError, match="at least 10"):
        edgeprune.prune(trained, x[:5], method="structured", finetune=0)
    with pytest.raises(ModelError, match="no BatchNorm"):
        edgeprune.prune(models.create("vit", num_classes=10, in_channels=1, image_size=8), None, method="vbp",
                        example_input=torch.zeros(1, 1, 8, 8), finetune=0)
    with pytest.raises(ConfigError, match="example_input"):
        edgeprune.prune(torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4)), None, finetune=0)
    with pytest.raises(ModelError, match="cannot label"):
        unlabelled.labelled_by_model(trained, x, edgeprune.tasks.Detection())


def test_the_shell_prunes_a_checkpoint_from_a_saved_tensor_of_images(trained, digits, tmp_path, run_cli):
    checkpoint = edgeprune.save(trained, tmp_path / "trained.pt")
    images = tmp_path / "device_images.pt"
    torch.save(_inputs(digits, 200), images)
    out = tmp_path / "run"
    flags = ("--budget", "macs<=50%", "--finetune", "0", "-O", "criteria=[magnitude]", "-O", "strategies=[balanced]",
             "-O", "deploy_metrics=false", "--quiet")
    code, _, err = run_cli("prune", "structured", "--model", "resnet20", "--checkpoint", checkpoint, "--dataset",
                           f"unlabelled:{images}", "--out", out, *flags)
    assert code == 0, err
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    pruned = [r for r in records if r.get("kind") != "dense" and r.get("status") == "ok"]
    assert pruned and all(r["metric"] == "agree" and r["decided"]["reconstruction"]["layers"] > 0 for r in pruned)
    code, _, err = run_cli("prune", "structured", "--model", "resnet20", "--dataset", f"unlabelled:{images}",
                           "--out", tmp_path / "untrained", *flags)
    assert_one_line_error(code, err, "--checkpoint")
    assert not (tmp_path / "untrained").exists()


@pytest.mark.long  # the guide's default calls: thirty candidates, each exported and timed (a CPU-minute)
def test_the_few_shot_guide_example_runs(monkeypatch):
    text = (Path(__file__).resolve().parents[1] / "docs" / "few_shot.md").read_text()
    example = text.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.setattr(unlabelled, "SYNTHESISED", 32)  # the guide's data-free call, at a test's size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(example, "docs/few_shot.md", "exec"), {})


def test_without_new_biases_the_parameter_count_stays(trained, digits):
    x = _inputs(digits)
    pruned = copy.deepcopy(trained)
    structure = plan(pruned, x[:1])
    widths = prune_channels(pruned, x[:1], structure, {n: 0.5 for g in structure.groups for n in g})
    params = sum(p.numel() for p in pruned.parameters())
    fits = reconstruct(pruned, trained, widths.removed, x.split(64), new_bias=False)
    assert sum(p.numel() for p in pruned.parameters()) == params  # what a size or params budget measured
    assert fits and all(f.after < f.before for f in fits)


def test_unlabelled_inputs_with_a_labelled_validation_set_are_scored_on_the_truth(trained, digits):
    pruned = _quietly(edgeprune.prune, trained, (_inputs(digits, 300), digits.val, digits.test), method="structured",
                      budget="macs<=50%", finetune=1, **FAST)
    record = pruned.record
    assert "val_acc" in record and "test_acc" in record and "val_agree" not in record
    assert pruned.decided["reconstruction"]["layers"] > 0  # the training inputs have no labels: on by default
    assert abs(record["test_acc"] - Classification().primary(pruned.model, digits.test)) < 1e-6


def test_a_segmenter_prunes_on_unlabelled_inputs_scored_on_mask_agreement():
    torch.manual_seed(0)
    segmenter = models.create("unet-tiny", num_classes=4, in_channels=1, image_size=16).eval()
    pruned = _quietly(edgeprune.prune, segmenter, torch.randn(40, 1, 16, 16), task="segmentation", method="structured",
                      budget="macs<=50%", finetune=0, **FAST)
    assert pruned.record["metric"] == "agree_miou" and 0.0 <= pruned.record["val_agree_miou"] <= 1.0
    assert pruned.decided["reconstruction"]["layers"] > 0

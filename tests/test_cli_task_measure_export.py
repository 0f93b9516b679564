"""`edgeprune measure` and `edgeprune export` take the task: a U-Net on real mnist-seg canvases reports mIoU and pixel
accuracy (measure with the mIoU interval; export in PyTorch, ONNX Runtime, ExecuTorch and OpenVINO, FP32 and INT8, in
export.json), a regression task of a user's own (`--task file.py:factory`) reports MSE and MAE, a detector's runtime
metrics are said not to be measured; a data set that does not fit is one line naming both sides (1-D models
included); a classifier's lines and export.json are as before."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

from edgeprune import data as data_lib
from edgeprune import models, tasks
from edgeprune.report.metric import Metric

SEG = "mnist-seg:size=32,n=64,test=32"
QUICK = ["--runs", "2", "--batch", "1"]
HAS_EXECUTORCH = importlib.util.find_spec("executorch") is not None
HAS_OPENVINO = importlib.util.find_spec("openvino") is not None


@pytest.fixture(scope="module")
def unet(tmp_path_factory) -> Path:
    """An untrained unet-tiny for 11 classes (background, 0..9) of 1x32x32 canvases."""
    return models.save(models.create("unet-tiny", num_classes=11, in_channels=1, image_size=32),
                       tmp_path_factory.mktemp("unet") / "unet.pt")


@pytest.fixture(scope="module")
def lenet(tmp_path_factory) -> Path:
    return models.save(models.create("lenet5", num_classes=10, in_channels=1, image_size=8),
                       tmp_path_factory.mktemp("lenet") / "lenet.pt")


@pytest.fixture(autouse=True)
def wide(monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # table cells on one line each


def assert_one_line(code: int, err: str, *needles: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (code, err)
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_measure_and_export_declare_prunes_task_option():
    from edgeprune.cli import load_commands

    prune = load_commands("prune")["prune"]  # a group: one command per method
    commands = {**load_commands("basics"), **load_commands("deploy"), **prune.commands}
    names = ("measure", "export", *prune.commands)
    helps = {name: next(p.help for p in commands[name].params if "--task" in p.opts) for name in names}
    assert len(set(helps.values())) == 1 and "file.py:factory" in helps["vbp"]


def test_measure_prints_every_segmentation_metric_the_primary_first_with_its_interval(run_cli, mnist_root, unet):
    code, out, err = run_cli("measure", unet, "--dataset", SEG, "--data-dir", mnist_root, *QUICK)
    assert code == 0, err
    splits = data_lib.load(SEG, root=mnist_root)
    expected = tasks.Segmentation().evaluate(models.load(unet), splits.test)
    assert "segmentation (mIoU, higher is better) on 32 test images" in out
    miou = next(line for line in out.splitlines() if "test mIoU (mnist-seg)" in line)
    assert Metric("miou").text(expected["miou"]) in miou and "95% interval" in miou
    assert Metric("pixel_acc").text(expected["pixel_acc"]) in out
    assert out.index("test mIoU") < out.index("test pixel accuracy") and "test accuracy" not in out
    assert "MACs / image (dense)" in out  # timed and counted on the model's 1x32x32 input


@pytest.mark.slow
def test_export_records_the_task_metrics_in_onnx_runtime_fp32_and_int8(run_cli, tmp_path, mnist_root, unet):
    out = tmp_path / "onnx"
    code, stdout, err = run_cli("export", unet, "-o", out, "--dataset", SEG, "--data-dir", mnist_root, "--int8", "static",
                                "--calib-batches", "2")
    assert code == 0, err
    record = json.loads((out / "export.json").read_text())
    metrics = record["metrics"]
    assert (metrics["task"], metrics["metric"], metrics["images"]) == ("segmentation", "miou", 32)
    assert "accuracy" not in record  # top-1 is a classifier's figure
    torch_, ort = metrics["fp32_torch"], metrics["fp32_ort"]
    assert set(torch_) == set(ort) == set(metrics["int8_ort"]) == {"miou", "pixel_acc"}
    assert all(abs(torch_[k] - ort[k]) < 1e-3 for k in torch_), (torch_, ort)  # FP32 logits agree to ~1e-5
    lo, hi = metrics["fp32_torch_interval"]
    assert lo <= torch_["miou"] <= hi
    assert all(0 <= v <= 1 for v in metrics["int8_ort"].values())
    assert "test mIoU FP32 (torch)" in stdout and "test mIoU FP32 / INT8 (ORT)" in stdout


@pytest.mark.slow
@pytest.mark.skipif(not HAS_EXECUTORCH, reason="executorch (the [edge] extra) is not installed")
def test_export_records_the_task_metrics_in_executorch(run_cli, tmp_path, mnist_root, unet):
    out = tmp_path / "et"
    code, stdout, err = run_cli("export", unet, "-o", out, "--format", "executorch", "--dataset", SEG,
                                "--data-dir", mnist_root)
    assert code == 0, err
    metrics = json.loads((out / "export.json").read_text())["metrics"]
    torch_, et = metrics["fp32_torch"], metrics["fp32_executorch"]
    assert set(et) == {"miou", "pixel_acc"} and all(abs(torch_[k] - et[k]) < 1e-3 for k in torch_), (torch_, et)
    assert "test mIoU FP32 (ExecuTorch)" in stdout


@pytest.mark.slow
@pytest.mark.skipif(not HAS_OPENVINO, reason="openvino (the [openvino] extra) is not installed")
def test_export_records_the_task_metrics_in_openvino(run_cli, tmp_path, mnist_root, unet):
    out = tmp_path / "ov"
    code, stdout, err = run_cli("export", unet, "-o", out, "--format", "openvino", "--dataset", SEG,
                                "--data-dir", mnist_root, "--int8", "static", "--calib-batches", "2")
    assert code == 0, err
    metrics = json.loads((out / "export.json").read_text())["metrics"]
    torch_, ov = metrics["fp32_torch"], metrics["fp32_openvino"]
    assert set(ov) == set(metrics["int8_openvino"]) == {"miou", "pixel_acc"}
    assert all(abs(torch_[k] - ov[k]) < 1e-3 for k in torch_), (torch_, ov)
    assert "test mIoU FP32 / INT8 (OpenVINO)" in stdout


def test_a_data_set_of_another_size_is_one_line_naming_both_sides(run_cli, tmp_path, mnist_root, unet):
    other = "mnist-seg:size=64,n=16,test=8"
    assert_one_line(*run_cli("measure", unet, "--dataset", other, "--data-dir", mnist_root, *QUICK)[::2],
                    "11 classes of 1x64x64", "11 classes of 1x32x32", "unet.pt")
    code, _, err = run_cli("export", unet, "-o", tmp_path / "x", "--dataset", other, "--data-dir", mnist_root)
    assert_one_line(code, err, "1x64x64", "1x32x32")
    assert not (tmp_path / "x").exists()


def test_a_task_that_does_not_fit_the_data_is_one_line(run_cli, tmp_path, mnist_root, unet, lenet):
    assert_one_line(*run_cli("measure", unet, "--dataset", SEG, "--data-dir", mnist_root, "--task", "nonsense")[::2],
                    "nonsense", "segmentation")
    # class labels are not regression targets, masks are not class labels: refused before anything is measured
    assert_one_line(*run_cli("measure", lenet, "--dataset", "digits", "--task", "regression", *QUICK)[::2],
                    "regression expects float targets")
    code, _, err = run_cli("export", unet, "-o", tmp_path / "x", "--dataset", SEG, "--data-dir", mnist_root,
                           "--task", "classification")
    assert_one_line(code, err, "test data yields labels", "pass task=")
    assert not (tmp_path / "x").exists()


def test_a_one_d_model_is_timed_on_its_own_input_and_refuses_images(run_cli, tmp_path):
    path = models.save(models.create("kws-cnn1d", num_classes=10, in_channels=1, image_size=40), tmp_path / "kws.pt")
    code, out, err = run_cli("measure", path, *QUICK)
    assert code == 0 and "latency batch 1" in out, err
    assert_one_line(*run_cli("measure", path, "--dataset", "digits", *QUICK)[::2], "1x8x8 inputs", "1x40 inputs")


REGRESSION_TASK = """import torch.nn.functional as F

from edgeprune.tasks import Regression


class OneHot(Regression):
    name = "one-hot"

    def check_target(self, x, y, what):  # the class label as a one-hot float target: MSE is the Brier score
        return super().check_target(x, F.one_hot(y, 10).float() if not y.is_floating_point() else y, what)


def build():
    return OneHot()
"""


def test_a_users_regression_task_reports_mse_and_mae_in_torch_and_onnx_runtime(run_cli, tmp_path, lenet):
    (tmp_path / "onehot.py").write_text(REGRESSION_TASK)
    task = f"{tmp_path / 'onehot.py'}:build"
    code, out, err = run_cli("measure", lenet, "--dataset", "digits", "--task", task, *QUICK)
    assert code == 0, err
    assert "one-hot (MSE, lower is better)" in out and out.index("test MSE (digits)") < out.index("test MAE (digits)")
    code, out, err = run_cli("export", lenet, "-o", tmp_path / "out", "--dataset", "digits", "--task", task)
    assert code == 0, err
    metrics = json.loads((tmp_path / "out" / "export.json").read_text())["metrics"]
    assert (metrics["task"], metrics["metric"], metrics["higher_is_better"]) == ("one-hot", "mse", False)
    assert math.isclose(metrics["fp32_ort"]["mse"], metrics["fp32_torch"]["mse"], rel_tol=1e-4)
    assert "test MSE FP32 (ORT)" in out


def test_a_classifier_keeps_its_accuracy_lines_and_block(run_cli, tmp_path, lenet):
    code, out, err = run_cli("measure", lenet, "--dataset", "digits", *QUICK)
    assert code == 0 and "test accuracy (digits)" in out and "task" not in out and "interval" not in out, err
    code, out, err = run_cli("export", lenet, "-o", tmp_path / "out", "--dataset", "digits")
    assert code == 0, err
    record = json.loads((tmp_path / "out" / "export.json").read_text())
    assert "metrics" not in record and set(record["accuracy"]) == {"dataset", "split", "images", "fp32_torch", "fp32_ort"}
    assert "test top-1 FP32 (torch)" in out and "test top-1 FP32 (ORT)" in out and "mIoU" not in out


@pytest.mark.slow
def test_a_detector_reports_map_in_torch_and_says_its_runtime_metrics_are_not_measured(run_cli, tmp_path, mnist_root):
    spec = "mnist-det:size=64,n=32,test=8"
    path = models.save(models.create("torchvision:ssdlite320_mobilenet_v3_large", num_classes=11, in_channels=1,
                                     image_size=64), tmp_path / "ssd.pt")
    code, out, err = run_cli("measure", path, "--dataset", spec, "--data-dir", mnist_root, *QUICK)
    assert code == 0 and "test mAP@[.5:.95] (mnist-det)" in out and "test mAP@.5 (mnist-det)" in out, err
    code, out, err = run_cli("export", path, "-o", tmp_path / "out", "--dataset", spec, "--data-dir", mnist_root)
    assert code == 0, err
    metrics = json.loads((tmp_path / "out" / "export.json").read_text())["metrics"]
    assert set(metrics["fp32_torch"]) == {"map", "map50", "map75"} and "fp32_ort" not in metrics
    assert "dense part only" in metrics["runtimes"] and "test metrics in the runtimes" in out

"""``edgeprune.export``: the export pipeline from Python (the CLI's ``export`` is this call). A model pruned by
``edgeprune.prune`` goes to ONNX and ExecuTorch with static INT8, parity and accuracy in every runtime; a run
directory's candidate is picked; bad values are refused in one line before anything is written."""

import json
import subprocess
import sys

import pytest
from torch import nn

import edgeprune
from edgeprune import data, models, train
from edgeprune.errors import ConfigError, DataError, ModelError
from edgeprune.utils.io import append_jsonl


@pytest.fixture(scope="module")
def pruned():
    splits = data.load("digits")
    model = models.create("lenet300", num_classes=10, in_channels=1, image_size=8)
    train.fit(model, splits.train, splits.val, train.TrainConfig(epochs=5, lr=0.05))
    return edgeprune.prune(model, splits, method="magnitude", budget=0.5, finetune=0)


@pytest.mark.slow
def test_a_pruned_model_to_onnx_and_executorch_with_static_int8(pruned, tmp_path):
    pytest.importorskip("executorch")
    result = edgeprune.export(pruned, tmp_path / "out", formats=("onnx", "executorch"), int8="static", data="digits",
                              calib_batches=2, latency=False)
    record = json.loads((tmp_path / "out" / "export.json").read_text())
    assert result.record == record and record["formats"] == ["onnx", "executorch"]
    assert set(result.paths) == {"model.onnx", "model.int8.onnx", "model.pte", "model.int8.pte", "export.json"}
    assert all(path.is_file() for path in result.paths.values())
    assert result.parity["max_abs_diff"] <= result.parity["tolerance"] and "digits test split" in result.parity["inputs"]
    acc, images = result.accuracy, result.accuracy["images"]
    assert acc["fp32_torch"] == pytest.approx(pruned.record["test_acc"], abs=1 / images)  # the model prune measured
    assert acc["fp32_ort"] == pytest.approx(acc["fp32_torch"], abs=1 / images)
    assert acc["fp32_executorch"] == pytest.approx(acc["fp32_torch"], abs=1 / images)
    assert acc["fp32_torch"] > 0.5 and acc["int8_ort"] > 0.5 and acc["int8_executorch"] > 0.5, acc  # chance: 0.1
    assert record["source"] is None and "latency" not in record
    assert result.title == "export LeNet300 (in memory)" and ["written", str(result.paths["export.json"])] in result.rows


def test_a_run_directory_candidate_with_the_sparse_artifact(tmp_path):
    run = tmp_path / "run"
    for cid in ("a", "b"):
        models.save(models.create("lenet300", num_classes=10, in_channels=1, image_size=8), run / f"{cid}.pt",
                    meta={"dataset": "digits"})
        append_jsonl(run / "results.jsonl", {"id": cid, "checkpoint": f"{cid}.pt", "chosen": cid == "a"})
    result = edgeprune.export(run, tmp_path / "out", candidate="b", sparse=True, batch=4)
    assert result.record["candidate"] == "b" and result.record["checkpoint"] == str(run / "b.pt")
    assert result.record["onnx"]["batch"] == 4 and result.record["sparse"]["values"] == "fp32"
    assert result.record["accuracy"]["fp32_ort"] == pytest.approx(result.record["accuracy"]["fp32_torch"], abs=1e-6)
    assert result.paths["model.epz"].stat().st_size == result.record["sparse"]["bytes"]
    assert edgeprune.export(run, tmp_path / "chosen").record["candidate"] == "a"


@pytest.mark.parametrize(
    "options,error,needles",
    [
        ({"formats": ("onnx", "tflite")}, ConfigError, ["'tflite'", "onnx, executorch"]),
        ({"formats": "all"}, ConfigError, ["'all'", "onnx, executorch, openvino, litert, both"]),
        ({"int8": "int4"}, ConfigError, ["'int4'", "static, dynamic"]),
        ({"sparse": "fp8"}, ConfigError, ["'fp8'", "fp32, fp16, int8"]),
        ({"opset": 11}, ConfigError, ["opset 11", "18..23"]),
        ({"batch": 0}, ConfigError, ["batch", "> 0"]),
        ({"tolerance": "tight"}, ConfigError, ["'tight'", "> 0"]),
        ({"calib_batches": 2.5}, ConfigError, ["--calib-batches", "2.5"]),
        ({"task": "translation"}, ConfigError, ["translation", "classification"]),
        ({"candidate": "a1"}, ConfigError, ["candidate=", "LeNet300", "run directory"]),
        ({"data": "no-such-set"}, ConfigError, ["no-such-set", "digits"]),
        ({"data": "mnist", "data_dir": "/nowhere"}, DataError, ["nowhere"]),
        ({"data": "cifar10:x"}, ConfigError, ["cifar10"]),
    ],
)
def test_bad_values_are_refused_before_anything_is_written(tmp_path, options, error, needles):
    model = models.create("lenet300", num_classes=10, in_channels=1, image_size=8)
    with pytest.raises(error) as info:
        edgeprune.export(model, tmp_path / "out", **options)
    message = str(info.value)
    assert "\n" not in message and all(needle in message for needle in needles), message
    assert not (tmp_path / "out").exists()


def test_what_cannot_be_exported_is_refused_in_one_line(tmp_path):
    with pytest.raises(ConfigError, match="export takes an nn.Module.*got int"):
        edgeprune.export(3, tmp_path / "out")
    with pytest.raises(ConfigError, match="does not exist"):
        edgeprune.export(tmp_path / "missing.pt", tmp_path / "out")
    with pytest.raises(ModelError, match=r"Linear is a model of your own class: pass data=.*or input_shape="):
        edgeprune.export(nn.Linear(64, 10), tmp_path / "out")  # a module of the user's own: its input size is unknown
    for bad in ((0, 8), "1x8x8", (1.5, 8)):
        with pytest.raises(ConfigError, match="input_shape must be one input's shape"):
            edgeprune.export(nn.Linear(64, 10), tmp_path / "out", input_shape=bad)
    with pytest.raises(ConfigError, match="--int8 static needs calibration data"):
        edgeprune.export(models.create("lenet300", num_classes=10, in_channels=1, image_size=8), tmp_path / "out",
                         int8="static")
    assert not (tmp_path / "out").exists()


class Crnn(nn.Module):
    """A model of the user's own class: 1-D convolutions over the rows of a digit, a GRU over them."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv1d(8, 32, 3, padding=1), nn.ReLU())
        self.rnn = nn.GRU(32, 16, batch_first=True)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        return self.fc(self.rnn(self.conv(x[:, 0].transpose(1, 2)).transpose(1, 2))[0][:, -1])


@pytest.mark.slow
def test_a_pruned_model_of_the_users_own_class_exports_with_its_datas_shape(tmp_path):
    """Was refused: "Crnn has no edgeprune_build; ... pass input_shape=", an argument export did not have."""
    splits = data.load("digits")
    model = Crnn()
    train.fit(model, splits.train, splits.val, train.TrainConfig(epochs=3, lr=0.01, optimizer="adam"))
    pruned = edgeprune.prune(model, splits, method="structured", budget="macs<=70%", finetune=0,
                             criteria=["magnitude"], strategies=["balanced"])
    result = edgeprune.export(pruned, tmp_path / "out", data="digits", latency=False)
    assert result.record["model"].endswith("Crnn") and result.record["build"]["input_shape"] == [1, 8, 8]
    assert result.parity["max_abs_diff"] <= result.parity["tolerance"]
    acc, images = result.accuracy, result.accuracy["images"]
    assert acc["fp32_torch"] == pytest.approx(pruned.record["test_acc"], abs=1 / images) and acc["fp32_torch"] > 0.3
    assert acc["fp32_ort"] == pytest.approx(acc["fp32_torch"], abs=1 / images)
    assert not hasattr(pruned.model, "edgeprune_build")  # the build is on a copy
    without_data = edgeprune.export(pruned.model, tmp_path / "shape", input_shape=(1, 8, 8), latency=False)
    assert without_data.parity["max_abs_diff"] <= without_data.parity["tolerance"]
    saved = edgeprune.save(pruned, tmp_path / "crnn.pt")  # from a file, the class must be rebuilt: say how, in Python too
    with pytest.raises(ConfigError, match="own class Crnn; pass --model .*model_spec= and model_args= from Python"):
        edgeprune.export(saved, tmp_path / "file")


@pytest.mark.slow
def test_the_function_is_reachable_after_its_subpackage_is_imported():
    code = ("import edgeprune.export.onnx, edgeprune, edgeprune.api\n"
            "from edgeprune import export\n"
            "assert export is edgeprune.export is edgeprune.api.export, edgeprune.export\n"
            "from edgeprune.export import sparse  # the subpackage still imports\n")
    subprocess.run([sys.executable, "-c", code], check=True)

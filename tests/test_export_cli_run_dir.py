"""``edgeprune export`` on a run directory: --candidate picks a results.jsonl record, without it the chosen
one; export.json records parity, FP32/INT8 accuracy in ONNX Runtime and the artifact sizes."""

import json

import onnx
import pytest

from edgeprune import models
from edgeprune.utils.io import append_jsonl


@pytest.fixture
def run_dir(tmp_path):
    root = tmp_path / "run"
    for _i, cid in enumerate(["dense", "mag-s90", "mag-s95"]):
        model = models.create("lenet300", num_classes=10, in_channels=1, image_size=8)
        models.save(model, root / "candidates" / f"{cid}.pt", meta={"dataset": "digits"})
        append_jsonl(root / "results.jsonl", {"id": cid, "checkpoint": f"candidates/{cid}.pt", "chosen": cid == "mag-s90"})
    return root


def test_export_candidate_and_chosen(run_cli, run_dir, tmp_path):
    code, out, err = run_cli("export", run_dir, "--candidate", "mag-s95", "--out", tmp_path / "a", "--batch", "4")
    assert code == 0, err
    record = json.loads((tmp_path / "a" / "export.json").read_text())
    assert record["candidate"] == "mag-s95" and record["checkpoint"].endswith("mag-s95.pt")
    assert record["onnx"]["batch"] == 4
    assert onnx.load(str(tmp_path / "a" / "model.onnx")).graph.input[0].type.tensor_type.shape.dim[0].dim_value == 4
    # the data set recorded in the checkpoint gave real inputs and accuracies
    assert "digits test split" in record["parity"]["inputs"]
    assert record["accuracy"]["fp32_ort"] == pytest.approx(record["accuracy"]["fp32_torch"], abs=1e-6)

    code, out, err = run_cli("export", run_dir, "--out", tmp_path / "b", "--dataset", "digits", "--int8", "dynamic",
                             "--sparse", "fp16", "--opset", "20")
    assert code == 0, err
    record = json.loads((tmp_path / "b" / "export.json").read_text())
    assert record["candidate"] == "mag-s90"
    assert record["onnx"]["opset"] == 20 and record["parity"]["max_abs_diff"] <= 1e-4
    assert record["int8"]["mode"] == "dynamic" and 0 <= record["accuracy"]["int8_ort"] <= 1
    assert record["int8"]["bytes"] == (tmp_path / "b" / "model.int8.onnx").stat().st_size
    assert record["sparse"]["values"] == "fp16" and record["sparse"]["bytes"] == (tmp_path / "b" / "model.epz").stat().st_size
    assert "model.int8.onnx" in out and "model.epz" in out

"""OpenVINO, the fourth runtime: IR converted from the ONNX export, parity on every output in OpenVINO itself, the
static INT8 (QDQ) file run in INT8 there, latency budgets measured in it, ``edgeprune export --format openvino``
and ``edgeprune bench model.xml``; bad values and unconvertible operators refused in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from byom.two_outputs import TwoOutputs
from edgeprune import data as data_lib
from edgeprune import models
from edgeprune.data import make_loader
from edgeprune.errors import ConfigError, DependencyError, ModelError
from edgeprune.export import Compiled, export_openvino, latency_ms, ov_accuracy
from edgeprune.export import openvino as ov_lib
from edgeprune.export.onnx import export_verified
from edgeprune.export.openvino import convert_checked
from edgeprune.measure import accuracy
from edgeprune.measure.budget import parse
from edgeprune.runs.contract import EDGE_STAGES, run_stage
from helpers import assert_one_line_error

pytest.importorskip("openvino")


@pytest.mark.parametrize("spec, options", [
    ("resnet20", {"width_mult": 0.5}),
    ("vit", {"dim": 16, "depth": 2, "num_heads": 2}),
])
def test_fp32_ir_matches_pytorch_in_openvino(spec, options, tmp_path):
    torch.manual_seed(0)
    model = models.create(spec, num_classes=10, in_channels=1, image_size=8, **options).eval()
    x = torch.randn(6, 1, 8, 8)
    info = export_openvino(model, tmp_path / "model.xml", x)
    assert info["max_abs_diff"] <= info["tolerance"] and info["precision"] == "FP32"
    assert info["bytes"] == (tmp_path / "model.xml").stat().st_size + (tmp_path / "model.bin").stat().st_size
    assert set(info["compute_precisions"]) == {"f32"}  # not bfloat16, OpenVINO's default on CPUs with AVX512_BF16
    with torch.no_grad():
        np.testing.assert_allclose(Compiled(tmp_path / "model.xml").run(x[:5]), model(x[:5]).numpy(), atol=1e-4)


def test_every_output_is_checked_and_the_logits_are_read_by_name(tmp_path, monkeypatch):
    torch.manual_seed(0)
    model, x = TwoOutputs().eval(), torch.randn(4, 1, 8, 8)
    export_verified(model, tmp_path / "model.onnx", x)
    convert_checked(model, tmp_path / "model.onnx", tmp_path / "model.xml", x)
    compiled = Compiled(tmp_path / "model.xml")
    with torch.no_grad():
        expected = model(x)
    embedding, logits = compiled.run_all(x)
    np.testing.assert_allclose(embedding, expected["embedding"].numpy(), atol=1e-5)
    np.testing.assert_allclose(compiled.run(x), expected["logits"].numpy(), atol=1e-5)
    # a wrong second output fails the export: parity is checked on every output, not the logits alone
    run_all = Compiled.run_all
    monkeypatch.setattr(Compiled, "run_all", lambda self, x: [o + 1 * (i == 0) for i, o in enumerate(run_all(self, x))])
    with pytest.raises(ModelError, match="OpenVINO export of 'TwoOutputs' does not match PyTorch"):
        convert_checked(model, tmp_path / "model.onnx", tmp_path / "bad.xml", x)
    assert not (tmp_path / "bad.xml").exists() and not (tmp_path / "bad.bin").exists()


def test_int8_ir_runs_in_int8_close_to_fp32_on_mnist(mnist_root, tmp_path):
    splits = data_lib.load("mnist", root=mnist_root, limit=3000, test_limit=1000)
    torch.manual_seed(0)
    model = models.create("lenet5", num_classes=10, in_channels=1, image_size=28)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for x, y in make_loader(splits.train, 64, shuffle=True):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    model.eval()
    x = next(iter(make_loader(splits.test, 32)))[0]
    with pytest.raises(ConfigError, match="needs calibration data"):
        export_openvino(model, tmp_path / "q.xml", x, int8=True)
    fp32 = export_openvino(model, tmp_path / "m.xml", x)
    q = export_openvino(model, tmp_path / "q.xml", x, int8=True, calibration=splits.train, calib_batches=8)
    assert q["bytes"] < fp32["bytes"] / 2
    assert set(q["compute_precisions"]) <= {"u8", "i8"}  # every conv / fully connected layer runs integer kernels
    acc32, images = ov_accuracy(Compiled(tmp_path / "m.xml"), splits.test)
    acc8, _ = ov_accuracy(Compiled(tmp_path / "q.xml"), splits.test)
    assert images == 1000 and acc32 == pytest.approx(accuracy(model, splits.test), abs=1e-3)
    assert acc32 > 0.85 and abs(acc32 - acc8) <= 0.02, (acc32, acc8)


def test_unconvertible_operator_is_named_in_one_line():
    class Determinant(nn.Module):  # ONNX Det: ONNX Runtime runs it, OpenVINO has no conversion for it
        def forward(self, x):
            return torch.linalg.det(x[:, 0, :4, :4]).unsqueeze(1)

    # the zoo contract's stage: export_openvino in a temporary folder, a ModelError naming the operator is a refusal
    outcome = run_stage("openvino", Determinant(), torch.randn(1, 1, 8, 8))
    assert "openvino" in EDGE_STAGES and outcome.status == "refused", outcome
    assert outcome.note == ("model 'Determinant' cannot be converted to OpenVINO: ONNX op Det has no OpenVINO conversion")


def test_an_operator_openvino_converts_but_not_at_this_size_is_named_with_why():
    class WidePool(nn.Module):  # HF EfficientNet's pooler: a kernel as wide as its channels, ceil_mode, on a 1x1 map
        def forward(self, x):
            return nn.functional.avg_pool2d(x, 16, 16, ceil_mode=True).flatten(1)

    outcome = run_stage("openvino", WidePool(), torch.randn(1, 4, 1, 1))
    assert outcome.status == "refused", outcome
    assert outcome.note.startswith("model 'WidePool' cannot be converted to OpenVINO: OpenVINO failed to convert "
                                   "ONNX op AveragePool: Kernel after dilation has size"), outcome.note


def test_missing_extra_is_one_line(monkeypatch, tmp_path):
    import builtins

    real_import = builtins.__import__

    def no_openvino(name, *args, **kwargs):
        if name.split(".")[0] == "openvino":
            raise ImportError(f"No module named {name.split('.')[0]!r}")
        return real_import(name, *args, **kwargs)

    ov_lib.openvino.cache_clear()
    monkeypatch.setattr(builtins, "__import__", no_openvino)
    try:
        with pytest.raises(DependencyError, match=r"pip install 'edgeprune\[openvino\]'"):
            export_openvino(nn.Linear(4, 2), tmp_path / "m.xml", torch.randn(2, 4))
    finally:
        monkeypatch.undo()
        ov_lib.openvino.cache_clear()


def test_latency_in_openvino_and_the_budget_names_it():
    model = models.create("resnet20", num_classes=10, in_channels=1, image_size=8, width_mult=0.5)
    assert 0 < latency_ms(model, 1, "openvino", runs=5) < 1000
    budget = parse("latency<=3ms@ov")
    assert (budget.runtime, budget.quantity, str(budget)) == ("openvino", "ov_latency_ms_b1", "latency<=3ms@ov")
    assert parse("latency<=50%@openvino@b32").quantity == "ov_latency_ms_b32"
    with pytest.raises(ConfigError, match="did you mean @openvino"):
        parse("latency<=3ms@openvinox")


def test_cli_export_openvino_beside_onnx_then_bench_the_ir(run_cli, tmp_path):
    torch.manual_seed(0)
    ckpt = models.save(models.create("lenet5", num_classes=10, in_channels=1, image_size=8), tmp_path / "m.pt",
                       meta={"dataset": "digits"})
    out = tmp_path / "out"
    code, text, err = run_cli("export", ckpt, "--out", out, "--format", "onnx,openvino", "--int8", "static",
                              "--calib-batches", "2")
    assert code == 0, err
    record = json.loads((out / "export.json").read_text())
    assert record["formats"] == ["onnx", "openvino"] and "openvino" in record["versions"]
    ov = record["openvino"]
    assert ov["fp32"]["converted_from"] == "model.onnx" and ov["int8"]["converted_from"] == "model.int8.onnx"
    assert ov["fp32"]["max_abs_diff"] <= 1e-4 and set(ov["int8"]["compute_precisions"]) <= {"u8", "i8"}
    assert all((out / f).is_file() for f in ("model.xml", "model.bin", "model.int8.xml", "model.int8.bin"))
    acc = record["accuracy"]
    assert acc["fp32_openvino"] == pytest.approx(acc["fp32_torch"], abs=1 / acc["images"])
    assert acc["int8_openvino"] == pytest.approx(acc["int8_ort"], abs=0.03)
    assert {"onnx", "openvino", "onnx int8", "openvino int8"} <= set(record["latency"])
    assert "max |OpenVINO - torch| (FP32)" in text and "latency b1 openvino" in text
    code, text, err = run_cli("bench", out / "model.xml", "--batch", "1,4", "--runs", "3", "--warmup", "1",
                              "--json", tmp_path / "bench.json")
    assert code == 0, err
    results = json.loads((tmp_path / "bench.json").read_text())["results"]
    assert [(r["runtime"], r["batch_size"], r["threads"]) for r in results] == [("openvino", 1, 1), ("openvino", 4, 1)]


@pytest.mark.parametrize("args, needles", [
    (["--format", "tflite"], ["--format 'tflite'", "openvino"]),
    (["--format", "onnx,openvinox"], ["format 'openvinox'", "onnx, executorch, openvino"]),
    (["--format", "openvino", "--int8", "dynamic"], ["--int8 dynamic has no OpenVINO form", "static"]),
])
def test_bad_export_values_are_one_line(args, needles, run_cli, tmp_path):
    ckpt = models.save(models.create("lenet5", num_classes=10, in_channels=1, image_size=8), tmp_path / "m.pt")
    code, _, err = run_cli("export", ckpt, "--out", tmp_path / "out", *args)
    assert_one_line_error(code, err, *needles)
    assert not (tmp_path / "out").exists()


def test_misspelt_runtime_in_a_budget_is_one_line(run_cli, tmp_path):
    code, _, err = run_cli("prune", "structured", "--model", "lenet5", "--budget", "latency<=3ms@openvinox",
                           "--out", tmp_path / "run", "--dataset", "digits", "-q")
    assert_one_line_error(code, err, "@openvinox", "did you mean @openvino")
    assert not (tmp_path / "run").exists()

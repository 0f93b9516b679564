"""LiteRT (formerly TensorFlow Lite), the fifth runtime: a ``.tflite`` converted from PyTorch, parity on every output in
LiteRT's interpreter, ai-edge-quantizer's static INT8 run on int8 tensors there, latency budgets measured in it,
``edgeprune export --format litert`` and ``edgeprune bench model.tflite``; bad values and operators with no LiteRT
lowering refused in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from byom.two_outputs import TwoOutputs
from edgeprune import data as data_lib
from edgeprune import models, tasks
from edgeprune.data import make_loader
from edgeprune.errors import ConfigError, DependencyError, ModelError
from edgeprune.export import Interpreter, export_litert, latency_ms, lrt_accuracy
from edgeprune.export import litert as lrt_lib
from edgeprune.measure import accuracy
from edgeprune.measure.budget import parse
from edgeprune.runs.contract import EDGE_STAGES, run_stage
from helpers import assert_one_line_error

pytest.importorskip("litert_torch")


@pytest.mark.parametrize("spec, options", [
    ("resnet20", {"width_mult": 0.5}),
    ("vit", {"dim": 16, "depth": 2, "num_heads": 2}),
])
def test_fp32_program_matches_pytorch_in_litert(spec, options, tmp_path):
    torch.manual_seed(0)
    model = models.create(spec, num_classes=10, in_channels=1, image_size=8, **options).eval()
    x = torch.randn(6, 1, 8, 8)
    info = export_litert(model, tmp_path / "model.tflite", x)
    assert info["max_abs_diff"] <= info["tolerance"] and info["precision"] == "FP32" and info["batch"] == 1
    assert info["bytes"] == (tmp_path / "model.tflite").stat().st_size and set(info["compute_dtypes"]) == {"float32"}
    program = Interpreter(tmp_path / "model.tflite")
    assert (program.max_batch, program.input_shape) == (1, (1, 8, 8))
    with torch.no_grad():  # 5 images through a batch-1 program: padded chunks
        np.testing.assert_allclose(program.run(x[:5]), model(x[:5]).numpy(), atol=1e-4)


def test_every_output_is_checked_under_a_task_with_several(tmp_path, monkeypatch):
    torch.manual_seed(0)
    model, x = TwoOutputs().eval(), torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        expected = model(x)
    with tasks.using(tasks.get("regression")):  # not a classifier: every output tensor is kept, in pytree order
        export_litert(model, tmp_path / "model.tflite", x, batch=2)
        embedding, logits = Interpreter(tmp_path / "model.tflite").run_all(x)
        np.testing.assert_allclose(embedding, expected["embedding"].numpy(), atol=1e-5)
        np.testing.assert_allclose(logits, expected["logits"].numpy(), atol=1e-5)
        # a wrong first output fails the export: parity is checked on every output, not the logits alone
        run_all = Interpreter.run_all
        monkeypatch.setattr(Interpreter, "run_all", lambda self, x: [o + 1 * (i == 0) for i, o in enumerate(run_all(self, x))])
        with pytest.raises(ModelError, match="LiteRT export of 'TwoOutputs' does not match PyTorch"):
            export_litert(model, tmp_path / "bad.tflite", x, batch=2)
    assert not (tmp_path / "bad.tflite").exists()


@pytest.mark.slow
def test_int8_program_runs_int8_kernels_close_to_fp32_on_mnist(mnist_root, tmp_path):
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
        export_litert(model, tmp_path / "q.tflite", x, int8=True)
    fp32 = export_litert(model, tmp_path / "m.tflite", x)
    calibration = [b for b, _ in make_loader(splits.train, 32)][:8]
    q = export_litert(model, tmp_path / "q.tflite", x, int8=True, calibration=calibration)
    assert q["bytes"] < fp32["bytes"] / 3 and q["quantization"]["calibration_images"] == 256
    assert set(q["compute_dtypes"]) == {"int8"}  # every conv / fully connected op reads int8 tensors
    acc32, images = lrt_accuracy(Interpreter(tmp_path / "m.tflite"), splits.test)
    acc8, _ = lrt_accuracy(Interpreter(tmp_path / "q.tflite"), splits.test)
    assert images == 1000 and acc32 == pytest.approx(accuracy(model, splits.test), abs=1e-3)
    assert acc32 > 0.85 and abs(acc32 - acc8) <= 0.02, (acc32, acc8)


def test_operator_without_lowering_is_named_in_one_line():
    class Determinant(nn.Module):  # torch.export captures aten._linalg_det; LiteRT has no lowering for it
        def forward(self, x):
            return torch.linalg.det(x[:, 0, :4, :4]).unsqueeze(1)

    outcome = run_stage("litert", Determinant(), torch.randn(1, 1, 8, 8))
    assert "litert" in EDGE_STAGES and outcome.status == "refused", outcome
    assert outcome.note == "model 'Determinant' cannot be converted to LiteRT: op aten._linalg_det has no LiteRT lowering"


def test_a_refusal_names_the_users_model_not_the_wrapper_export_puts_around_it():
    class DetWithDictOutput(nn.Module):  # a dict output: export keeps the logits through a wrapper
        def forward(self, x):
            return {"logits": torch.linalg.det(x[:, 0, :4, :4]).unsqueeze(1), "aux": x.mean((1, 2, 3))}

    for task in ("classification", "regression"):  # the logits only; every output, flattened
        with tasks.using(tasks.get(task)):
            outcome = run_stage("litert", DetWithDictOutput(), torch.randn(1, 1, 8, 8))
        assert outcome.note.startswith("model 'DetWithDictOutput' cannot be converted to LiteRT"), (task, outcome)


def test_an_op_the_converter_rejects_is_named_without_the_machines_paths():
    # the converter's own line on timm's edgenext_xx_small (benchmarks/results/litert_zoo.json)
    exc = ValueError("Failed to run converter passes: /home/u/.venv/lib/python3.11/site-packages/torch/nn/modules/"
                     "linear.py:134:0: error: 'tfl.batch_matmul' op found invalid output rank, expected 3 but got 4\n"
                     "note: see current operation: ...")
    assert lrt_lib.describe_conversion_failure(exc) == ("LiteRT's converter rejects op tfl.batch_matmul (found invalid output "
                                                        "rank, expected 3 but got 4) from torch/nn/modules/linear.py:134")


def test_a_failing_converter_pass_is_named_without_the_machines_paths():
    # the converter's own line on timm's csatv2 (benchmarks/results/zoo.json)
    exc = ValueError("Failed to run converter passes: /home/u/.venv/lib/python3.11/site-packages/timm/models/csatv2.py"
                     ":414:0: error: contracting dimension sizes must match for lhs/rhs\nnote: see current operation")
    assert lrt_lib.describe_conversion_failure(exc) == ("LiteRT's converter fails (contracting dimension sizes must match for "
                                                        "lhs/rhs) at timm/models/csatv2.py:414")


def test_missing_extra_is_one_line(monkeypatch, tmp_path):
    import builtins

    real_import = builtins.__import__

    def no_litert(name, *args, **kwargs):
        if name.split(".")[0] in ("litert_torch", "ai_edge_litert", "ai_edge_quantizer"):
            raise ImportError(f"No module named {name.split('.')[0]!r}")
        return real_import(name, *args, **kwargs)

    lrt_lib.litert.cache_clear()
    monkeypatch.setattr(builtins, "__import__", no_litert)
    try:
        with pytest.raises(DependencyError, match=r"pip install 'edgeprune\[litert\]'"):
            export_litert(nn.Linear(4, 2), tmp_path / "m.tflite", torch.randn(2, 4))
    finally:
        monkeypatch.undo()
        lrt_lib.litert.cache_clear()


def test_latency_in_litert_and_the_budget_names_it(tmp_path):
    model = models.create("resnet20", num_classes=10, in_channels=1, image_size=8, width_mult=0.5)
    assert 0 < latency_ms(model, 2, "litert", runs=5) < 1000  # converted at batch 2, timed at batch 2
    budget = parse("latency<=3ms@tflite")
    assert (budget.runtime, budget.quantity, str(budget)) == ("litert", "lrt_latency_ms_b1", "latency<=3ms@tflite")
    assert parse("latency<=50%@litert@b32").quantity == "lrt_latency_ms_b32"
    with pytest.raises(ConfigError, match="did you mean @litert"):
        parse("latency<=3ms@litertx")


@pytest.mark.slow
def test_cli_export_litert_beside_onnx_then_bench_the_program(run_cli, tmp_path):
    torch.manual_seed(0)
    ckpt = models.save(models.create("lenet5", num_classes=10, in_channels=1, image_size=8), tmp_path / "m.pt",
                       meta={"dataset": "digits"})
    out = tmp_path / "out"
    code, text, err = run_cli("export", ckpt, "--out", out, "--format", "onnx,litert", "--int8", "static",
                              "--calib-batches", "2")
    assert code == 0, err
    record = json.loads((out / "export.json").read_text())
    assert record["formats"] == ["onnx", "litert"] and record["versions"]["litert_torch"] == "0.10.0"
    lrt = record["litert"]
    assert lrt["fp32"]["max_abs_diff"] <= 1e-4 and set(lrt["int8"]["compute_dtypes"]) == {"int8"}
    assert all((out / f).is_file() for f in ("model.tflite", "model.int8.tflite"))
    acc = record["accuracy"]
    assert acc["fp32_litert"] == pytest.approx(acc["fp32_torch"], abs=1 / acc["images"])
    assert acc["int8_litert"] == pytest.approx(acc["fp32_torch"], abs=0.05)
    assert {"onnx", "litert", "onnx int8", "litert int8"} <= set(record["latency"])
    assert "max |LiteRT - torch| (FP32)" in text and "latency b1 litert" in text
    code, text, err = run_cli("bench", out / "model.tflite", "--batch", "1", "--runs", "3", "--warmup", "1",
                              "--json", tmp_path / "bench.json")
    assert code == 0, err
    results = json.loads((tmp_path / "bench.json").read_text())["results"]
    assert [(r["runtime"], r["batch_size"], r["threads"]) for r in results] == [("litert", 1, 1)]
    code, _, err = run_cli("bench", out / "model.tflite", "--batch", "4", "--runs", "3")
    assert_one_line_error(code, err, "fixed batch of 1", "cannot time batch 4")


@pytest.mark.parametrize("args, needles", [
    (["--format", "onnx,litertx"], ["format 'litertx'", "onnx, executorch, openvino, litert"]),
    (["--format", "litert", "--int8", "dynamic"], ["--int8 dynamic has no LiteRT form", "static"]),
])
def test_bad_export_values_are_one_line(args, needles, run_cli, tmp_path):
    ckpt = models.save(models.create("lenet5", num_classes=10, in_channels=1, image_size=8), tmp_path / "m.pt")
    code, _, err = run_cli("export", ckpt, "--out", tmp_path / "out", *args)
    assert_one_line_error(code, err, *needles)
    assert not (tmp_path / "out").exists()


def test_bad_bench_values_are_one_line(run_cli, tmp_path):
    (tmp_path / "m.tflite").write_bytes(b"not a flatbuffer")
    code, _, err = run_cli("bench", tmp_path / "m.tflite", "--batch", "1", "--runtime", "onnxruntime")
    assert_one_line_error(code, err, "cannot run", "a LiteRT program (use litert)")
    code, _, err = run_cli("bench", tmp_path / "m.tflite", "--batch", "1")
    assert_one_line_error(code, err, "LiteRT cannot load")
    code, _, err = run_cli("prune", "structured", "--model", "lenet5", "--budget", "latency<=3ms@tflitex",
                           "--out", tmp_path / "run", "--dataset", "digits", "-q")
    assert_one_line_error(code, err, "@tflitex", "did you mean @tflite")


@pytest.mark.slow
def test_export_prints_no_native_log_lines(tmp_path):
    """LiteRT's converter and interpreter (absl, TFLite) and ExecuTorch (CPU probing, thread pool) write from C++
    straight to the process's stderr; a fresh `edgeprune export` shows none of it."""
    ckpt = models.save(models.create("lenet5", num_classes=10, in_channels=1, image_size=8), tmp_path / "m.pt")
    done = subprocess.run([sys.executable, "-m", "edgeprune", "export", str(ckpt), "--out", str(tmp_path / "out"),
                           "--format", "executorch,litert"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "model.tflite").is_file() and (tmp_path / "out" / "model.pte").is_file()
    native = [line for line in done.stderr.splitlines()
              if line.startswith(("I0000", "W0000", "WARNING: All log messages", "INFO: Created TensorFlow Lite", "[cpuinfo",
                                  "[threadpool"))]
    assert native == []

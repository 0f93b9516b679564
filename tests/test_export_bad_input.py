"""Bad input to export/bench: one line starting with "error: ", exit 2, no traceback, nothing written."""

import pytest
import torch
from torch import nn

from edgeprune import models
from edgeprune.export import sparse
from edgeprune.models import registry
from edgeprune.utils.io import append_jsonl
from helpers import assert_one_line_error


class Branchy(nn.Module):
    """Flips its logits depending on their mean: a Python branch on tensor values."""

    def __init__(self, num_classes, in_channels, image_size):
        super().__init__()
        self.fc = nn.Linear(in_channels * image_size * image_size, num_classes)

    def forward(self, x):
        h = self.fc(x.flatten(1))
        if h.mean() > 0:
            return h
        return -h


class SpectralNorm(nn.Module):
    """Scales its logits by the singular values of its input: an op with no ONNX translation."""

    def __init__(self, num_classes, in_channels, image_size):
        super().__init__()
        self.fc = nn.Linear(in_channels * image_size * image_size, num_classes)

    def forward(self, x):
        return self.fc(x.flatten(1)) * torch.linalg.svdvals(x[:, 0]).sum(1, keepdim=True)


@pytest.fixture
def checkpoint(tmp_path):
    path = models.save(models.create("lenet300", num_classes=10, in_channels=1, image_size=8), tmp_path / "m.pt")
    return path


def test_unknown_candidate(run_cli, tmp_path, checkpoint):
    run = tmp_path / "run"
    run.mkdir()
    for cid in ("a1", "b2", "c3"):
        append_jsonl(run / "results.jsonl", {"id": cid, "checkpoint": "../m.pt"})
    code, _, err = run_cli("export", run, "--candidate", "zz9", "--out", tmp_path / "o")
    assert_one_line_error(code, err, "zz9", "a1, b2, c3")
    assert not (tmp_path / "o").exists()
    # a run directory with nothing chosen asks for --candidate
    assert_one_line_error(*run_cli("export", run, "--out", tmp_path / "o")[::2], "--candidate", "a1")
    assert_one_line_error(*run_cli("export", checkpoint, "--candidate", "a1", "--out", tmp_path / "o")[::2], "run directory")


@pytest.mark.parametrize(
    "name,cls,needles",
    [
        ("branchy", Branchy, ["branchy", "data-dependent", "if h.mean() > 0"]),
        ("spectral", SpectralNorm, ["spectral", "aten._linalg_svd"]),
    ],
)
def test_model_that_cannot_be_exported(run_cli, tmp_path, monkeypatch, name, cls, needles):
    monkeypatch.setitem(registry._ZOO, name, (lambda n, c, s: cls(n, c, s), "test model"))
    path = models.save(models.create(name, num_classes=10, in_channels=1, image_size=8), tmp_path / f"{name}.pt")
    code, out, err = run_cli("export", path, "--out", tmp_path / "o")
    assert_one_line_error(code, err, "cannot be exported to ONNX", *needles)
    assert not list((tmp_path / "o").glob("*.onnx*")) and not list((tmp_path / "o").glob(".*tmp"))


@pytest.mark.parametrize(
    "args,needles",
    [
        (["--opset", "11"], ["opset 11", "18..23"]),
        (["--opset", "30"], ["opset 30", "18..23"]),
        (["--batch", "0"], ["--batch", "'0'"]),
        (["--batch", "many"], ["many", "dynamic"]),
        (["--int8", "int4"], ["int4", "static, dynamic"]),
        (["--int8", "static"], ["--int8 static", "--dataset"]),  # no data: nothing to calibrate on
        (["--sparse", "fp8"], ["fp8", "fp32, fp16, int8"]),
        (["--dataset", "mnist", "--data-dir", "/nowhere"], ["nowhere"]),
    ],
)
def test_bad_export_options(run_cli, tmp_path, checkpoint, args, needles):
    code, _, err = run_cli("export", checkpoint, "--out", tmp_path / "o", *args)
    assert_one_line_error(code, err, *needles)
    assert not (tmp_path / "o" / "model.onnx").exists()


def test_corrupt_artifact_is_refused(run_cli, tmp_path):
    model = models.create("lenet300", num_classes=10, in_channels=1, image_size=8)
    path = tmp_path / "m.epz"
    sparse.save(model, path)
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    path.write_bytes(bytes(blob))
    assert_one_line_error(*run_cli("export", path, "--out", tmp_path / "o")[::2], "m.epz", "checksum")
    assert_one_line_error(*run_cli("bench", path)[::2], "m.epz", "checksum")


@pytest.mark.parametrize("threads", ["0", "-2"])
def test_bench_threads_must_be_positive(run_cli, checkpoint, threads):
    assert_one_line_error(*run_cli("bench", checkpoint, "--threads", threads)[::2], "--threads", threads)


def test_bench_bad_options(run_cli, tmp_path, checkpoint):
    assert_one_line_error(*run_cli("bench", checkpoint, "--runtime", "tvm")[::2], "tvm", "onnxruntime")
    assert_one_line_error(*run_cli("bench", checkpoint, "--runs", "0")[::2], "--runs")
    assert_one_line_error(*run_cli("bench", checkpoint, "--batch", "1,0")[::2], "1,0")
    assert_one_line_error(*run_cli("bench", tmp_path / "missing.onnx")[::2], "missing.onnx")
    onnx_file = tmp_path / "junk.onnx"
    onnx_file.write_text("not a model")
    assert_one_line_error(*run_cli("bench", onnx_file)[::2], "junk.onnx")

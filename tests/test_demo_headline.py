"""`edgeprune demo`'s headline says what its 80 % sparsity buys on the device: the chosen and the input model's
ONNX bytes and ONNX Runtime batch-1 latency side by side, and the chosen model's bytes as sparse ONNX, so
"80 % sparse" is not read as "5x smaller and faster" (issue 32.1). The sizes are checked against the files the
demo leaves in RUN/onnx/, and those files against the checkpoints they claim to be."""

import re
from pathlib import Path

import onnx
import pytest
import torch

from edgeprune import models as model_lib
from edgeprune.export.onnx import ort_run, ort_session
from edgeprune.measure import param_count
from edgeprune.report.tables import human_bytes
from edgeprune.runs.edge import input_checkpoint

README = Path(__file__).resolve().parents[1] / "README.md"

SIZE = r"([\d.]+ (?:B|KiB|MiB|GiB))"
DEVICE_LINE = (rf"input model {SIZE}, ([\d.]+) ms; chosen model {SIZE}, ([\d.]+) ms \(([\d.]+)x the input model's speed\)"
               rf".*as sparse ONNX {SIZE}")


@pytest.mark.slow
def test_demo_headline_gives_onnx_bytes_latency_and_sparse_bytes_of_the_files_it_wrote(run_cli, tmp_path):
    out = tmp_path / "demo"
    code, stdout, stderr = run_cli("demo", "--out", out, "--epochs", "1", "--dense-epochs", "1", "-q")
    assert code == 0, stderr
    text = " ".join(stdout.split())  # Rich wraps long lines
    found = re.search(DEVICE_LINE, text)
    assert found, f"no ONNX bytes / latency line in the demo's output:\n{stdout}"
    input_size, input_ms, chosen_size, chosen_ms, ratio, sparse_size = found.groups()

    files = {name: out / "onnx" / f"{name}.onnx" for name in ("input", "chosen", "chosen.sparse")}
    assert [input_size, chosen_size, sparse_size] == [human_bytes(files[n].stat().st_size) for n in files]
    assert float(input_ms) > 0 and float(chosen_ms) > 0 and float(ratio) > 0
    assert "unstructured" in text and "granularity=channel" in text  # why 1x, and what to do instead

    x = torch.randn(8, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    for name, checkpoint in [("input", input_checkpoint(out)), ("chosen", out / "chosen.pt"),
                             ("chosen.sparse", out / "chosen.pt")]:
        model = model_lib.load(checkpoint).eval()
        with torch.no_grad():
            expected = model(x).numpy()
        assert abs(ort_run(ort_session(files[name]), x) - expected).max() < 1e-4, f"{name}.onnx is not {checkpoint.name}"
    assert len(onnx.load(str(files["chosen.sparse"])).graph.sparse_initializer) > 0

    readme = " ".join(README.read_text().split())  # the tour quotes the dense ONNX size and the parameter count
    quoted = re.search(r"on our machine ([\d.]+) KiB and", readme)  # the exporter's metadata varies by a few bytes
    assert quoted and abs(float(quoted.group(1)) * 1024 - files["input"].stat().st_size) < 1024, quoted
    assert f"{param_count(model_lib.load(out / 'chosen.pt')):,} parameters" in readme

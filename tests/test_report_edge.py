"""The report's edge section (``edgeprune report RUN --edge``, ``sweep(..., edge_report=True)``): the input model, the
chosen one and its static INT8 form exported to every installed runtime (real ONNX Runtime, ExecuTorch, OpenVINO,
LiteRT), timed at batch 1 in interleaved rounds, the INT8 and FP32 files scored on the test split in their own
runtime; measured once per chosen.pt (edge.json), an install line per runtime not installed, one line per model a
runtime cannot take."""

import json

import pytest

import edgeprune
from edgeprune import data as data_lib
from edgeprune import models as model_lib
from edgeprune.errors import ModelError
from edgeprune.export import executorch as et_lib
from edgeprune.export import runtimes as runtimes_lib
from edgeprune.measure import accuracy
from edgeprune.runs import edge as edge_lib
from edgeprune.runs.report import EDGE_TITLE, render
from edgeprune.utils.io import read_json, write_json
from helpers import without_executorch

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("edge") / "run"
    result = edgeprune.sweep("lenet5", "digits", method="magnitude", budgets=[0.5], finetune=0, out=out,
                             progress=False, edge_report=True)
    return out, result.summary


def _section(out) -> str:
    text = (out / "report.md").read_text()
    return text[text.index(EDGE_TITLE):]


@pytest.mark.slow
def test_sweep_reports_every_installed_runtime_with_int8(run):
    out, summary = run
    present = runtimes_lib.installed()
    assert (out / "input.pt").is_file() and (out / "edge.png").stat().st_size > 0
    edge = summary["edge"]
    assert edge == read_json(out / "edge.json") and edge["threads"] == 1 and edge["batch"] == 1
    assert edge["key"]["chosen_sha256"] == edge_lib.sha256_of(out / "chosen.pt")
    assert list(edge["runtimes"]) == [r.key for r in present] and edge["not_installed"] == runtimes_lib.missing()
    for name in ("input model", "chosen", "chosen INT8"):
        m = edge["models"][name]
        for r in present:
            assert m[r.bytes_key] > 0 and m[f"{r.key}_ms_b1"] > 0 and len(m[f"{r.key}_rounds_ms"]) == edge["rounds"]
    fp32, int8 = edge["models"]["chosen"], edge["models"]["chosen INT8"]
    assert all(fp32["max_abs_diff"][r.name] <= 1e-4 for r in present)
    assert all(int8[r.bytes_key] < fp32[r.bytes_key] / 2.5 for r in present)  # 8-bit weights
    # the FP32 file's score in each runtime is the chosen model's own test accuracy in PyTorch (to an image or two)
    test = data_lib.load("digits").test
    torch_acc = accuracy(model_lib.load(out / "chosen.pt"), test)
    scores = edge["int8"]["scores"]
    assert edge["int8"]["metric"] == "acc" and set(scores) == {r.key for r in present}
    assert all(abs(s["fp32"] - torch_acc) <= 2 / len(test) and 0 <= s["int8"] <= 1 for s in scores.values())
    section = _section(out)
    assert "![edge](edge.png)" in section and "| model | runtime | file kB | ms b1 | speed-up vs input | test accuracy |" in section
    for r in present:
        assert f"| chosen INT8 | {r.title} | {int8[r.bytes_key] / 1e3:,.1f} | {int8[f'{r.key}_ms_b1']:.3f} | " in section
        assert f"| {100 * scores[r.key]['int8']:.2f}% |" in section
    assert json.loads((out / "summary.json").read_text())["edge"]["models"]["chosen"]["onnx_bytes"] > 0


@pytest.mark.slow
def test_speedups_are_paired_ratios_with_their_spread(run):
    out, summary = run
    edge = summary["edge"]
    base = edge["models"]["input model"]
    for name, prefix in (("chosen", "speedup"), ("chosen INT8", "speedup_int8")):
        small = edge["models"][name]
        for key in edge["runtimes"]:
            ratios = sorted(b / c for b, c in zip(base[f"{key}_rounds_ms"], small[f"{key}_rounds_ms"]))
            low, high = edge[f"{prefix}_{key}_b1_spread"]
            assert ratios[0] <= low <= high <= ratios[-1]
            # the ratio of the fastest rounds: other work on the machine only adds time (measure.latency.speedup)
            fastest = min(base[f"{key}_rounds_ms"]) / min(small[f"{key}_rounds_ms"])
            assert edge[f"{prefix}_{key}_b1"] == pytest.approx(fastest)
    low, high = edge["speedup_int8_ort_b1_spread"]
    assert f"| {edge['speedup_int8_ort_b1']:.2f} ({low:.2f}–{high:.2f}) |" in _section(out)


def test_rendering_again_reads_edge_json(run, run_cli, monkeypatch):
    out, summary = run
    calls = []
    real = edge_lib._measure
    monkeypatch.setattr(edge_lib, "_measure", lambda *a, **k: calls.append(a) or real(*a, **k))
    before = (out / "edge.json").stat().st_mtime_ns
    assert render(out, edge=True)["edge"] == summary["edge"]
    code, text, err = run_cli("report", out, "--edge")
    assert code == 0, err
    assert "chosen ONNX Runtime" in text and "INT8 fastest in" in text
    assert not calls and (out / "edge.json").stat().st_mtime_ns == before
    assert "edge" not in render(out)  # off by default
    # another chosen.pt (here: a cache made for other bytes) is measured again
    stale = read_json(out / "edge.json")
    write_json(out / "edge.json", {**stale, "key": {**stale["key"], "chosen_sha256": "0" * 64}}, sealed=True)
    monkeypatch.setattr(edge_lib, "_measure", lambda *a, **k: calls.append(a) or {k: v for k, v in stale.items() if k != "key"})
    render(out, edge=True)
    assert len(calls) == 1 and read_json(out / "edge.json")["key"] == stale["key"]
    write_json(out / "edge.json", stale, sealed=True)


@pytest.fixture
def onnx_and_executorch_only(run, monkeypatch):
    """The run measured again with the runtime table cut to ONNX Runtime and ExecuTorch (seconds, not a minute);
    its edge.json put back afterwards."""
    out, _ = run
    cached = (out / "edge.json").read_bytes()
    monkeypatch.setattr(runtimes_lib, "RUNTIMES", runtimes_lib.RUNTIMES[:2])
    yield out
    (out / "edge.json").write_bytes(cached)


@pytest.mark.slow
def test_a_runtime_not_installed_is_one_install_line(onnx_and_executorch_only, monkeypatch):
    out = onnx_and_executorch_only
    with without_executorch(monkeypatch):
        summary = render(out, edge=True)
    assert list(summary["edge"]["runtimes"]) == ["ort"] and summary["edge"]["models"]["chosen INT8"]["ort_ms_b1"] > 0
    section = _section(out)
    assert "| chosen | ONNX Runtime |" in section and "ExecuTorch |" not in section
    assert [line for line in section.splitlines() if line.startswith("- ")] == [
        f"- not installed: {summary['edge']['not_installed'][0]}"]
    assert "pip install 'edgeprune[edge]'" in summary["edge"]["not_installed"][0]


@pytest.mark.slow
def test_a_model_a_runtime_cannot_take_is_one_line(onnx_and_executorch_only, monkeypatch):
    out = onnx_and_executorch_only

    def refuse(model, *args, **kwargs):
        raise ModelError("model 'lenet5' cannot be lowered to ExecuTorch: op aten::nonzero is not delegated to XNNPACK")

    monkeypatch.setattr(et_lib, "export_executorch", refuse)
    render(out, edge=True)
    section = _section(out)
    assert "| chosen INT8 | ONNX Runtime |" in section  # the other runtime still measured
    assert [line for line in section.splitlines() if line.startswith("- ")] == [
        f"- {name}, ExecuTorch: model 'lenet5' cannot be lowered to ExecuTorch: op aten::nonzero is not delegated to XNNPACK"
        for name in ("input model", "chosen")]

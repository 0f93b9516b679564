"""The report's edge section (``edgeprune report RUN --edge``, ``sweep(..., edge_report=True)``): the chosen
and the input model exported to ONNX and ExecuTorch and timed at batch 1 in real ONNX Runtime and real
ExecuTorch; measured once per chosen.pt (edge.json), an install line without ExecuTorch, one line per
model that cannot be lowered."""

import json

import pytest

import edgeprune
from edgeprune.errors import ModelError
from edgeprune.runs import edge as edge_lib
from edgeprune.runs.report import EDGE_TITLE, render
from edgeprune.utils.io import read_json, write_json
from helpers import without_executorch

pytest.importorskip("executorch")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("edge") / "run"
    result = edgeprune.sweep("lenet5", "digits", method="magnitude", budgets=[0.5], finetune=0, out=out,
                             progress=False, edge_report=True)
    return out, result.summary


@pytest.mark.slow
def test_sweep_reports_both_models_in_both_runtimes(run):
    out, summary = run
    assert (out / "input.pt").is_file() and (out / "edge.png").stat().st_size > 0
    edge = summary["edge"]
    assert edge == read_json(out / "edge.json") and edge["threads"] == 1 and edge["batch"] == 1
    assert edge["key"]["chosen_sha256"] == edge_lib.sha256_of(out / "chosen.pt")
    for name in ("input model", "chosen"):
        m = edge["models"][name]
        assert m["pte_bytes"] > 0 and m["onnx_bytes"] > 0 and m["ort_ms_b1"] > 0 and m["et_ms_b1"] > 0
        assert len(m["et_rounds_ms"]) == edge["rounds"] and m["max_abs_diff"]["executorch"] <= 1e-4
    assert edge["speedup_et_b1"] > 0 and edge["speedup_ort_b1"] > 0
    assert json.loads((out / "summary.json").read_text())["edge"]["models"]["chosen"]["pte_bytes"] > 0
    text = (out / "report.md").read_text()
    section = text[text.index(EDGE_TITLE):]
    assert "![edge](edge.png)" in section and "| ExecuTorch ms b1 |" in section
    chosen = edge["models"]["chosen"]
    assert f"| chosen | {chosen['onnx_bytes'] / 1e3:,.1f} | {chosen['ort_ms_b1']:.3f} | " in section
    assert f"{chosen['pte_bytes'] / 1e3:,.1f} | {chosen['et_ms_b1']:.3f} |" in section


def test_rendering_again_reads_edge_json(run, run_cli, monkeypatch):
    out, summary = run
    calls = []
    real = edge_lib._measure
    monkeypatch.setattr(edge_lib, "_measure", lambda *a, **k: calls.append(a) or real(*a, **k))
    before = (out / "edge.json").stat().st_mtime_ns
    assert render(out, edge=True)["edge"] == summary["edge"]
    code, text, err = run_cli("report", out, "--edge")
    assert code == 0, err
    assert "on the device: chosen .pte" in text
    assert not calls and (out / "edge.json").stat().st_mtime_ns == before
    assert "edge" not in render(out)  # off by default
    # another chosen.pt (here: a cache made for other bytes) is measured again
    stale = read_json(out / "edge.json")
    write_json(out / "edge.json", {**stale, "key": {**stale["key"], "chosen_sha256": "0" * 64}}, sealed=True)
    monkeypatch.setattr(edge_lib, "_measure", lambda *a, **k: calls.append(a) or {k: v for k, v in stale.items() if k != "key"})
    render(out, edge=True)
    assert len(calls) == 1 and read_json(out / "edge.json")["key"] == stale["key"]
    write_json(out / "edge.json", stale, sealed=True)


def test_without_executorch_one_install_line(run, monkeypatch, tmp_path):
    out, _ = run
    cached = (out / "edge.json").read_bytes()
    (out / "edge.json").unlink()
    try:
        with without_executorch(monkeypatch):
            summary = render(out, edge=True)
    finally:
        (out / "edge.json").write_bytes(cached)
    section = (out / "report.md").read_text().split(EDGE_TITLE)[1].strip().splitlines()
    assert len(section) == 1 and "pip install 'edgeprune[edge]'" in section[0]
    assert "pip install" in summary["edge"]["error"]


def test_a_model_that_cannot_be_lowered_is_one_line(run, monkeypatch):
    out, _ = run
    cached = (out / "edge.json").read_bytes()
    (out / "edge.json").unlink()

    def refuse(model, *args, **kwargs):
        raise ModelError("model 'lenet5' cannot be lowered to ExecuTorch: op aten::nonzero is not delegated to XNNPACK")

    monkeypatch.setattr(edge_lib, "export_executorch", refuse)
    try:
        render(out, edge=True)
    finally:
        (out / "edge.json").write_bytes(cached)
    section = (out / "report.md").read_text().split(EDGE_TITLE)[1].strip().splitlines()
    assert section == [f"- {name}: model 'lenet5' cannot be lowered to ExecuTorch: op aten::nonzero is not "
                       "delegated to XNNPACK" for name in ("input model", "chosen")]

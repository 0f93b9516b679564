"""The exporter's graph optimiser once wrote a graph whose node reads a value it had removed (timm's Gemma-4 ViT:
"Node input 'mul_121_min_1' is not a graph input"), which ONNX Runtime refused with the temporary file's path.
export_onnx checks the written graph and exports an invalid one again unoptimised; a graph that stays invalid is a
one-line refusal and no file."""

import onnx
import pytest
import torch
from torch import nn

from edgeprune.errors import CheckpointError, ModelError
from edgeprune.export.onnx import export_verified, ort_session

REAL_EXPORT = torch.onnx.export


def _breaking(optimised_only: bool):
    """torch.onnx.export, except that the graph it writes (optimised only, or always) has its nodes reversed: no
    longer topologically sorted, as the optimiser's graph was."""
    def export(*args, **kwargs):
        REAL_EXPORT(*args, **kwargs)
        if kwargs.get("optimize", True) or not optimised_only:
            proto = onnx.load(args[2])
            nodes = list(proto.graph.node)[::-1]
            del proto.graph.node[:]
            proto.graph.node.extend(nodes)
            onnx.save(proto, args[2])
    return export


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5)).eval()


def test_an_invalid_optimised_graph_is_exported_again_unoptimised(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.onnx, "export", _breaking(optimised_only=True))
    info = export_verified(_net(), tmp_path / "model.onnx", torch.randn(2, 3, 8, 8))
    onnx.checker.check_model(str(tmp_path / "model.onnx"))
    assert info["max_abs_diff"] < 1e-4


def test_a_graph_that_stays_invalid_is_refused_in_one_line_and_not_written(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.onnx, "export", _breaking(optimised_only=False))
    with pytest.raises(ModelError, match="the exporter wrote an invalid graph") as info:
        export_verified(_net(), tmp_path / "model.onnx", torch.randn(2, 3, 8, 8))
    assert "\n" not in str(info.value) and not (tmp_path / "model.onnx").exists()
    assert str(tmp_path) not in str(info.value)


def test_a_file_onnx_runtime_cannot_load_is_named_as_asked_without_its_path(tmp_path):
    bad = tmp_path / ".model.onnx.1234.tmp"
    bad.write_bytes(b"not a graph")
    with pytest.raises(CheckpointError, match="ONNX Runtime cannot load the exported graph: ") as info:
        ort_session(bad, what="the exported graph")
    assert str(bad) not in str(info.value)

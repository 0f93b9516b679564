"""One way to time a model against a reference: paired_latency times both ONNX files in alternation and
reports each one's median and spread (p10/p90) and the per-round ratio's, the speed-up being a ratio from
that one measurement."""

import torch

from edgeprune.export.onnx import export_onnx
from edgeprune.export.ort_latency import paired_latency


def _conv_onnx(path, width: int):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, width, 3), torch.nn.ReLU(), torch.nn.Conv2d(width, 4, 3)).eval()
    export_onnx(model, path, input_shape=(1, 24, 24))
    return path


def test_paired_latency_reports_medians_spreads_and_the_ratio(tmp_path):
    large, small = _conv_onnx(tmp_path / "large.onnx", 64), _conv_onnx(tmp_path / "small.onnx", 4)
    timed = paired_latency(large, small, batch_size=1, runs=30, warmup=3)
    for side in ("first", "second"):
        t = timed[side]
        assert 0 < t["p10_ms"] <= t["median_ms"] <= t["p90_ms"] and t["runs"] == 30
    assert timed["ratio"] == timed["first"]["min_ms"] / timed["second"]["min_ms"]
    assert timed["ratio_p10"] <= timed["ratio_p90"]
    assert timed["ratio"] > 1.5  # 16x the channels in the middle: clearly slower, from the same rounds
    assert timed["runs"] == 30 and timed["batch_size"] == 1 and timed["threads"] == 1

"""The file a latency bisection times (torch's TorchScript exporter) against the shipped file (the dynamo exporter):
export seconds and ONNX Runtime's paired speed ratio (1 thread, batch 1, alternating calls) per model.

    python benchmarks/timing_export.py --runs 60
    python benchmarks/timing_export.py --part deploy     # a candidate's deploy metrics: fast file vs shipped file
    python benchmarks/timing_export.py --part call --models timm:ghostnet_050   # the default structured call, both ways

``--part deploy``: seconds of one candidate's deploy metrics (``Meter.deploy``: FP32 and INT8 bytes, paired ORT
latency at batch 1 and 32) where the fast exporter's file stands in for the shipped one, against the same with every
candidate's shipped file exported (the fallback, as every candidate did before), and the predicted bytes' error
against the candidate's shipped file measured. ``--part call``: wall seconds of the zoo contract's default call
``edgeprune.prune(model, tiny data, method="structured")`` with the fast file standing in, and with every candidate's
shipped file exported, one after the other in one process.
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import save  # noqa: E402
from edgeprune import models, tasks  # noqa: E402
from edgeprune.export.int8 import quantize  # noqa: E402
from edgeprune.export.onnx import export_for_timing, export_onnx  # noqa: E402
from edgeprune.export.ort_latency import paired_latency  # noqa: E402
from edgeprune.select.meter import Meter  # noqa: E402
from edgeprune.surgery.ratios import prune_channels  # noqa: E402
from edgeprune.surgery.structure import plan  # noqa: E402

MODELS = [("resnet20", 10, 1, 32, None), ("torchvision:mobilenet_v3_small", 10, 3, 64, None),
          ("yolo:yolov8n", 11, 1, 128, "detection")]


def seconds(export, model, path, shape) -> float:
    start = time.perf_counter()
    export(model, path, input_shape=shape)
    return time.perf_counter() - start


DEPLOY_MODELS = [("resnet20", 1, 32), ("torchvision:mobilenet_v3_small", 3, 64), ("timm:ghostnet_050", 3, 64),
                 ("timm:convnext_atto", 3, 64), ("timm:mobilevit_xxs", 3, 64)]


def deploy_part(runs: int) -> None:
    rows = []
    for spec, channels, size in DEPLOY_MODELS:
        model = models.create(spec, num_classes=10, in_channels=channels, image_size=size).eval()
        example = torch.zeros(1, channels, size, size)
        small = copy.deepcopy(model)  # 30 % of every layer's channels removed, as the zoo contract's channel stage
        layers = {n for n, m in small.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))}
        prune_channels(small, example, plan(small, example), dict.fromkeys(layers, 0.3))
        row = {"model": spec, "input": [channels, size, size]}
        for arm in ("fast", "shipped"):
            meter = Meter(model, example, latency_runs=runs)
            meter.dense_deploy()  # the input model's files and figures: once per run, not per candidate
            if arm == "fast":
                row["fast_path"] = meter.cache["dense-bytes"]["fast"] is not None
            else:
                meter.cache["dense-bytes"]["fast"] = None
            start = time.perf_counter()
            out = meter.deploy(small)
            row[f"{arm}_s"] = round(time.perf_counter() - start, 2)
            row[f"{arm}_bytes"] = [out["onnx_bytes"], out["onnx_bytes_int8"]]
        with tempfile.TemporaryDirectory() as folder:
            shipped = Path(folder) / "shipped.onnx"
            export_onnx(small, shipped, input_shape=(channels, size, size))
            measured = [shipped.stat().st_size, quantize(shipped, Path(folder) / "int8.onnx", "dynamic",
                                                         preprocess=False)["bytes"]]
        row["measured_bytes"] = measured
        row["bytes_error_pct"] = [round(100 * abs(p - m) / m, 3) for p, m in zip(row["fast_bytes"], measured)]
        rows.append(row)
        print(row, flush=True)
    lines = ["## A candidate's deploy metrics: the fast exporter's file against the shipped one", "",
             f"`benchmarks/timing_export.py --part deploy`: `Meter.deploy` of one candidate (30 % of every layer's channels "
             f"removed), ONNX Runtime 1 thread, {runs} paired rounds at batch 1 and 32; the input model's files "
             "written beforehand (once per run). \"fast\": timed and quantized on the TorchScript exporter's file, bytes "
             "predicted from the input model's two files; \"shipped\": the candidate's dynamo export measured (the "
             "fallback where the input model's two files do not quantize the same weights). Error: predicted bytes "
             "against the candidate's shipped file (FP32 / INT8).", "",
             "| model | input | fast path used | fast s | shipped s | FP32 bytes error % | INT8 bytes error % |",
             "|---|---|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| `{r['model']}` | {'x'.join(map(str, r['input']))} | {'yes' if r['fast_path'] else 'no'} | "
                     f"{r['fast_s']} | {r['shipped_s']} | {r['bytes_error_pct'][0]} | {r['bytes_error_pct'][1]} |")
    save("timing_export_deploy", {"runs": runs, "rows": rows}, "\n".join(lines))


def call_part(specs: list[str]) -> None:
    from edgeprune import api_contract, prune  # noqa: PLC0415
    from edgeprune.select import meter as meter_lib  # noqa: PLC0415

    rows = []
    fast_bytes = meter_lib.Meter._dense_bytes

    def shipped_only(self):
        out = fast_bytes(self)
        out["fast"] = None
        return out

    for spec in specs:
        model = models.create(spec, num_classes=10, in_channels=3, image_size=64).eval()
        data = api_contract.tiny_data(torch.zeros(1, 3, 64, 64), 10)
        row = {"model": spec, "input": [3, 64, 64]}
        for arm, bytes_of in (("fast", fast_bytes), ("shipped", shipped_only)):
            meter_lib.Meter._dense_bytes = bytes_of
            start = time.perf_counter()
            result = prune(copy.deepcopy(model), data, method="structured", progress=False)
            row[f"{arm}_s"] = round(time.perf_counter() - start, 1)
            row[f"{arm}_candidates"] = len(result.candidates)
        meter_lib.Meter._dense_bytes = fast_bytes
        rows.append(row)
        print(row, flush=True)
    lines = ["## The default structured call: deploy metrics on the fast file against the shipped file", "",
             "`benchmarks/timing_export.py --part call`: wall seconds of `edgeprune.prune(model, data, "
             "method=\"structured\")` with default options on the zoo contract's tiny random data (3x64x64), one "
             "thread, the two arms one after the other in one process. \"shipped\": every candidate's deploy metrics "
             "export its shipped (dynamo) file, as before this change.", "",
             "| model | candidates | fast s | shipped s | shipped ÷ fast |", "|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| `{r['model']}` | {r['fast_candidates']} | {r['fast_s']} | {r['shipped_s']} | "
                     f"{r['shipped_s'] / r['fast_s']:.2f} |")
    save("timing_export_call", {"rows": rows}, "\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=60, help="paired rounds (--part deploy: the meter's runs, 20 "
                                                               "as structured pruning's default)")
    parser.add_argument("--part", choices=("export", "deploy", "call"), default="export")
    parser.add_argument("--models", default="timm:ghostnet_050,torchvision:mobilenet_v3_small",
                        help="--part call: comma-separated model specs")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.part == "deploy":
        return deploy_part(20 if args.runs == 60 else args.runs)
    if args.part == "call":
        return call_part(args.models.split(","))
    rows = []
    for spec, classes, channels, size, task in MODELS:
        model = models.create(spec, num_classes=classes, in_channels=channels, image_size=size).eval()
        shape = (channels, size, size)
        with tempfile.TemporaryDirectory() as folder, tasks.using(tasks.get(task or "classification")):
            shipped, timing = Path(folder) / "shipped.onnx", Path(folder) / "timing.onnx"
            row = {"model": spec, "input": list(shape),
                   "shipped_export_s": round(seconds(export_onnx, model, shipped, shape), 2),
                   "timing_export_s": round(seconds(export_for_timing, model, timing, shape), 2)}
            timed = paired_latency(shipped, timing, batch_size=1, runs=args.runs, threads=1)
        row.update(ratio=round(timed["ratio"], 3), ratio_p10=round(timed["ratio_p10"], 3), ratio_p90=round(timed["ratio_p90"], 3))
        rows.append(row)
        print(row, flush=True)
    lines = ["## The file a latency bisection times vs the shipped file", "",
             f"`benchmarks/timing_export.py`, ONNX Runtime 1 thread, batch 1, {args.runs} alternating rounds; ratio = "
             "shipped file's median / timing file's (1.0: equally fast), with the p10–p90 of per-round ratios.", "",
             "| model | input | dynamo export s | TorchScript export s | ratio | p10–p90 |", "|---|---|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| `{r['model']}` | {'x'.join(map(str, r['input']))} | {r['shipped_export_s']} | {r['timing_export_s']} | "
                     f"{r['ratio']} | {r['ratio_p10']}–{r['ratio_p90']} |")
    save("timing_export", {"runs": args.runs, "rows": rows}, "\n".join(lines))


if __name__ == "__main__":
    main()

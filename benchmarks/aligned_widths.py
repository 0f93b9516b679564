"""Why a pruned model is not faster: ONNX Runtime speed-up per MAC saved, by kept-width alignment.

    python benchmarks/aligned_widths.py [--keep 0.4,0.5,0.6,0.75] [--round 1,8,16]

Each model (ResNet-20, VGG-16 at half width, the zoo ViT; 28 px MNIST shapes, random weights: latency does
not depend on them) is pruned uniformly with Torch-Pruning's BasePruner (magnitude, classifier kept) so that
a fraction ``keep`` of every layer's channels stays, with the kept widths rounded to multiples of 1, 8 and
16 (``round_to``). Every variant is exported to ONNX and timed in ONNX Runtime (1 thread, batch 1 and 32) in
interleaved rounds with its dense model, so the speed-ups are ratios from one run. Speed-up per MAC saved =
speed-up / (dense MACs / pruned MACs); 1.0 means latency shrinks exactly with the MACs.
``edgeprune.export.ort_latency.channel_block()`` is the width the CPU's kernels work in (ONNX Runtime's NCHWc
block: 16 with AVX-512, 8 otherwise).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import save  # noqa: E402
from edgeprune import models as model_lib  # noqa: E402
from edgeprune.export.ort_latency import channel_block  # noqa: E402
from edgeprune.measure import macs  # noqa: E402
from structured import export_all, side_by_side, tp_prune  # noqa: E402

MODELS = {"resnet20": {}, "vgg16": {"width_mult": 0.5}, "vit": {}}
SHAPE = (1, 28, 28)


def variants(name: str, kwargs: dict, keeps, rounds) -> dict:
    torch.manual_seed(0)
    dense = model_lib.create(name, num_classes=10, in_channels=1, image_size=28, **kwargs).eval()
    out = {"dense": dense}
    example = torch.randn(1, *SHAPE)
    for keep in keeps:
        for r in rounds:
            out[f"keep {keep:g}, round_to {r}"] = tp_prune(dense, example, "magnitude", False, 1 - keep,
                                                           round_to=r if r > 1 else None)
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--keep", default="0.4,0.5,0.6,0.75", help="fraction of every layer's channels kept")
    p.add_argument("--round", default="1,8,16", help="kept widths rounded to multiples of these")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--rounds", type=int, default=20, help="interleaved timing rounds")
    args = p.parse_args()
    torch.set_num_threads(1)
    keeps = [float(k) for k in args.keep.split(",")]
    rounds = [int(r) for r in args.round.split(",")]
    example = torch.randn(1, *SHAPE)
    result = {"channel_block": channel_block(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
              "settings": vars(args), "models": {}}
    for name in args.models.split(","):
        named = variants(name, MODELS[name], keeps, rounds)
        with tempfile.TemporaryDirectory() as folder:
            times = side_by_side(export_all(named, Path(folder), SHAPE), rounds=args.rounds)
        dense_macs = macs(named["dense"], example).dense
        rows = {}
        for label, model in named.items():
            m = macs(model, example).dense
            t = times[label]
            row = {"macs": m, "mac_ratio": dense_macs / m, "ms_b1": t["ms_b1"], "ms_b32": t["ms_b32"],
                   "speedup_b1": t["speedup_b1"], "speedup_b32": t["speedup_b32"],
                   "onnx_bytes": t["onnx_bytes"]}
            row["per_mac_b1"] = row["speedup_b1"] / row["mac_ratio"]
            row["per_mac_b32"] = row["speedup_b32"] / row["mac_ratio"]
            rows[label] = row
            print(name, label, {k: round(v, 3) for k, v in row.items()}, flush=True)
        result["models"][name] = rows
    save("aligned_widths", result, render(result))


def render(result: dict) -> str:
    lines = ["### Speed-up per MAC saved depends on kept-width alignment (ONNX Runtime, 1 thread)", "",
             f"Uniform Torch-Pruning of random-weight models at 28 px (`benchmarks/aligned_widths.py`); this CPU's "
             f"channel block (`channel_block()`) is {result['channel_block']} ({result['cpu_capability']}). "
             "Speed-up per MAC saved = speed-up ÷ MAC ratio; all timings interleaved in one run.", "",
             "| model | keep | widths multiple of | MACs ÷ | speed-up b1 | speed-up b32 | per MAC b1 | per MAC b32 |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    summary = {}
    for name, rows in result["models"].items():
        for label, r in rows.items():
            if label == "dense":
                continue
            keep, rnd = label.replace("keep ", "").split(", round_to ")
            lines.append(f"| {name} | {keep} | {rnd} | {r['mac_ratio']:.2f} | {r['speedup_b1']:.2f}x | "
                         f"{r['speedup_b32']:.2f}x | {r['per_mac_b1']:.2f} | {r['per_mac_b32']:.2f} |")
            summary.setdefault(int(rnd), []).append(r["per_mac_b1"])
    lines += ["", "Median speed-up per MAC saved at batch 1 over all models and keep fractions: " + "; ".join(
        f"widths multiple of {r}: {statistics.median(v):.2f}" for r, v in sorted(summary.items())) + "."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()

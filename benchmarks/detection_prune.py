"""A detector pruned structurally under a latency budget in one ``edgeprune.prune`` call and exported to ONNX with
parity: a user's own model with its own loss (benchmarks/griddet.py) or a library detector, on mnist-det.

    python benchmarks/detection_prune.py --model user [--budget latency<=60%] [--limit 3000] [--epochs 8]
    python benchmarks/detection_prune.py --model yolo:yolov8n

The input model is trained by the script (Detection task, the user's loss for ``user``); then
``edgeprune.prune(model, data, task=task, method="mix_and_match", granularity="channel", budget=BUDGET)`` — every
candidate calibrated to the latency budget measured side by side with the input model in ONNX Runtime, fine-tuned
with the same recipe — and the chosen model is exported to ONNX (parity checked on every output of its dense part)
and evaluated there with the task's mAP. One seed: a demonstration of the call, not a comparison.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import edgeprune  # noqa: E402
from common import save, shared_data_dir  # noqa: E402
from edgeprune import data as data_lib  # noqa: E402
from edgeprune import models, tasks  # noqa: E402
from edgeprune.export.onnx import export_verified  # noqa: E402
from edgeprune.train import TrainConfig, fit  # noqa: E402
from griddet import GridDet, grid_loss  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="user", help="user (benchmarks/griddet.py with its own loss) or a model spec")
    p.add_argument("--budget", default="latency<=60%")
    p.add_argument("--limit", type=int, default=3000, help="mnist-det train+val canvases")
    p.add_argument("--test-limit", type=int, default=500)
    p.add_argument("--epochs", type=int, default=8, help="dense training epochs")
    p.add_argument("--finetune", type=int, default=3, help="fine-tune epochs of every candidate")
    p.add_argument("--strategies", default="balanced,late_heavy")
    args = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    root = shared_data_dir()
    if root is None:
        sys.exit("MNIST not found: set EDGEPRUNE_DATA")
    data = data_lib.load("mnist-det", root=root, limit=args.limit, test_limit=args.test_limit)
    user = args.model == "user"
    task = tasks.Detection(loss_fn=grid_loss) if user else tasks.Detection()
    model = GridDet() if user else models.create(args.model, num_classes=data.num_classes, in_channels=1, image_size=data.image_size)
    recipe = TrainConfig(epochs=args.epochs, lr=2e-3, optimizer="adamw", weight_decay=0.01, batch_size=32, warmup_epochs=0.3)
    started = time.perf_counter()
    dense_fit = fit(model, data.train, data.val, recipe, task=task, progress=False)
    dense_seconds = time.perf_counter() - started
    pruned = edgeprune.prune(model, data, task=task, method="mix_and_match", granularity="channel", budget=args.budget,
                             finetune={"epochs": args.finetune, "lr": 1e-3, "optimizer": "adamw", "weight_decay": 0.01,
                                       "batch_size": 32},
                             criteria=["magnitude"], strategies=args.strategies.split(","), progress=True)
    x = next(iter(data_lib.make_loader(data.test, 16)))[0]
    with tasks.using(task), tempfile.TemporaryDirectory() as tmp:
        info = export_verified(pruned.model, Path(tmp) / "model.onnx", x)  # the dense part: decoding and NMS stay in Python
    record, dense = pruned.record, pruned.dense
    result = {"model": args.model, "budget": args.budget, "data": data.describe(), "dense_epochs": args.epochs,
              "finetune_epochs": args.finetune, "dense_train_seconds": dense_seconds,
              "dense_history": [h.get("val_map") for h in dense_fit.history],
              "dense": {k: dense[k] for k in ("val_map", "test_map", "test_map50", "test_map_ci", "params", "macs")},
              "chosen": {k: record.get(k) for k in ("id", "val_map", "test_map", "test_map50", "test_map_ci", "params", "macs",
                                                   "budget_achieved", "speedup_b1", "speedup_spread_b1")},
              "candidates": [{k: c.get(k) for k in ("id", "status", "val_map", "budget_achieved", "error")} for c in pruned.candidates],
              "onnx": {"max_abs_diff": info["max_abs_diff"], "tolerance": info["tolerance"], "bytes": info["bytes"]}}
    name = "detection_prune_" + ("user" if user else args.model.split(":")[-1])
    save(name, result, render(result))
    print(render(result))


def render(r: dict) -> str:
    d, c = r["dense"], r["chosen"]
    pct = lambda v: f"{100 * v:.1f}"  # noqa: E731
    ci = lambda v: f"[{pct(v[0])}, {pct(v[1])}]" if v else ""  # noqa: E731
    return "\n".join([
        f"### Detection pruned under `{r['budget']}` in one call: `{r['model']}` on mnist-det (`benchmarks/detection_prune.py`)", "",
        f"{r['data']['train']} train / {r['data']['val']} val / {r['data']['test']} test canvases; dense training "
        f"{r['dense_epochs']} epochs, every candidate fine-tuned {r['finetune_epochs']} epochs; one seed.", "",
        "| model | params | test mAP@[.5:.95] % | test mAP@.5 % | measured speed-up b1 |", "|---|---:|---:|---:|---:|",
        f"| input | {d['params']:,} | {pct(d['test_map'])} {ci(d.get('test_map_ci'))} | {pct(d['test_map50'])} | 1.00 |",
        f"| pruned ({c['id']}) | {c['params']:,} | {pct(c['test_map'])} {ci(c.get('test_map_ci'))} | {pct(c['test_map50'])} | "
        f"{c.get('speedup_b1') or float('nan'):.2f} |", "",
        f"ONNX export of the pruned model's dense part (decoding and NMS stay in the application): "
        f"{r['onnx']['bytes']:,} bytes, max |ORT − PyTorch| {r['onnx']['max_abs_diff']:.2g} over every output "
        f"(tolerance {r['onnx']['tolerance']:.2g}).",
    ])


if __name__ == "__main__":
    main()

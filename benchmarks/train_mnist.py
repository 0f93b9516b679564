"""Foundation acceptance: LeNet-5 and LeNet-300-100 for 3 epochs, the zoo ViT for 5 epochs, on MNIST.

    python benchmarks/train_mnist.py [--seeds 3] [--models lenet5,lenet300,vit]

Dense training through the same code path as `edgeprune train` (edgeprune.methods.dense.train_dense):
validation carved from the training split, best validation epoch kept, test accuracy measured once.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import save, shared_data_dir  # noqa: E402
from edgeprune import data  # noqa: E402
from edgeprune.methods.dense import train_dense  # noqa: E402
from edgeprune.train import default_config  # noqa: E402

RUNS = [("lenet5", 3, 0.988), ("lenet300", 3, 0.978), ("vit", 5, 0.97)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--models", default=",".join(r[0] for r in RUNS), help="comma-separated subset of the runs")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    root = shared_data_dir()
    if root is None:
        sys.exit("MNIST not found: set EDGEPRUNE_DATA to a folder holding mnist/")
    runs = [r for r in RUNS if r[0] in args.models.split(",")]
    rows = []
    for model, epochs, goal in runs:
        for seed in range(args.seeds):
            splits = data.load("mnist", root=root, seed=seed)
            cfg = default_config(model, epochs=epochs, seed=seed)
            with tempfile.TemporaryDirectory() as tmp:
                _, m = train_dense(model, splits, cfg, Path(tmp), progress=False, latency_batches=(1, 32))
            rows.append({
                "model": model, "seed": seed, "epochs": epochs, "goal_test_acc": goal, "val_acc": m["val_acc"],
                "test_acc": m["test_acc"], "seconds_per_epoch": m["train"]["seconds_per_epoch"], "params": m["params"],
                "macs": m["macs"], "checkpoint_bytes": m["checkpoint_bytes"], "latency_ms_b1": m["latency_ms_b1"],
                "latency_ms_b32": m["latency_ms_b32"], "config": m["config"],
            })
            print(model, seed, f"test {m['test_acc']:.4f}", f"{m['train']['seconds_per_epoch']:.1f} s/epoch", flush=True)
    lines = ["| model | epochs | seeds | test top-1 % (mean ± std) | goal % | s / epoch | params | MACs / image | ckpt bytes | latency b1 / b32 ms |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for model, epochs, goal in runs:
        rs = [r for r in rows if r["model"] == model]
        accs = [100 * r["test_acc"] for r in rs]
        std = statistics.stdev(accs) if len(accs) > 1 else 0.0
        lines.append(f"| {model} | {epochs} | {len(rs)} | {statistics.fmean(accs):.2f} ± {std:.2f} | {100 * goal:.1f} | "
                     f"{statistics.fmean(r['seconds_per_epoch'] for r in rs):.1f} | {rs[0]['params']:,} | {rs[0]['macs']:,} | "
                     f"{rs[0]['checkpoint_bytes']:,} | {rs[0]['latency_ms_b1']:.2f} / {rs[0]['latency_ms_b32']:.2f} |")
    recipes = [f"{model}: {c['optimizer']} lr {c['lr']:g}, warm-up {c['warmup_epochs']:g} epoch(s), {c['schedule']}, "
               f"weight decay {c['weight_decay']:g}, batch {c['batch_size']}"
               for model, c in {r["model"]: r["config"] for r in rows}.items()]
    text = ("### Dense training on MNIST (foundation acceptance)\n\n" + "\n".join(lines)
            + "\n\nRecipes (`edgeprune.train.default_config`): " + "; ".join(recipes)
            + f". {torch.get_num_threads()} torch thread(s); the best validation epoch is kept, test measured once.")
    save("train_mnist", {"runs": rows}, text)
    print("\n".join(lines))


if __name__ == "__main__":
    main()

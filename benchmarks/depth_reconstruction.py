"""Reconstruction after removed residual blocks (issue 30): test accuracy with no fine-tune, paired over seeds.

For each model trained dense on MNIST here and each depth (residual blocks of least influence removed,
``drop_blocks=[d]``, under ``macs<=90%``), structured pruning through the public call on 1,024 unlabelled training
images, no fine-tune, three arms on the same removal:

- ``none``: ``reconstruct=False``;
- ``channels``: reconstruction of the consumers of removed channels only (what reconstruction did before the layers
  after a removed block were re-fitted too; an ablation, by patching that step out);
- ``full``: ``reconstruct=True``, every conv/linear layer after a removed block re-fitted as well.

    python benchmarks/depth_reconstruction.py --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from unittest import mock

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import edgeprune  # noqa: E402
from common import RESULTS, SECTIONS, save, shared_data_dir  # noqa: E402
from edgeprune import data as data_lib  # noqa: E402
from edgeprune.methods import structured_mam  # noqa: E402
from edgeprune.methods.dense import train_dense  # noqa: E402
from edgeprune.report.stats import t_interval  # noqa: E402
from edgeprune.tasks import Classification  # noqa: E402
from edgeprune.train import default_config  # noqa: E402
from edgeprune.utils.io import write_text  # noqa: E402

ARMS = ("none", "channels", "full")
LABELS = {"resnet20": "ResNet-20", "vit": "zoo ViT"}
BUDGET = "macs<=90%"
SEARCH = dict(criteria=["magnitude"], strategies=["balanced"], deploy_metrics=False, latency_aware=False, finetune=0)


def run_arm(arm: str, dense, images: torch.Tensor, depth: int, test) -> dict:
    started = time.perf_counter()
    patch = (mock.patch.object(structured_mam, "after_blocks", lambda state, pruned, d: [])
             if arm == "channels" else contextlib.nullcontext())
    with warnings.catch_warnings(), patch:
        warnings.simplefilter("ignore")
        pruned = edgeprune.prune(dense, images, method="structured", budget=BUDGET, drop_blocks=[depth],
                                 reconstruct=arm != "none", **SEARCH)
    rec = pruned.decided.get("reconstruction", {})
    return {"test_acc": Classification().primary(pruned.model, test), "macs": pruned.record.get("macs"),
            "layers": rec.get("layers", 0), "seconds": round(time.perf_counter() - started, 1)}


def one_model(spec: str, seed: int, args) -> dict:
    root = shared_data_dir()
    splits = data_lib.load("mnist", root=root, limit=args.limit, seed=seed)
    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory() as work:
        dense, _ = train_dense(spec, splits, default_config(spec, epochs=args.dense_epochs[spec]), Path(work),
                               progress=False)
    dense.eval()
    order = torch.randperm(len(splits.train), generator=torch.Generator().manual_seed(seed))[:1024]
    images = torch.stack([splits.train[int(i)][0] for i in order])
    entry = {"dense_test_acc": Classification().primary(dense, splits.test), "depths": {}}
    for depth in args.depths:
        entry["depths"][str(depth)] = {arm: run_arm(arm, dense, images, depth, splits.test) for arm in ARMS}
        print(spec, seed, depth, entry["depths"][str(depth)], flush=True)
    return entry


def _cell(values: list[float]) -> str:
    if len(values) < 2:
        return f"{statistics.mean(values):.2f}"
    mean, lo, hi = t_interval(values)
    return f"{mean:.2f} [{lo:.2f}, {hi:.2f}]"


def render(result: dict) -> str:
    seeds = result["seeds"]
    lines = [f"### Reconstruction after removed residual blocks ({len(seeds)} seed(s), no fine-tune)", "",
             f"Dense models trained on {result['limit']:,} MNIST images by this script; each loses its `d` residual "
             f"blocks of least influence (`drop_blocks=[d]`, `{BUDGET}`, channels as the budget needs), pruned by "
             "`edgeprune.prune(..., method=\"structured\", finetune=0)` on 1,024 unlabelled training images. Test "
             "accuracy (%, MNIST test), mean over seeds with its 95 % t-interval; the gain is paired per seed "
             "(full − none). `channels`: only the consumers of removed channels re-fitted (the ablation).", "",
             "| model | blocks removed | MACs (M) | dense | none | channels | full | gain full − none | layers fitted |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for spec, runs in result["models"].items():
        dense = [100 * r["dense_test_acc"] for r in runs]
        for depth in runs[0]["depths"]:
            arms = {a: [100 * r["depths"][depth][a]["test_acc"] for r in runs] for a in ARMS}
            gain = [f - n for f, n in zip(arms["full"], arms["none"])]
            macs = statistics.mean(r["depths"][depth]["full"]["macs"] for r in runs) / 1e6
            layers = statistics.mean(r["depths"][depth]["full"]["layers"] for r in runs)
            lines.append(f"| {LABELS[spec]} | {depth} | {macs:.1f} | {_cell(dense)} | {_cell(arms['none'])} | "
                         f"{_cell(arms['channels'])} | {_cell(arms['full'])} | {_cell(gain)} | {layers:.0f} |")
    if all(r["depths"][d]["channels"]["layers"] == 0 for runs in result["models"].values() for r in runs
           for d in r["depths"]):
        lines += ["", "Under this budget the removed blocks alone meet it: no channel is removed, so reconstruction of "
                      "the consumers of removed channels alone has nothing to re-fit (`channels` = `none`)."]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--models", default="resnet20")
    p.add_argument("--depths", default="1,2,3")
    p.add_argument("--limit", type=int, default=6000, help="MNIST train+val images of the dense training")
    p.add_argument("--resnet-epochs", type=int, default=3)
    p.add_argument("--vit-epochs", type=int, default=10)
    p.add_argument("--name", default="depth_reconstruction")
    p.add_argument("--render", action="store_true", help="rewrite the section from results/NAME.json")
    args = p.parse_args()
    if args.render:
        result = json.loads((RESULTS / f"{args.name}.json").read_text())
        return write_text(SECTIONS / f"{args.name}.md", render(result) + "\n")
    if shared_data_dir() is None:
        sys.exit("MNIST not found: set EDGEPRUNE_DATA")
    torch.set_num_threads(1)
    args.depths = [int(d) for d in args.depths.split(",")]
    args.dense_epochs = {"resnet20": args.resnet_epochs, "vit": args.vit_epochs}
    seeds = [int(s) for s in args.seeds.split(",")]
    result = {"seeds": seeds, "limit": args.limit, "budget": BUDGET, "dense_epochs": args.dense_epochs, "models": {}}
    for spec in args.models.split(","):
        result["models"][spec] = [one_model(spec, seed, args) for seed in seeds]
    save(args.name, result, render(result))


if __name__ == "__main__":
    main()

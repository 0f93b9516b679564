"""Reconstruction against none at the same removal (issue 30): test accuracy with no fine-tune, paired over seeds.

For each model trained dense on MNIST here, each budget and each depth (residual blocks of least influence removed,
``drop_blocks=[d]``; channels as the budget needs), structured pruning through the public call on 1,024 unlabelled
training images, no fine-tune, one criterion and one strategy (so one candidate: the same removal in every arm):

- ``none``: ``reconstruct=False``;
- ``channels``: reconstruction of the consumers of removed channels only (what reconstruction did before the layers
  after a removed block were re-fitted too; an ablation, by patching that step out; only where blocks are removed);
- ``full``: ``reconstruct=True``, every conv/linear layer after a removed block re-fitted as well.

    python benchmarks/depth_reconstruction.py --seeds 0,1,2                       # blocks removed, macs<=90%
    python benchmarks/depth_reconstruction.py --depths 0 --budgets macs<=67%,macs<=50% \
        --models resnet20,vgg16,vit --name recon_paired                           # channels removed only
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
from edgeprune.errors import ConfigError  # noqa: E402
from edgeprune.measure.budget import parse  # noqa: E402
from edgeprune.methods import structured_mam  # noqa: E402
from edgeprune.methods.dense import train_dense  # noqa: E402
from edgeprune.report.stats import t_interval  # noqa: E402
from edgeprune.tasks import Classification  # noqa: E402
from edgeprune.train import default_config  # noqa: E402
from edgeprune.utils.io import write_text  # noqa: E402

ARMS = ("none", "channels", "full")
LABELS = {"resnet20": "ResNet-20", "vgg16": "VGG-16/2", "vit": "zoo ViT"}
MODEL_ARGS = {"vgg16": {"width_mult": 0.5}}
SEARCH = dict(criteria=["magnitude"], strategies=["balanced"], deploy_metrics=False, latency_aware=False, finetune=0)


def run_arm(arm: str, dense, images: torch.Tensor, budget: str, depth: int, test) -> dict:
    started = time.perf_counter()
    patch = (mock.patch.object(structured_mam, "after_blocks", lambda state, pruned, d: [])
             if arm == "channels" else contextlib.nullcontext())
    with warnings.catch_warnings(), patch:
        warnings.simplefilter("ignore")
        pruned = edgeprune.prune(dense, images, method="structured", budget=budget, drop_blocks=[depth],
                                 reconstruct=arm != "none", **SEARCH)
    rec = pruned.decided.get("reconstruction", {})
    return {"test_acc": Classification().primary(pruned.model, test), "macs": pruned.record.get("macs"),
            "params": pruned.record.get("params"), "layers": rec.get("layers", 0), "seconds": round(time.perf_counter() - started, 1)}


def one_model(spec: str, seed: int, args) -> dict:
    root = shared_data_dir()
    splits = data_lib.load("mnist", root=root, limit=args.limit, seed=seed)
    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory() as work:
        dense, _ = train_dense(spec, splits, default_config(spec, epochs=args.dense_epochs[spec]), Path(work),
                               model_kwargs=MODEL_ARGS.get(spec, {}), progress=False)
    dense.eval()
    order = torch.randperm(len(splits.train), generator=torch.Generator().manual_seed(seed))[:1024]
    images = torch.stack([splits.train[int(i)][0] for i in order])
    entry = {"dense_test_acc": Classification().primary(dense, splits.test), "depths": {}}
    for budget in args.budgets:
        for depth in args.depths:
            arms = ARMS if depth else ("none", "full")  # no block removed: channels = full
            key = _key(budget, depth, len(args.budgets))
            entry["depths"][key] = {arm: run_arm(arm, dense, images, budget, depth, splits.test) for arm in arms}
            print(spec, seed, key, entry["depths"][key], flush=True)
    return entry


def _key(budget: str, depth: int, budgets: int) -> str:
    """A row's key in the results: the depth alone when there is one budget (the first runs' format)."""
    return str(depth) if budgets == 1 else f"{budget} {depth}"


def _cell(values: list[float]) -> str:
    if len(values) < 2:
        return f"{statistics.mean(values):.2f}"
    mean, lo, hi = t_interval(values)
    return f"{mean:.2f} [{lo:.2f}, {hi:.2f}]"


def render(result: dict) -> str:
    budgets = result.get("budgets", [result.get("budget")])
    counts = sorted({len(runs) for runs in result["models"].values()})
    lines = [f"### Reconstruction against none at the same removal ({'/'.join(map(str, counts))} seed(s), no fine-tune)", "",
             f"Dense models trained on {result['limit']:,} MNIST images by this script "
             f"({', '.join(f'{LABELS[m]} {e} epochs' for m, e in result['dense_epochs'].items() if m in result['models'])}); "
             "each loses its `d` residual blocks of least influence (`drop_blocks=[d]`) and the channels the budget "
             "needs, pruned by `edgeprune.prune(..., method=\"structured\", finetune=0)` on 1,024 unlabelled training "
             "images, one criterion and one strategy: every arm removes the same channels. Test accuracy (%, MNIST "
             "test), mean over seeds with its 95 % t-interval; the gain is paired per seed (full − none). `channels`: "
             "only the consumers of removed channels re-fitted (the ablation; where blocks are removed).", "",
             "| model | budget | blocks removed | MACs (M) | dense | none | channels | full | gain full − none | "
             "layers fitted |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    differ = []
    for spec, runs in result["models"].items():
        dense = [100 * r["dense_test_acc"] for r in runs]
        for key in runs[0]["depths"]:
            budget, depth = key.split(" ") if " " in key else (budgets[0], key)
            arms = {a: [100 * r["depths"][key][a]["test_acc"] for r in runs] for a in ARMS if a in runs[0]["depths"][key]}
            gain = [f - n for f, n in zip(arms["full"], arms["none"])]
            macs = statistics.mean(r["depths"][key]["full"]["macs"] for r in runs) / 1e6
            layers = statistics.mean(r["depths"][key]["full"]["layers"] for r in runs)
            differ += [f"{LABELS[spec]} `{budget}` d={depth}" for r in runs
                       if r["depths"][key]["none"]["macs"] != r["depths"][key]["full"]["macs"]]
            channels = _cell(arms["channels"]) if "channels" in arms else "–"
            lines.append(f"| {LABELS[spec]} | `{budget}` | {depth} | {macs:.1f} | {_cell(dense)} | {_cell(arms['none'])} | "
                         f"{channels} | {_cell(arms['full'])} | {_cell(gain)} | {layers:.0f} |")
    ablations = [arms["channels"] for runs in result["models"].values() for r in runs for arms in r["depths"].values()
                 if "channels" in arms]
    if ablations and all(a["layers"] == 0 for a in ablations):
        lines += ["", "Where blocks are removed, the removed blocks alone meet the budget: no channel is removed, so "
                      "reconstruction of the consumers of removed channels alone has nothing to re-fit "
                      "(`channels` = `none`)."]
    if differ:
        lines += ["", f"Not the same removal (MACs differ between the arms): {', '.join(differ)}."]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--models", default="resnet20")
    p.add_argument("--depths", default="1,2,3", help="residual blocks removed (0: channels only)")
    p.add_argument("--budgets", default="macs<=90%", help="comma-separated")
    p.add_argument("--limit", type=int, default=6000, help="MNIST train+val images of the dense training")
    p.add_argument("--resnet-epochs", type=int, default=3)
    p.add_argument("--vgg-epochs", type=int, default=2)
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
    args.budgets = args.budgets.split(",")
    for budget in args.budgets:
        try:
            parse(budget)  # a bad budget fails here, before any training
        except ConfigError as exc:
            p.error(f"--budgets: {exc}")
    unknown = [m for m in args.models.split(",") if m not in LABELS]
    if unknown:
        p.error(f"--models: unknown {', '.join(unknown)} (allowed: {', '.join(LABELS)})")
    args.dense_epochs = {"resnet20": args.resnet_epochs, "vgg16": args.vgg_epochs, "vit": args.vit_epochs}
    seeds = [int(s) for s in args.seeds.split(",")]
    result = {"seeds": seeds, "limit": args.limit, "budgets": args.budgets, "dense_epochs": args.dense_epochs,
              "models": {}}
    for spec in args.models.split(","):
        result["models"][spec] = []
        for seed in seeds:  # saved after every seed, so a stopped run keeps what it finished
            result["models"][spec].append(one_model(spec, seed, args))
            save(args.name, result, render(result))


if __name__ == "__main__":
    main()

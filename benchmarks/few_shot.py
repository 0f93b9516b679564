"""Pruning with few or no images (issue 30): reconstruction and distillation on unlabelled inputs, and data-free.

For each model (trained dense on MNIST here) and each MACs budget, structured Mix-and-Match through the public call
``edgeprune.prune(dense, data, method="structured", budget=...)``, with:

- ``none``: N unlabelled training images, no reconstruction, no fine-tune (the removal alone);
- ``recon``: the same images, reconstruction (the default without labels), no fine-tune;
- ``kd``: no reconstruction, then distillation from the dense model on the same images;
- ``recon+kd``: reconstruction, then the same distillation;
- ``recon+kd-256``: as ``recon+kd`` with 256 images;
- ``free``: data-free (CNNs with batch norm): 1,024 inputs synthesised from the batch-norm statistics, what ``data=None``
  does (made once per model and seed), reconstruction then distillation on them;
- ``labelled``: the full labelled training split and its fine-tune (the usual call), for reference;
- ``labelled+recon``: the same with reconstruction before the fine-tune (seeds run after it was added);
- ``tp+kd``: Torch-Pruning at the same measured budget (group magnitude uniform and global, Taylor global on the
  dense model's labels of the same images; the variant with the best validation agreement after distillation), then
  the same distillation on the same 1,024 images; ``tp_before_kd`` in its cell is the chosen variant before it;
- ``scratch``: the same architecture made narrower (the widest of width x0.95, x0.90, ... that fits the budget as
  measured), trained from scratch on the full labelled split for the dense epochs plus the labelled fine-tune's.

Test accuracy is measured once per model on the MNIST test set (the unlabelled arms never see a label). Results:
``results/few_shot_s<seed>.json``; ``--collect`` combines the seeds into ``results/few_shot.json`` and the table.

    python benchmarks/few_shot.py --seed 0
    python benchmarks/few_shot.py --collect
    python benchmarks/few_shot.py --seed 0 --budgets latency<=67%,latency<=50% --name few_shot_latency
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import edgeprune  # noqa: E402
from common import RESULTS, save, shared_data_dir  # noqa: E402
from edgeprune import data as data_lib  # noqa: E402
from edgeprune import models  # noqa: E402
from edgeprune.data import inversion  # noqa: E402
from edgeprune.errors import ConfigError  # noqa: E402
from edgeprune.measure import macs  # noqa: E402
from edgeprune.measure.budget import parse  # noqa: E402
from edgeprune.methods.base import get_method  # noqa: E402
from edgeprune.methods.dense import train_dense  # noqa: E402
from edgeprune.report.stats import t_interval  # noqa: E402
from edgeprune.runs import unlabelled  # noqa: E402
from edgeprune.runs.inputs import train_config  # noqa: E402
from edgeprune.scores import calibration_batches  # noqa: E402
from edgeprune.tasks import Classification  # noqa: E402
from edgeprune.train import default_config, fit  # noqa: E402
from edgeprune.utils.io import write_json  # noqa: E402
from structured import TP_MAX_RATIO, calibrate_tp, latency_fits  # noqa: E402

MODELS = {"resnet20": {}, "vgg16": {"width_mult": 0.5}, "vit": {}}
LABELS = {"resnet20": "ResNet-20", "vgg16": "VGG-16/2", "vit": "zoo ViT"}
BUDGETS = ("macs<=67%", "macs<=50%")  # 1.5x and 2x; --budgets latency<=67%,latency<=50% for measured speed-ups
ARMS = ("none", "recon", "kd", "recon+kd", "recon+kd-256", "free", "labelled", "labelled+recon", "tp+kd", "scratch")
TP_VARIANTS = ("magnitude_uniform", "magnitude_global", "taylor_global")
SCALES = [round(1 - 0.05 * i, 2) for i in range(1, 15)]  # the scratch model's width, widest first: x0.95 ... x0.30
SEARCH = dict(criteria=["magnitude"], strategies=["balanced", "late_heavy"], deploy_metrics=False, latency_aware=False)


def _images(splits, n: int, seed: int) -> torch.Tensor:
    order = torch.randperm(len(splits.train), generator=torch.Generator().manual_seed(seed))[:n]
    return torch.stack([splits.train[int(i)][0] for i in order])


def _has_batch_norm(model) -> bool:
    return any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())


def run_arm(arm: str, dense, splits, budget: str, images: dict, kd_epochs: int, ft_epochs: int, spec: str = "",
            epochs: int = 0, seed: int = 0, search: dict | None = None):
    if arm == "tp+kd":
        return run_tp(dense, splits, budget, images[1024], kd_epochs, seed)
    if arm == "scratch":
        return run_scratch(spec, dense, splits, budget, epochs, seed)
    labelled = arm.startswith("labelled")
    data = splits if labelled else {"free": images.get("free"), "recon+kd-256": images[256]}.get(arm, images[1024])
    if data is None:
        return None
    finetune = 0 if arm in ("none", "recon") else (ft_epochs if labelled else {"epochs": kd_epochs, "batch_size": 64})
    reconstruct = arm not in ("none", "kd", "labelled")
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pruned = edgeprune.prune(dense, data, method="structured", budget=budget, finetune=finetune, reconstruct=reconstruct,
                                 **{**SEARCH, **(search or {})})
    rec = pruned.decided.get("reconstruction", {})
    return {"test_acc": Classification().primary(pruned.model, splits.test), "macs": pruned.record.get("macs"),
            "budget_achieved": pruned.record.get("budget_achieved"),
            "params": pruned.record.get("params"), "seconds": round(time.perf_counter() - started, 1),
            "val": pruned.record.get("val_agree", pruned.record.get("val_acc")),
            "reconstruction": {k: rec[k] for k in ("layers", "median_error_before", "median_error_after") if k in rec}}


def fits_of(dense, budget_text: str, shape: tuple):
    """Does a model fit the budget, measured as ours measures it (MACs, or latency beside the dense model)."""
    budget, example = parse(budget_text), torch.zeros(1, *shape)
    if budget.kind == "macs":
        limit = float(budget) * macs(dense, example).dense
        return lambda model, **_: macs(model, example).dense <= limit  # (a timing's options do not apply)
    return latency_fits(dense, shape, budget, None)  # relative budgets: the paired ratio


def run_tp(dense, splits, budget: str, images: torch.Tensor, kd_epochs: int, seed: int) -> dict:
    """Torch-Pruning's variants at the budget, each distilled as ours are on the same images; the best by validation."""
    task = Classification()
    data, agreement = unlabelled.labelled_by_model(dense, images, task)
    recipe = train_config(get_method("structured"), dense, {"epochs": kd_epochs, "batch_size": 64}).replace(seed=seed)
    shape = tuple(images.shape[1:])
    fits, batches = fits_of(dense, budget, shape), calibration_batches(data.train, 4, 32)
    variants = {}
    for variant in TP_VARIANTS:
        importance, scope = variant.split("_")
        started = time.perf_counter()
        model, ratio, met = calibrate_tp(dense, torch.zeros(1, *shape), importance, scope == "global", fits, batches,
                                         task=task, max_ratio=TP_MAX_RATIO, layer_cap=TP_MAX_RATIO)
        before = task.primary(model, splits.test)
        fit(model, data.train, data.val, recipe, teacher=dense, task=agreement, progress=False)
        model.eval()
        variants[variant] = {"test_acc": task.primary(model, splits.test), "tp_before_kd": before,
                             "val": agreement.primary(model, data.val), "ratio": ratio, "budget_met": met,
                             "macs": macs(model, torch.zeros(1, *shape)).dense,
                             "seconds": round(time.perf_counter() - started, 1)}
        print("  TP", variant, variants[variant], flush=True)
    chosen = max(variants, key=lambda v: (variants[v]["budget_met"], variants[v]["val"]))
    return {**variants[chosen], "variant": chosen, "variants": variants, "reconstruction": {}}


def run_scratch(spec: str, dense, splits, budget: str, epochs: int, seed: int) -> dict:
    """The same architecture made narrower to the budget, trained from scratch with every label."""
    shape = tuple(splits.input_shape)
    fits = fits_of(dense, budget, shape)
    started = time.perf_counter()
    for scale in SCALES:
        kwargs = narrower(spec, scale)
        if fits(models.create(spec, num_classes=splits.num_classes, in_channels=shape[0], image_size=shape[-1], **kwargs)):
            break
    else:
        return None
    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory() as work:
        model, _ = train_dense(spec, splits, default_config(spec, epochs=epochs), Path(work), model_kwargs=kwargs,
                               progress=False)
    model.eval()
    return {"test_acc": Classification().primary(model, splits.test), "scale": scale, "model_kwargs": kwargs,
            "epochs": epochs, "macs": macs(model, torch.zeros(1, *shape)).dense,
            "seconds": round(time.perf_counter() - started, 1), "reconstruction": {}}


def narrower(spec: str, scale: float) -> dict:
    """The model's build arguments with its width times ``scale`` (the ViT: its dimension, kept a multiple of its 4
    heads)."""
    if spec == "vit":
        return {"dim": 4 * max(1, round(16 * scale))}
    return {**MODELS[spec], "width_mult": MODELS[spec].get("width_mult", 1.0) * scale}


def one_seed(args) -> None:
    torch.set_num_threads(1)
    root = shared_data_dir()
    if root is None:
        sys.exit("MNIST not found: set EDGEPRUNE_DATA")
    splits = data_lib.load("mnist", root=root, limit=args.limit, seed=args.seed)
    result = {"seed": args.seed, "limit": args.limit, "dense_epochs": args.dense_epochs, "kd_epochs": args.kd_epochs,
              "ft_epochs": args.ft_epochs, "budgets": args.budgets, "models": {}}
    search = {"round_to": args.round_to, "drop_blocks": args.drop_blocks}
    result["search"] = {**SEARCH, **search}
    for spec in args.models.split(","):
        torch.manual_seed(args.seed)
        with tempfile.TemporaryDirectory() as work:
            dense, _ = train_dense(spec, splits, default_config(spec, epochs=args.dense_epochs), Path(work),
                                   model_kwargs=MODELS[spec], progress=False)
        dense.eval()
        images = {n: _images(splits, n, args.seed) for n in (256, 1024)}
        started = time.perf_counter()
        if _has_batch_norm(dense) and "free" in args.arms:
            images["free"] = inversion.synthesize(dense, 1024, (1, 28, 28), seed=args.seed)
        entry = {"dense_test_acc": Classification().primary(dense, splits.test),
                 "synthesis_seconds": round(time.perf_counter() - started, 1) if "free" in images else None, "arms": {}}
        result["models"][spec] = entry
        for budget in args.budgets:
            for arm in args.arms:
                try:
                    cell = run_arm(arm, dense, splits, budget, images, args.kd_epochs, args.ft_epochs, spec,
                                   args.dense_epochs + args.ft_epochs, args.seed, search)
                except ConfigError as exc:  # an unreachable budget: said in the results, the other arms go on
                    cell = {"error": str(exc)}
                entry["arms"][f"{budget} {arm}"] = cell
                print(spec, budget, arm, cell, flush=True)
                write_json(RESULTS / f"{args.name}_s{args.seed}.json", result)
    save(f"{args.name}_s{args.seed}", result, render([result]))


def render(runs: list[dict]) -> str:
    first = runs[0]
    seeds = {spec: sum(spec in r["models"] for r in runs) for r in runs for spec in r["models"]}
    lines = [f"### Pruning with few or no images: structured Mix-and-Match, MNIST (seeds: "
             f"{', '.join(f'{LABELS[s]} {n}' for s, n in seeds.items())})", "",
             f"Dense models trained {first['dense_epochs']} epochs on {first['limit']:,} MNIST train+val images. Budgets "
             f"{' and '.join(f'`{b}`' for b in first['budgets'])} (1.5× and 2×{BY.get(first['budgets'][0].split('<')[0], '')}). Unlabelled arms: the images' labels are never read; the dense model labels "
             f"them, a fifth is held out for selection; distillation {first['kd_epochs']} epochs. `labelled`: the full "
             f"labelled split, {first['ft_epochs']} fine-tune epoch(s). Test accuracy on the 10,000 MNIST test images, "
             "mean over seeds with its 95 % t-interval, and the share of the dense model's accuracy kept; the last two "
             "columns are the first seed's. Arms added after a seed ran have fewer seeds."
             + (" `tp+kd`: Torch-Pruning at the same measured budget (group magnitude uniform or global, or Taylor "
                "global on the dense model's labels; the best by validation agreement), then the same distillation on "
                "the same 1,024 images." if any("tp+kd" in k for r in runs for m in r["models"].values() for k in m["arms"])
                else "")
             + (f" `scratch`: the same architecture made narrower until it fits the budget as measured, trained from "
                f"scratch for {first['dense_epochs'] + first['ft_epochs']} epochs on the full labelled split (it sees "
                "every label, the unlabelled arms none)."
                if any("scratch" in k for r in runs for m in r["models"].values() for k in m["arms"]) else ""), "",
             "| model | budget | arm | test accuracy (%) | kept of dense | layers refitted | median error before → after |",
             "|---|---|---|---:|---:|---:|---|"]
    for spec in first["models"]:
        dense = [r["models"][spec]["dense_test_acc"] for r in runs if spec in r["models"]]
        shaky = " (not converged: its rows say nothing)" if statistics.mean(dense) < CONVERGED else ""
        lines.append(f"| {LABELS[spec]} | – | dense{shaky} | {_cell(dense)} | 100 % | – | – |")
        keys = dict.fromkeys(k for r in runs if spec in r["models"] for k in r["models"][spec]["arms"])
        for key in keys:
            pairs = [(r["models"][spec]["arms"][key], r["models"][spec]["dense_test_acc"]) for r in runs
                     if spec in r["models"] and _ok(r["models"][spec]["arms"], key)]
            budget, arm = key.split(" ", 1)
            if not pairs:
                errors = [r["models"][spec]["arms"][key]["error"] for r in runs if spec in r["models"]
                          and "error" in (r["models"][spec]["arms"].get(key) or {})]
                if errors:
                    lines.append(f"| {LABELS[spec]} | `{budget}` | {arm} | not met: {errors[0]} | | | |")
                continue
            cells = [c for c, _ in pairs]
            acc = [c["test_acc"] for c in cells]
            kept = statistics.mean(c["test_acc"] / d for c, d in pairs)
            rec = cells[0]["reconstruction"]
            fit = (f"{rec['median_error_before']:.3f} → {rec['median_error_after']:.3f}" if rec.get("layers") else "–")
            lines.append(f"| {LABELS[spec]} | `{budget}` | {arm} | {_cell(acc)} | {100 * kept:.1f} % | "
                         f"{rec.get('layers', 0) or '–'} | {fit} |")
    return "\n".join(lines + [""] + goal_lines(runs))


GOALS = ((0, "recon+kd", 0.97), (0, "recon", 0.90), (1, "recon+kd", 0.95))  # (the 1.5x / 2x budget, arm, share kept)
BY = {"macs": " fewer MACs", "latency": ": ONNX Runtime latency, batch 1, one thread, measured beside the dense model"}
CONVERGED = 0.5  # a dense MNIST model below this test accuracy (chance: 0.1) is not a trained model to prune


def goal_lines(runs: list[dict]) -> list[str]:
    """The issue's goals, read off the table: share of dense accuracy kept with 1,024 unlabelled images."""
    lines = ["Goals (share of the dense model's test accuracy kept with 1,024 unlabelled images, mean over seeds):", ""]
    models = [spec for spec in runs[0]["models"]
              if statistics.mean(r["models"][spec]["dense_test_acc"] for r in runs if spec in r["models"]) >= CONVERGED]
    for which, arm, goal in GOALS:
        budget = runs[0]["budgets"][which]
        for spec in models:
            kept = [r["models"][spec]["arms"][f"{budget} {arm}"]["test_acc"] / r["models"][spec]["dense_test_acc"]
                    for r in runs if spec in r["models"] and _ok(r["models"][spec]["arms"], f"{budget} {arm}")]
            if kept:
                mean = statistics.mean(kept)
                lines.append(f"- {LABELS[spec]}, `{budget}`, {arm}: {100 * mean:.1f} % kept, goal ≥ {100 * goal:.0f} %: "
                             f"{'met' if mean >= goal else '**not met**'}.")
    gains = [(spec, b, arms[f"{b} recon"]["test_acc"] - arms[f"{b} none"]["test_acc"])
             for r in runs for spec, entry in r["models"].items() if spec in models for b in r["budgets"]
             for arms in [entry["arms"]] if _ok(arms, f"{b} recon") and _ok(arms, f"{b} none")]
    lost = ", ".join(f"{LABELS[s]} {b}" for s, b, gain in gains if gain <= 0)
    if gains:  # (runs without the recon arm have none)
        lines.append(f"- Reconstruction alone against no reconstruction at the same budget (each arm's best candidate by "
                     f"validation, so the removed channels may differ): better in {sum(g > 0 for _, _, g in gains)} of "
                     f"{len(gains)} (model, budget, seed) cases{f'; not in {lost}' if lost else ''}; {len(runs)} seed(s). "
                     "At the same removal, paired over seeds: `benchmarks/depth_reconstruction.py --name recon_paired`.")
    for spec in models:
        for budget in runs[0]["budgets"]:
            for other in ("tp+kd", "scratch"):
                arms = [r["models"][spec]["arms"] for r in runs if spec in r["models"]]
                diffs = [a[f"{budget} recon+kd"]["test_acc"] - a[f"{budget} {other}"]["test_acc"] for a in arms
                         if _ok(a, f"{budget} recon+kd") and _ok(a, f"{budget} {other}")]
                if diffs:
                    lines.append(f"- {LABELS[spec]}, `{budget}`: recon+kd − {other} = {_cell(diffs)} points of test "
                                 f"accuracy ({len(diffs)} seed(s)).")
    return lines


def _ok(arms: dict, key: str) -> dict | None:
    """The arm's cell when it ran (not an unreachable budget)."""
    cell = arms.get(key)
    return cell if cell and "test_acc" in cell else None


def _cell(values: list[float]) -> str:
    mean = 100 * statistics.mean(values)
    if len(values) < 2:
        return f"{mean:.2f}"
    _, lo, hi = t_interval([100 * v for v in values])
    return f"{mean:.2f} [{lo:.2f}, {hi:.2f}]"


def collect(name: str) -> None:
    runs = [json.loads(p.read_text()) for p in sorted(RESULTS.glob(f"{name}_s*.json"))]
    save(name, {"seeds": [r["seed"] for r in runs], "runs": runs}, render(runs))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--limit", type=int, default=6000, help="MNIST train+val images of the dense training")
    p.add_argument("--dense-epochs", type=int, default=2)
    p.add_argument("--kd-epochs", type=int, default=5, help="distillation epochs on the unlabelled images")
    p.add_argument("--ft-epochs", type=int, default=1, help="fine-tune epochs of the labelled arm")
    p.add_argument("--budgets", default=",".join(BUDGETS), help="the 1.5x and the 2x budget, comma-separated (default: MACs)")
    p.add_argument("--name", default="few_shot", help="results/NAME_s<seed>.json; --collect combines them as NAME")
    p.add_argument("--round-to", default="auto", help="ours: kept widths multiples of this (auto: the runtime's block)")
    p.add_argument("--drop-blocks", default="0", help="ours: numbers of residual blocks removed, comma-separated")
    p.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated, of {', '.join(ARMS)}")
    p.add_argument("--collect", action="store_true")
    args = p.parse_args()
    args.budgets, args.arms = args.budgets.split(","), args.arms.split(",")
    args.round_to = args.round_to if args.round_to == "auto" else int(args.round_to)
    args.drop_blocks = [int(d) for d in args.drop_blocks.split(",")]
    if set(args.arms) - set(ARMS):
        p.error(f"--arms: {', '.join(sorted(set(args.arms) - set(ARMS)))} unknown; allowed: {', '.join(ARMS)}")
    if len(args.budgets) != 2:
        p.error(f"--budgets: two budgets (1.5x, then 2x), got {len(args.budgets)}")
    for budget in args.budgets:
        try:
            parse(budget)  # a bad budget fails here, before any training
        except ConfigError as exc:
            p.error(f"--budgets: {exc}")
    if args.collect:
        return collect(args.name)
    return one_seed(args)


if __name__ == "__main__":
    main()

"""Reconvene vs unstructured PaI (UPaI) on MNIST: accuracy, size, latency, generation time.

    python benchmarks/reconvene_mnist.py            # reduced grid (about 25 min on 2 quiet cores)
    python benchmarks/reconvene_mnist.py --full     # the whole grid (hours)
    nohup python benchmarks/reconvene_mnist.py > /tmp/reconvene_mnist.log 2>&1 &

Part 1, trained (``edgeprune.methods.reconvene.run`` per setting, one run folder each, resumable): models x
sparsities p x PaI scores x seeds, Reconvene and its UPaI counterpart at the same p trained from scratch with
the same schedule. Reported per setting, paired by seed: test-accuracy difference, size ratio (UPaI ÷
Reconvene bytes of the saved dense checkpoint, and of the compressed sparse ``.epz`` artifact), torch CPU
latency speed-up at batch 1 and 32, generation time.

* default (reduced to fit ~25 min on 2 shared cores): a VGG-11-style net at 1/4 width
  (16-32-64-64-128-128-128-128, head 128) and a ResNet-20-style net at 1/2 width (8/16/32 channels); MNIST
  train+val pool limited to 6000 images (stratified, 10 % of it for validation), 1 epoch at batch 64 (the
  CNN default: SGD 0.05, warm-up, cosine), the full 10,000-image test set; p in {0.8, 0.9, 0.95, 0.98};
  SynFlow only (100 rounds; snip and magnitude are in part 2); 3 seeds.
* ``--full``: vgg11 and resnet20 at full width, all 60,000 MNIST training images, 5 epochs at batch 128,
  scores synflow, snip (1 batch of 100), magnitude.
* ``--width sqrt``: Reconvene with the sqrt width rule instead of the default density rule.

Part 2, structure only (no training; seed 0): VGG-16 and ResNet-20 at CIFAR shape (3x32x32) - what
Reconvene does to the paper's model at each p and score (synflow, snip, magnitude), with the PSE average
parameter-weighted (the default) and unweighted: size ratio, MAC ratio,
latency speed-up and generation time, the numbers behind the paper's "up to 16.21x smaller, 2x faster,
within seconds". SynFlow runs ``--structure-rounds`` (default 20) rounds here to fit the time budget.

Part 3, generation time of VGG-16 (3x32x32) broken down into scoring and rectification: SynFlow with the
default 100 rounds (once), SynFlow with 1 round (what the test uses), magnitude, SNIP (random CIFAR-shaped
batch); the last three take the median of ``--timing-repeats`` runs.

Results: benchmarks/results/reconvene_mnist.json and the README section benchmarks/sections/reconvene_mnist.md.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, save, shared_data_dir  # noqa: E402

from edgeprune import models  # noqa: E402
from edgeprune.measure import latency, macs  # noqa: E402
from edgeprune.methods import reconvene  # noqa: E402
from edgeprune.models.registry import _ZOO, register  # noqa: E402
from edgeprune.models.resnet import ResNet  # noqa: E402
from edgeprune.models.vgg import VGG  # noqa: E402
from edgeprune.prune.masks import apply_masks  # noqa: E402

NAME = "reconvene_mnist"
PAPER = {"size_reduction_max": 16.21, "speedup_max": 2.0, "accuracy": "same as UPaI", "generation": "seconds"}


# -- the reduced-width models of the default grid (registered here, for this script only) -------------------

if "vgg11_quarter" not in _ZOO:
    @register("vgg11_quarter", "VGG-11-BN at 1/4 width (16..128 channels, head 128); benchmark only")
    def vgg11_quarter(num_classes: int, in_channels: int, image_size: int) -> torch.nn.Module:
        cfg = [16, "M", 32, "M", 64, 64, "M", 128, 128, "M", 128, 128, "M"]
        return VGG(cfg, num_classes, in_channels, image_size, classifier_width=128)

if "resnet20_half" not in _ZOO:
    @register("resnet20_half", "ResNet-20 at 1/2 width (8/16/32 channels); benchmark only")
    def resnet20_half(num_classes: int, in_channels: int, image_size: int) -> torch.nn.Module:
        return ResNet([3, 3, 3], [8, 16, 32], num_classes, in_channels)


def mean_std(values):
    values = [v for v in values if isinstance(v, (int, float))]
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


# -- part 1: trained grid ------------------------------------------------------------------------------------


def trained_grid(args, data_root: Path) -> list[dict]:
    rows = []
    settings = [(m, s, p) for m in args.models for s in args.scores for p in args.sparsities]
    for i, (model, score, p) in enumerate(settings, 1):
        out = Path(args.runs) / f"{model}-{score}-p{p:g}"
        config = reconvene.PaIConfig.build(
            model=model, dataset="mnist", sparsity=p, score=score, mode="both", seeds=args.seeds,
            limit=args.limit, calibration_batches=1, calibration_batch_size=100,
            latency_batches=[1, 32], latency_runs=args.latency_runs, width=args.width,
            train={"epochs": args.epochs, "batch_size": args.batch_size, "lr": 0.05},
        )
        t0 = time.perf_counter()
        existing = out / "results.jsonl"
        before = len(existing.read_text().splitlines()) if existing.exists() else 0
        records = reconvene.run(config, out, data_dir=data_root, progress=False)
        summary = reconvene.summarize_records(records)
        cmp = summary.get("comparison", {})
        rec, upai = summary["modes"]["reconvene"], summary["modes"]["unstructured"]
        first = min((r for r in records if r["mode"] == "reconvene"), key=lambda r: r["seed"])
        row = {
            "model": model, "score": score, "sparsity": p, "seeds": cmp.get("seeds"), "run_dir": str(out),
            "upai_test_acc": upai["test_acc"], "upai_test_acc_std": upai["test_acc_std"],
            "reconvene_test_acc": rec["test_acc"], "reconvene_test_acc_std": rec["test_acc_std"],
            **{k: cmp.get(k) for k in ("acc_diff", "acc_diff_std", "size_ratio", "size_ratio_std", "sparse_size_ratio",
                                       "sparse_size_ratio_std", "macs_ratio", "speedup_b1", "speedup_b1_std",
                                       "speedup_b32", "speedup_b32_std")},
            "upai_dense_bytes": upai["dense_bytes"], "reconvene_dense_bytes": rec["dense_bytes"],
            "upai_sparse_bytes": upai["sparse_bytes"], "reconvene_sparse_bytes": rec["sparse_bytes"],
            "sparse_bytes_kind": rec.get("sparse_bytes_kind"),
            "upai_params": upai["params"], "reconvene_params": rec["params"],
            "upai_nonzeros": upai["nonzeros"], "reconvene_nonzeros": rec["nonzeros"],
            "upai_generation_seconds": upai["generation_seconds"], "reconvene_generation_seconds": rec["generation_seconds"],
            "structured_layers": first["structured"],
            "seconds_per_epoch_upai": upai.get("seconds_per_epoch"), "seconds_per_epoch_reconvene": rec.get("seconds_per_epoch"),
            "wall_seconds": time.perf_counter() - t0,
            "resumed_items": before,  # (mode, seed) items found finished in the run folder by this invocation
            "train_seconds_total": sum(r["train_seconds"] for r in records),
        }
        rows.append(row)
        print(f"[{i}/{len(settings)}] {model} {score} p={p}: acc UPaI {100 * row['upai_test_acc']:.2f} "
              f"Reconvene {100 * row['reconvene_test_acc']:.2f} (diff {100 * (row['acc_diff'] or 0):+.2f}), "
              f"size {row['size_ratio']:.2f}x, sparse {row['sparse_size_ratio']:.2f}x, "
              f"speed-up b1 {row['speedup_b1']:.2f}x b32 {row['speedup_b32']:.2f}x ({row['wall_seconds']:.0f} s)", flush=True)
    return rows


# -- part 2: structure only at CIFAR shape -------------------------------------------------------------------


def _file_bytes(model) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        return models.save(model, Path(tmp) / "m.pt").stat().st_size


def structure_grid(args) -> list[dict]:
    rows = []
    shape = (3, 32, 32)
    x = torch.zeros(1, *shape)
    for spec in args.structure_models:
        torch.manual_seed(0)
        model = models.create(spec, num_classes=10, in_channels=3, image_size=32)
        gen = torch.Generator().manual_seed(0)
        batches = [(torch.randn(100, *shape, generator=gen), torch.randint(0, 10, (100,), generator=gen))]
        for score in args.structure_scores:
            for p in args.sparsities:
                options = {"rounds": args.structure_rounds} if score == "synflow" else None
                t0 = time.perf_counter()
                scores, masks = reconvene.pai_masks(model, x, p, score, batches, score_options=options)
                t_scores = time.perf_counter() - t0
                upai = copy.deepcopy(model)
                apply_masks(upai, masks)
                upai_lat = {b: latency(upai, shape, batch_size=b, runs=args.latency_runs)["median_ms"] for b in (1, 32)}
                upai_bytes, upai_macs = _file_bytes(upai), macs(upai, x).dense
                for weighted in (True, False):
                    pruned, _, info = reconvene.rectify(copy.deepcopy(model), x, masks, scores, weighted=weighted,
                                                        width=args.width)
                    lat = {b: latency(pruned, shape, batch_size=b, runs=args.latency_runs)["median_ms"] for b in (1, 32)}
                    row = {
                        "model": spec, "score": score, "sparsity": p, "pse": "weighted" if weighted else "unweighted",
                        "average_sparsity": info["average_sparsity"],
                        "upai_bytes": upai_bytes, "reconvene_bytes": _file_bytes(pruned),
                        "upai_params": sum(q.numel() for q in upai.parameters()),
                        "reconvene_params": sum(q.numel() for q in pruned.parameters()),
                        "upai_macs": upai_macs, "reconvene_macs": macs(pruned, x).dense,
                        **{f"latency_ms_upai_b{b}": v for b, v in upai_lat.items()},
                        **{f"latency_ms_reconvene_b{b}": v for b, v in lat.items()},
                        "generation_seconds": t_scores + info["rectify_seconds"], "score_seconds": t_scores,
                        "rectify_seconds": info["rectify_seconds"], "structured_layers": info["structured"],
                    }
                    row["size_ratio"] = row["upai_bytes"] / row["reconvene_bytes"]
                    row["macs_ratio"] = row["upai_macs"] / row["reconvene_macs"]
                    row["speedup_b1"] = upai_lat[1] / lat[1]
                    row["speedup_b32"] = upai_lat[32] / lat[32]
                    rows.append(row)
                    print(f"[structure] {spec} {score} p={p} {row['pse']}: {row['size_ratio']:.2f}x smaller, "
                          f"MACs {row['macs_ratio']:.2f}x, speed-up b1 {row['speedup_b1']:.2f}x b32 {row['speedup_b32']:.2f}x, "
                          f"generation {row['generation_seconds']:.2f} s", flush=True)
    return rows


# -- part 3: generation time of VGG-16 -----------------------------------------------------------------------


def generation_timing(args) -> list[dict]:
    torch.manual_seed(0)
    model = models.create("vgg16", num_classes=10, in_channels=3, image_size=32)
    x = torch.zeros(1, 3, 32, 32)
    gen = torch.Generator().manual_seed(0)
    batches = [(torch.randn(100, 3, 32, 32, generator=gen), torch.randint(0, 10, (100,), generator=gen))]
    reconvene.generate(model, x, 0.9, "synflow", score_options={"rounds": 1})  # warm-up (first float64 convs)
    rows = []
    for label, score, options, repeats in (
            ("synflow, 100 rounds (default)", "synflow", None, 1),
            ("synflow, 1 round (test setting)", "synflow", {"rounds": 1}, args.timing_repeats),
            ("magnitude", "magnitude", None, args.timing_repeats),
            ("snip, 1 batch of 100", "snip", None, args.timing_repeats)):
        times = []
        for _ in range(repeats):
            _, _, info = reconvene.generate(model, x, 0.9, score, batches if score == "snip" else None,
                                            score_options=options)
            times.append(info["seconds"])
        row = {"setting": label, "sparsity": 0.9, "repeats": len(times),
               "total_s": statistics.median(t["total"] for t in times),
               "scores_s": statistics.median(t["scores"] for t in times),
               "rectify_s": statistics.median(t["rectify"] for t in times)}
        rows.append(row)
        print(f"[timing] VGG-16 {label}: {row['total_s']:.2f} s (scores {row['scores_s']:.2f}, rectify {row['rectify_s']:.2f})",
              flush=True)
    return rows


# -- section markdown ----------------------------------------------------------------------------------------


def _pm(mean, std, scale=1.0, digits=2):
    if mean is None:
        return "–"
    return f"{mean * scale:.{digits}f} ± {(std or 0.0) * scale:.{digits}f}"


def section(result: dict) -> str:
    s = result["settings"]
    args = " ".join(s["args"]) if "args" in s else result.get("command", "").split("reconvene_mnist.py", 1)[-1].strip()
    lines = [f"### Reconvene vs UPaI on MNIST (`benchmarks/reconvene_mnist.py{' ' + args if args else ''}`)", ""]
    if result["trained"]:
        lines += [
            f"Trained from scratch, {s['seeds']} seeds (mean ± std, differences and ratios paired by seed): "
            f"{', '.join(s['models'])}; MNIST pool {s['limit'] or 'all 60,000'} images (10 % validation), "
            f"{s['epochs']} epoch(s) at batch {s['batch_size']}, full 10,000-image test set; Reconvene width rule "
            f"{s.get('width', 'density')}. Size ratio = UPaI ÷ "
            "Reconvene bytes of the saved checkpoint (dense tensors) and of the compressed sparse `.epz` artifact; "
            "speed-up = UPaI ÷ Reconvene median torch CPU latency.",
            "",
            "| model | score | p | UPaI acc (%) | Reconvene acc (%) | Δacc (pts) | size ratio (dense file) | size ratio (sparse .epz) | speed-up b1 | speed-up b32 | generation (s) |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in result["trained"]:
            lines.append(
                f"| {r['model']} | {r['score']} | {r['sparsity']} | {_pm(r['upai_test_acc'], r['upai_test_acc_std'], 100)} | "
                f"{_pm(r['reconvene_test_acc'], r['reconvene_test_acc_std'], 100)} | {_pm(r['acc_diff'], r['acc_diff_std'], 100)} | "
                f"{r['size_ratio']:.2f}x | {r['sparse_size_ratio']:.2f}x | {r['speedup_b1']:.2f}x | {r['speedup_b32']:.2f}x | "
                f"{r['reconvene_generation_seconds']:.2f} |"
            )
        best = max(result["trained"], key=lambda r: r["size_ratio"])
        fast = max(result["trained"], key=lambda r: r["speedup_b32"])
        diffs = [r["acc_diff"] for r in result["trained"] if r["acc_diff"] is not None]
        lines += ["", f"Largest size reduction {best['size_ratio']:.2f}x ({best['model']}, {best['score']}, p={best['sparsity']}); "
                      f"largest speed-up {fast['speedup_b32']:.2f}x at batch 32 ({fast['model']}, {fast['score']}, p={fast['sparsity']}); "
                      f"accuracy difference from {100 * min(diffs):+.2f} to {100 * max(diffs):+.2f} points over {len(diffs)} settings "
                      f"(paper: up to {PAPER['size_reduction_max']}x smaller, up to {PAPER['speedup_max']}x faster, same accuracy)."]
    if result["structure"]:
        lines += ["", "Structure only at CIFAR shape (3x32x32, seed 0, no training): what Reconvene does to the paper's "
                      f"models, with the PSE average parameter-weighted (= p, the default) or unweighted (mean of the conv "
                      f"layers' sparsities); width rule {s['width']}; SynFlow {s['structure_synflow_rounds']} rounds.", "",
                  "| model | score | p | PSE average | size ratio (file) | params UPaI → Reconvene | MACs ratio | speed-up b1 | speed-up b32 | generation (s) |",
                  "|---|---|---:|---|---:|---:|---:|---:|---:|---:|"]
        for r in result["structure"]:
            lines.append(f"| {r['model']} | {r['score']} | {r['sparsity']} | {r.get('pse', 'weighted')} ({r.get('average_sparsity', r['sparsity']):.3f}) | {r['size_ratio']:.2f}x | "
                         f"{r['upai_params']:,} → {r['reconvene_params']:,} | {r['macs_ratio']:.2f}x | {r['speedup_b1']:.2f}x | "
                         f"{r['speedup_b32']:.2f}x | {r['generation_seconds']:.2f} |")
    if result["timing"]:
        lines += ["", f"Generation time of VGG-16 (3x32x32, p = 0.9, {s['threads']} torch thread(s), after a warm-up):", "",
                  "| setting | runs (median) | total (s) | scores + global mask (s) | PSE + RLR (s) |", "|---|---:|---:|---:|---:|"]
        for r in result["timing"]:
            lines.append(f"| {r['setting']} | {r['repeats']} | {r['total_s']:.2f} | {r['scores_s']:.2f} | {r['rectify_s']:.2f} |")
    m = result["machine"]
    resumed = sum(r.get("resumed_items", 0) for r in result["trained"])
    note = ""
    if resumed:
        train_min = sum(r["train_seconds_total"] for r in result["trained"]) / 60
        note = (f" {resumed} trained items were resumed from the run folders of an earlier invocation of the same command "
                f"(their training took {train_min:.0f} min in total).")
    lines += ["", f"Machine: {m['cpu']}, {m['cores']} cores (shared with other jobs while this ran), torch {m['torch']}, "
                  f"{s['threads']} torch thread(s); this invocation {result['elapsed_seconds'] / 60:.0f} min.{note}"]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--full", action="store_true", help="the whole grid: full-width models, all of MNIST, 5 epochs")
    ap.add_argument("--models", default=None, help="comma-separated model specs (default by --full)")
    ap.add_argument("--scores", default=None, help="trained grid scores (default synflow; all three with --full)")
    ap.add_argument("--structure-scores", default="synflow,snip,magnitude")
    ap.add_argument("--width", default="density", choices=["density", "sqrt"], help="Reconvene width rule")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1: OpenMP threads spin badly when the 2 cores are shared)")
    ap.add_argument("--sparsities", default="0.8,0.9,0.95,0.98")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--limit", type=int, default=None, help="MNIST train+val pool (default 3000, all with --full)")
    ap.add_argument("--structure-rounds", type=int, default=20, help="SynFlow rounds in the structure grid")
    ap.add_argument("--latency-runs", type=int, default=20)
    ap.add_argument("--timing-repeats", type=int, default=3)
    ap.add_argument("--structure-models", default="vgg16,resnet20")
    ap.add_argument("--no-train", action="store_true", help="skip part 1")
    ap.add_argument("--no-structure", action="store_true", help="skip part 2")
    ap.add_argument("--no-timing", action="store_true", help="skip part 3")
    ap.add_argument("--runs", default=None, help="folder of the per-setting run folders (resumable)")
    ap.add_argument("--name", default=None, help="results name (default reconvene_mnist[_full][_sqrt]; for smoke runs)")
    ap.add_argument("--section-from", default=None, help="only rewrite sections/<name>.md from an existing results JSON")
    args = ap.parse_args()
    if args.section_from:
        import json

        from common import SECTIONS
        from edgeprune.utils.io import write_text

        stored = json.loads(Path(args.section_from).read_text())
        out = write_text(SECTIONS / f"{Path(args.section_from).stem}.md", section(stored).rstrip() + "\n")
        print(f"wrote {out}")
        return
    args.models = (args.models or ("vgg11,resnet20" if args.full else "vgg11_quarter,resnet20_half")).split(",")
    args.scores = (args.scores or ("synflow,snip,magnitude" if args.full else "synflow")).split(",")
    args.structure_scores = args.structure_scores.split(",")
    args.sparsities = [float(v) for v in args.sparsities.split(",")]
    args.structure_models = [m for m in args.structure_models.split(",") if m]
    args.epochs = args.epochs or (5 if args.full else 1)
    args.batch_size = args.batch_size or (128 if args.full else 64)
    if args.limit is None and not args.full:
        args.limit = 6000
    suffix = ("_full" if args.full else "") + ("" if args.width == "density" else f"_{args.width}")
    args.runs = args.runs or str(ROOT / "runs" / (NAME + suffix))

    data_root = shared_data_dir()
    if data_root is None and not args.no_train:
        sys.exit("MNIST not found: set EDGEPRUNE_DATA or place shared/data/mnist next to the repo")
    t0 = time.perf_counter()
    torch.set_num_threads(args.threads)
    timing = [] if args.no_timing else generation_timing(args)
    structure = [] if args.no_structure else structure_grid(args)
    trained = [] if args.no_train else trained_grid(args, data_root)
    result = {
        "settings": {"full": args.full, "models": args.models, "scores": args.scores, "sparsities": args.sparsities,
                     "seeds": args.seeds, "epochs": args.epochs, "batch_size": args.batch_size, "limit": args.limit,
                     "synflow_rounds": 100, "width": args.width, "structure_models": args.structure_models,
                     "structure_scores": args.structure_scores, "structure_synflow_rounds": args.structure_rounds,
                     "latency_runs": args.latency_runs,
                     "runs": args.runs, "threads": torch.get_num_threads(), "args": sys.argv[1:]},
        "paper": PAPER,
        "trained": trained,
        "structure": structure,
        "timing": timing,
        "elapsed_seconds": time.perf_counter() - t0,
    }
    from common import provenance

    result["machine"] = provenance()["machine"]
    path = save(args.name or NAME + suffix, result, section(result))
    print(f"wrote {path} in {result['elapsed_seconds'] / 60:.1f} min")


if __name__ == "__main__":
    main()

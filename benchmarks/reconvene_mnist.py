"""Reconvene vs unstructured PaI (UPaI) on MNIST: accuracy, size, latency, generation time.

    python benchmarks/reconvene_mnist.py            # default grid (about an hour on 2 quiet cores)
    python benchmarks/reconvene_mnist.py --full     # full-width models, three scores (many hours)
    nohup python benchmarks/reconvene_mnist.py > /tmp/reconvene_mnist.log 2>&1 &

Part 1, trained (``edgeprune.methods.reconvene.run`` per setting, one run folder each, resumable): models x
sparsities p x PaI scores x seeds, Reconvene and its UPaI counterpart at the same p trained from scratch with
the same schedule. Reported per setting, paired by seed: test-accuracy difference, size ratio (UPaI ÷
Reconvene bytes of the saved dense checkpoint, and of the compressed sparse ``.epz`` artifact), latency
speed-up in PyTorch (eager) and ONNX Runtime at batch 1 and 32, generation time.

* default: VGG-16 at 1/4 width (``vgg16@0.25``: 16..128 channels) and ResNet-20 at 1/2 width
  (``resnet20@0.5``: 8/16/32 channels); all of MNIST (10 % of the training images for validation), 2 epochs
  at batch 128 (the CNN default: SGD 0.05, warm-up, cosine), the 10,000-image test set; p in
  {0.9, 0.95, 0.98}; SynFlow (100 rounds); 3 seeds; Reconvene's defaults (unweighted PSE average, sqrt
  width rule). Models are ``spec@width_mult``.
* ``--full``: vgg16 and resnet20 at full width, 5 epochs, scores synflow, snip (1 batch of 100), magnitude.
* ``--weighted`` / ``--width density``: the PSE and width-rule alternatives (ablation).

Part 2, structure only (no training; seed 0): VGG-16 and ResNet-20 at full width and CIFAR shape (3x32x32) -
what Reconvene does to the paper's models at each p and score (synflow, snip, magnitude), for the default
setting and the two alternatives (parameter-weighted PSE average; density width rule): size ratio, MAC
ratio, PyTorch and ONNX Runtime speed-up, generation time. SynFlow runs ``--structure-rounds`` (default 20)
rounds here to fit the time budget.

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
from edgeprune.export.ort_latency import exported_latency, ort_latency  # noqa: E402
from edgeprune.measure import latency, macs  # noqa: E402
from edgeprune.methods import reconvene  # noqa: E402
from edgeprune.prune.masks import apply_masks  # noqa: E402

NAME = "reconvene_mnist"
PAPER = {"size_reduction_max": 16.21, "speedup_max": 2.0, "accuracy": "same as UPaI", "generation": "seconds"}


def parse_model(text: str) -> tuple[str, dict]:
    """``"vgg16@0.25"`` -> ``("vgg16", {"width_mult": 0.25})``; a plain spec has no options."""
    spec, _, width = text.partition("@")
    return spec, ({"width_mult": float(width)} if width else {})


def build(text: str, in_channels: int, image_size: int) -> torch.nn.Module:
    spec, kwargs = parse_model(text)
    return models.create(spec, num_classes=10, in_channels=in_channels, image_size=image_size, **kwargs)


def mean_std(values):
    values = [v for v in values if isinstance(v, (int, float))]
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


# -- part 1: trained grid ------------------------------------------------------------------------------------


COMPARISON_KEYS = ("acc_diff", "size_ratio", "sparse_size_ratio", "macs_ratio", "speedup_b1", "speedup_b32",
                   "onnx_speedup_b1", "onnx_speedup_b32")


SPEEDUP_KEYS = ("speedup_b1", "speedup_b32", "onnx_speedup_b1", "onnx_speedup_b32")


def paired_speedups(run_dir: Path, seeds: list[int], runs: int, rounds: int = 5) -> dict:
    """UPaI ÷ Reconvene latency of each seed's two trained models, timed side by side after training.

    Latency inside ``reconvene.run`` is measured right after each model's training, minutes apart and under
    whatever else the machine was doing; here the two models of a seed alternate (``rounds`` rounds of
    ``runs`` timed calls each, torch checkpoint and exported ONNX file) and the medians are compared.
    Returns each speed-up's mean and std over seeds.
    """
    modes = ("unstructured", "reconvene")
    per_seed: dict[str, list[float]] = {k: [] for k in SPEEDUP_KEYS}
    for seed in seeds:
        files = {m: run_dir / "models" / f"{m}-seed{seed}" for m in modes}
        loaded = {m: models.load(files[m].with_suffix(".pt")) for m in modes}
        shape = (loaded["reconvene"].edgeprune_build["in_channels"],) + (loaded["reconvene"].edgeprune_build["image_size"],) * 2
        for b in (1, 32):
            times: dict[tuple, list[float]] = {}
            for _ in range(rounds):
                for m in modes:
                    times.setdefault(("torch", m), []).append(
                        latency(loaded[m], shape, batch_size=b, runs=runs)["median_ms"])
                    times.setdefault(("onnx", m), []).append(
                        ort_latency(files[m].with_suffix(".onnx"), shape, batch_size=b, runs=runs)["median_ms"])
            for runtime, prefix in (("torch", ""), ("onnx", "onnx_")):
                per_seed[f"{prefix}speedup_b{b}"].append(
                    statistics.median(times[(runtime, "unstructured")]) / statistics.median(times[(runtime, "reconvene")]))
    out = {}
    for key, values in per_seed.items():
        out[key], out[f"{key}_std"] = mean_std(values)
    return out


def trained_grid(args, data_root: Path) -> list[dict]:
    rows = []
    settings = [(m, s, p) for m in args.models for s in args.scores for p in args.sparsities]
    for i, (model, score, p) in enumerate(settings, 1):
        out = Path(args.runs) / f"{model}-{score}-p{p:g}"
        spec, kwargs = parse_model(model)
        config = reconvene.PaIConfig.build(
            model=spec, model_kwargs=kwargs, dataset="mnist", sparsity=p, score=score, mode="both", seeds=args.seeds,
            limit=args.limit, calibration_batches=1, calibration_batch_size=100,
            latency_batches=[1, 32], latency_runs=args.latency_runs, width=args.width, weighted=args.weighted,
            group_rule=args.group_rule,
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
            **{k: cmp.get(k) for key in COMPARISON_KEYS for k in (key, f"{key}_std")},
            **{f"{who}_{k}": stats.get(k) for who, stats in (("upai", upai), ("reconvene", rec))
               for k in ("dense_bytes", "sparse_bytes", "params", "nonzeros", "macs", "generation_seconds",
                         "seconds_per_epoch", "latency_ms_b1", "latency_ms_b32", "onnx_latency_ms_b1",
                         "onnx_latency_ms_b32")},
            "sparse_bytes_kind": rec.get("sparse_bytes_kind"),
            "average_sparsity": first["average_sparsity"],
            "channels": first["channels"],
            "structured_layers": first["structured"],
            "wall_seconds": time.perf_counter() - t0,
            "resumed_items": before,  # (mode, seed) items found finished in the run folder by this invocation
            "train_seconds_total": sum(r["train_seconds"] for r in records),
        }
        # the table's speed-ups: both models of a seed timed side by side; the in-run figures are kept beside
        row.update({f"inrun_{k}": row[k] for key in SPEEDUP_KEYS for k in (key, f"{key}_std")})
        row.update(paired_speedups(out, cmp["seeds"], args.latency_runs))
        rows.append(row)
        print(f"[{i}/{len(settings)}] {model} {score} p={p}: acc UPaI {100 * row['upai_test_acc']:.2f} "
              f"Reconvene {100 * row['reconvene_test_acc']:.2f} (diff {100 * (row['acc_diff'] or 0):+.2f}), "
              f"size {row['size_ratio']:.2f}x, sparse {row['sparse_size_ratio']:.2f}x, "
              f"speed-up torch b1 {row['speedup_b1']:.2f}x b32 {row['speedup_b32']:.2f}x, "
              f"ONNX Runtime b1 {row['onnx_speedup_b1']:.2f}x b32 {row['onnx_speedup_b32']:.2f}x "
              f"({row['wall_seconds']:.0f} s)", flush=True)
    return rows


# -- part 2: structure only at CIFAR shape -------------------------------------------------------------------

#: (PSE average weighted?, width rule): Reconvene's default first, then the two alternatives
STRUCTURE_VARIANTS = ((False, "sqrt"), (True, "sqrt"), (False, "density"))


def _file_bytes(model) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        return models.save(model, Path(tmp) / "m.pt").stat().st_size


def _latencies(model, shape, runs: int) -> dict:
    """Median ms in PyTorch eager and in ONNX Runtime (exported, parity-checked) at batch 1 and 32."""
    out = {f"latency_ms_b{b}": latency(model, shape, batch_size=b, runs=runs)["median_ms"] for b in (1, 32)}
    out.update({f"onnx_latency_ms_b{b}": ms for b, ms in exported_latency(model, shape, (1, 32), runs).items()})
    return out


def structure_grid(args) -> list[dict]:
    rows = []
    shape = (3, 32, 32)
    x = torch.zeros(1, *shape)
    for spec in args.structure_models:
        torch.manual_seed(0)
        model = build(spec, 3, 32)
        gen = torch.Generator().manual_seed(0)
        batches = [(torch.randn(100, *shape, generator=gen), torch.randint(0, 10, (100,), generator=gen))]
        for score in args.structure_scores:
            for p in args.structure_sparsities:
                options = {"rounds": args.structure_rounds} if score == "synflow" else None
                t0 = time.perf_counter()
                scores, masks = reconvene.pai_masks(model, x, p, score, batches, score_options=options)
                t_scores = time.perf_counter() - t0
                upai = copy.deepcopy(model)
                apply_masks(upai, masks)
                upai_lat = _latencies(upai, shape, args.latency_runs)
                upai_bytes, upai_macs = _file_bytes(upai), macs(upai, x).dense
                for weighted, width in STRUCTURE_VARIANTS:
                    pruned, _, info = reconvene.rectify(copy.deepcopy(model), x, masks, scores, weighted=weighted,
                                                        width=width)
                    lat = _latencies(pruned, shape, args.latency_runs)
                    row = {
                        "model": spec, "score": score, "sparsity": p, "pse": "weighted" if weighted else "unweighted",
                        "width": width, "average_sparsity": info["average_sparsity"],
                        "upai_bytes": upai_bytes, "reconvene_bytes": _file_bytes(pruned),
                        "upai_params": sum(q.numel() for q in upai.parameters()),
                        "reconvene_params": sum(q.numel() for q in pruned.parameters()),
                        "upai_macs": upai_macs, "reconvene_macs": macs(pruned, x).dense,
                        **{f"upai_{k}": v for k, v in upai_lat.items()},
                        **{f"reconvene_{k}": v for k, v in lat.items()},
                        "generation_seconds": t_scores + info["rectify_seconds"], "score_seconds": t_scores,
                        "rectify_seconds": info["rectify_seconds"], "structured_layers": info["structured"],
                    }
                    row["size_ratio"] = row["upai_bytes"] / row["reconvene_bytes"]
                    row["macs_ratio"] = row["upai_macs"] / row["reconvene_macs"]
                    for key in upai_lat:
                        row[key.replace("latency_ms", "speedup")] = upai_lat[key] / lat[key]
                    rows.append(row)
                    print(f"[structure] {spec} {score} p={p} {row['pse']}/{width}: {row['size_ratio']:.2f}x smaller, "
                          f"MACs {row['macs_ratio']:.2f}x, speed-up torch b1 {row['speedup_b1']:.2f}x "
                          f"b32 {row['speedup_b32']:.2f}x, ONNX Runtime b1 {row['onnx_speedup_b1']:.2f}x "
                          f"b32 {row['onnx_speedup_b32']:.2f}x, generation {row['generation_seconds']:.2f} s", flush=True)
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


GOAL = {"size_ratio": 16.0, "speedup": 2.0, "acc_diff_points": 0.3}


def _x(value) -> str:
    return "–" if value is None else f"{value:.2f}x"


def goal_line(rows: list[dict]) -> str:
    """Which trained settings meet the issue's goal (>= 16x smaller, >= 2x faster, |Δacc| <= 0.3 pt)."""
    within = [r for r in rows if r["acc_diff"] is not None and abs(100 * r["acc_diff"]) <= GOAL["acc_diff_points"]]
    if not within:
        return f"No setting is within {GOAL['acc_diff_points']} points of UPaI."
    best = max(within, key=lambda r: r["size_ratio"])
    speed = max((r.get(k) or 0.0) for k in ("speedup_b1", "speedup_b32", "onnx_speedup_b1", "onnx_speedup_b32") for r in [best])
    met = [r for r in within if r["size_ratio"] >= GOAL["size_ratio"] and max(
        (r.get(k) or 0.0) for k in ("speedup_b1", "speedup_b32", "onnx_speedup_b1", "onnx_speedup_b32")) >= GOAL["speedup"]]
    verdict = (f"goal (>= {GOAL['size_ratio']:g}x smaller and >= {GOAL['speedup']:g}x faster at |Δacc| <= "
               f"{GOAL['acc_diff_points']} points) met by {len(met)} of {len(rows)} settings"
               + (": " + "; ".join(f"{r['model']} {r['score']} p={r['sparsity']}" for r in met) if met else ""))
    return (f"Within {GOAL['acc_diff_points']} points of UPaI: {len(within)} of {len(rows)} settings; the smallest of them is "
            f"{best['model']} {best['score']} p={best['sparsity']} ({best['size_ratio']:.2f}x smaller, up to {speed:.2f}x faster); "
            + verdict + ".")


def section(result: dict) -> str:
    s = result["settings"]
    args = " ".join(s["args"]) if "args" in s else result.get("command", "").split("reconvene_mnist.py", 1)[-1].strip()
    lines = [f"### Reconvene vs UPaI on MNIST (`benchmarks/reconvene_mnist.py{' ' + args if args else ''}`)", ""]
    if result["trained"]:
        lines += [
            f"Trained from scratch, {s['seeds']} seeds (mean ± std, differences and ratios paired by seed): "
            f"{', '.join(s['models'])}{' (`spec@width_mult`)' if any('@' in m for m in s['models']) else ''}; MNIST pool {s['limit'] or 'all 60,000'} images "
            f"(10 % validation), {s['epochs']} epoch(s) at batch {s['batch_size']}, the 10,000-image test set; "
            f"PSE average {'parameter-weighted (= p)' if s.get('weighted', True) else 'unweighted'}, width rule "
            f"{s.get('width', 'density')}, residual groups {s.get('group_rule', 'pooled')}. Size ratio = UPaI ÷ Reconvene bytes of the saved checkpoint (dense tensors) "
            "and of the compressed sparse `.epz` artifact; speed-up = UPaI ÷ Reconvene median CPU latency in PyTorch "
            "eager and in ONNX Runtime (exported models), batch 1 and 32, the two trained models of each seed timed "
            f"side by side after training (5 alternating rounds of {s['latency_runs']} runs, medians).",
            "",
            "| model | score | p | UPaI acc (%) | Reconvene acc (%) | Δacc (pts) | size ratio (dense file) | size ratio (sparse .epz) | MACs ratio | torch b1 | torch b32 | ORT b1 | ORT b32 | generation (s) |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in result["trained"]:
            lines.append(
                f"| {r['model']} | {r['score']} | {r['sparsity']} | {_pm(r['upai_test_acc'], r['upai_test_acc_std'], 100)} | "
                f"{_pm(r['reconvene_test_acc'], r['reconvene_test_acc_std'], 100)} | {_pm(r['acc_diff'], r['acc_diff_std'], 100)} | "
                f"{_x(r['size_ratio'])} | {_x(r['sparse_size_ratio'])} | {_x(r.get('macs_ratio'))} | {_x(r['speedup_b1'])} | "
                f"{_x(r['speedup_b32'])} | {_x(r.get('onnx_speedup_b1'))} | {_x(r.get('onnx_speedup_b32'))} | "
                f"{r['reconvene_generation_seconds']:.2f} |"
            )
        lines += ["", goal_line(result["trained"]) + f" Paper: up to {PAPER['size_reduction_max']}x smaller, up to "
                  f"{PAPER['speedup_max']}x faster, same accuracy."]
    if result["structure"]:
        lines += ["", "Structure only at CIFAR shape (3x32x32, full-width models, seed 0, no training): what Reconvene does "
                      "to the paper's models; the default (unweighted PSE average, sqrt width) and the two alternatives "
                      f"(parameter-weighted average = p; density width); SynFlow {s['structure_synflow_rounds']} rounds.", "",
                  "| model | score | p | PSE average / width | size ratio (file) | params UPaI → Reconvene | MACs ratio | torch b1 | torch b32 | ORT b1 | ORT b32 | generation (s) |",
                  "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in result["structure"]:
            width = r.get("width", s.get("width", "density"))  # results of the session-1 script lack the key
            lines.append(f"| {r['model']} | {r['score']} | {r['sparsity']} | {r.get('pse', 'weighted')} "
                         f"({r.get('average_sparsity', r['sparsity']):.3f}) / {width} | "
                         f"{_x(r['size_ratio'])} | {r['upai_params']:,} → {r['reconvene_params']:,} | {_x(r['macs_ratio'])} | "
                         f"{_x(r['speedup_b1'])} | {_x(r['speedup_b32'])} | {_x(r.get('onnx_speedup_b1'))} | "
                         f"{_x(r.get('onnx_speedup_b32'))} | {r['generation_seconds']:.2f} |")
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
        note = (f" {resumed} trained items were resumed from the `--runs` folders, trained there by earlier invocations "
                f"(e.g. one per model with `--models M --no-structure --no-timing`, run in parallel); their training took "
                f"{train_min:.0f} min in total.")
    load = result.get("load_average_at_save")
    lines += ["", f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']}, {s['threads']} torch thread(s)"
                  + (f", load average {load[1]:.1f} (5 min) when it ended" if load else "")
                  + f"; this invocation {result['elapsed_seconds'] / 60:.0f} min.{note}"]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--full", action="store_true", help="full-width models, three scores, 5 epochs")
    ap.add_argument("--models", default=None, help="comma-separated model specs (default by --full)")
    ap.add_argument("--scores", default=None, help="trained grid scores (default synflow; all three with --full)")
    ap.add_argument("--structure-scores", default="synflow,snip,magnitude")
    ap.add_argument("--width", default="sqrt", choices=["sqrt", "density"], help="Reconvene width rule (trained grid)")
    ap.add_argument("--weighted", action="store_true", help="PSE average parameter-weighted (= p) in the trained grid")
    ap.add_argument("--group-rule", default="pooled", choices=["pooled", "all"], help="residual groups (trained grid)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1: OpenMP threads spin badly when the 2 cores are shared)")
    ap.add_argument("--sparsities", default="0.9,0.95,0.98", help="trained grid")
    ap.add_argument("--structure-sparsities", default="0.8,0.9,0.95,0.98")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--limit", type=int, default=None, help="MNIST train+val pool (default: all)")
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
    args.models = (args.models or ("vgg16,resnet20" if args.full else "vgg16@0.25,resnet20@0.5")).split(",")
    args.scores = (args.scores or ("synflow,snip,magnitude" if args.full else "synflow")).split(",")
    args.structure_scores = args.structure_scores.split(",")
    args.sparsities = [float(v) for v in args.sparsities.split(",")]
    args.structure_sparsities = [float(v) for v in args.structure_sparsities.split(",")]
    args.structure_models = [m for m in args.structure_models.split(",") if m]
    args.epochs = args.epochs or (5 if args.full else 2)
    args.batch_size = args.batch_size or 128
    suffix = (("_full" if args.full else "") + ("_weighted" if args.weighted else "")
              + ("" if args.width == "sqrt" else f"_{args.width}") + ("" if args.group_rule == "pooled" else "_group_all"))
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
                     "synflow_rounds": 100, "width": args.width, "weighted": args.weighted, "group_rule": args.group_rule,
                     "structure_models": args.structure_models, "structure_sparsities": args.structure_sparsities,
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

    result.update(provenance())
    path = save(args.name or NAME + suffix, result, section(result))
    print(f"wrote {path} in {result['elapsed_seconds'] / 60:.1f} min")


if __name__ == "__main__":
    main()

"""Reconvene vs unstructured PaI (UPaI) on MNIST: accuracy, size, latency, generation time.

    python benchmarks/reconvene_mnist.py            # default grid (about an hour on 2 quiet cores)
    python benchmarks/reconvene_mnist.py --full     # full-width models, three scores (many hours)
    nohup python benchmarks/reconvene_mnist.py > /tmp/reconvene_mnist.log 2>&1 &

Part 1, trained: models x sparsities p x PaI scores x seeds, Reconvene and its UPaI counterpart at the same p
trained from scratch with the same schedule. Each setting is one sweep of the public API,
``edgeprune.sweep(model, mnist, method="reconvene", budgets=[p], seeds=N, modes=["reconvene", "unstructured"],
finetune={...})``, in its own run folder under ``--runs`` (resumable); after the sweep, the candidates'
checkpoints ``RUN/candidates/ID.pt`` are measured here: bytes of the checkpoint and of the compressed sparse
``.epz`` artifact (``RUN/sparse/``), and PyTorch / ONNX Runtime latency (``edgeprune.export.ort_latency`` on
``RUN/onnx/ID.onnx``), the two models of a seed timed side by side. Reported per setting, paired by seed:
test-accuracy difference, size ratio (UPaI ÷ Reconvene bytes of the saved dense checkpoint, and of the
``.epz`` artifact), latency speed-up in PyTorch (eager) and ONNX Runtime at batch 1 and 32, Reconvene's
generation time (scores + PSE + RLR, from the sweep's record). ``seconds_per_epoch`` is a candidate's whole
time in the sweep (generation, training, measuring) ÷ its epochs.

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

Results: benchmarks/results/reconvene_mnist.json and the README section benchmarks/sections/reconvene_mnist.md
(``--name`` writes results/<name>.json and sections/<name>.md instead). The committed results came from the
revision recorded in each JSON (``git_revision``), which ran part 1 with the per-method pipeline of that time
(``edgeprune.methods.reconvene.run``, since retired for ``edgeprune.sweep``); the quantities are the same, but
that pipeline built each seed's model from the zoo with that seed (the sweep re-initialises the input model's
layers with the candidate's seed instead) and also kept in-run latencies (``inrun_*``), which this script no
longer reports.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import edgeprune  # noqa: E402
from common import ROOT, SECTIONS, provenance, save, shared_data_dir  # noqa: E402
from edgeprune import data, models  # noqa: E402
from edgeprune.export import sparse  # noqa: E402
from edgeprune.export.onnx import export_verified  # noqa: E402
from edgeprune.export.ort_latency import exported_latency, ort_latency  # noqa: E402
from edgeprune.measure import latency, macs  # noqa: E402
from edgeprune.measure.size import prunable_weights  # noqa: E402
from edgeprune.methods import reconvene  # noqa: E402
from edgeprune.prune.masks import apply_masks  # noqa: E402
from edgeprune.utils.io import write_text  # noqa: E402

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
MODE_KEYS = ("test_acc", "val_acc", "params", "nonzeros", "dense_bytes", "sparse_bytes", "macs", "effective_macs",
             "latency_ms_b1", "latency_ms_b32", "onnx_latency_ms_b1", "onnx_latency_ms_b32", "generation_seconds",
             "seconds_per_epoch")
MODES = ("reconvene", "unstructured")  # the sweep's candidates of one seed: Reconvene and its UPaI counterpart


def finished_candidates(run_dir: Path) -> int:
    """Candidates already finished in ``run_dir`` (a resumed sweep skips them)."""
    path = run_dir / "results.jsonl"
    if not path.exists():
        return 0
    count = 0
    for line in path.read_text().splitlines():
        try:
            count += json.loads(line).get("kind") == "candidate"
        except ValueError:  # a torn last line: the sweep repairs it and runs that candidate again
            pass
    return count


def candidates_by_seed(result) -> dict[int, dict[str, dict]]:
    """seed -> mode -> the sweep's finished record, for the seeds where both modes finished."""
    out: dict[int, dict[str, dict]] = {}
    for r in result.records:
        if r.get("kind") == "candidate" and r.get("status") == "ok":
            out.setdefault(r["seed"], {})[r["setting"]["mode"]] = r
    return {seed: modes for seed, modes in sorted(out.items()) if set(MODES) <= set(modes)}


def average_sparsity(upai: torch.nn.Module, weighted: bool) -> float:
    """The PSE's global average, read off the trained UPaI model (its masks stay exact while it trains):
    the unweighted mean of the conv layers' sparsities, or (``weighted``) the sparsity of all prunable weights."""
    if weighted:
        weights = prunable_weights(upai).values()
        return 1.0 - sum(int(w.count_nonzero()) for w in weights) / sum(w.numel() for w in weights)
    convs = [m.weight for m in upai.modules() if isinstance(m, reconvene.CONV_TYPES)]
    return statistics.fmean(1.0 - int(w.count_nonzero()) / w.numel() for w in convs)


def conv_widths(model: torch.nn.Module) -> dict[str, int]:
    return {n: int(m.weight.shape[0]) for n, m in model.named_modules() if n and isinstance(m, reconvene.CONV_TYPES)}


def measure_candidates(run_dir: Path, pairs: dict[int, dict[str, dict]], shape: tuple, runs: int, *,
                       weighted: bool, rounds: int = 5) -> dict[int, dict[str, dict]]:
    """Per seed and mode, what the sweep's records hold plus what is measured here on ``candidates/ID.pt``.

    Sizes: bytes of the saved checkpoint (dense tensors) and of the compressed sparse ``.epz`` artifact
    (``edgeprune.export.sparse``, written to ``RUN/sparse/ID.epz``). Latency: the two models of a seed
    alternate (``rounds`` rounds of ``runs`` timed calls each, PyTorch eager and ONNX Runtime on the model
    exported to ``RUN/onnx/ID.onnx`` and checked against PyTorch), medians over rounds.
    """
    out: dict[int, dict[str, dict]] = {}
    example = torch.randn(4, *shape, generator=torch.Generator().manual_seed(0))
    for seed, recs in pairs.items():
        loaded, onnx_files, rows = {}, {}, {}
        for mode in MODES:
            r = recs[mode]
            ckpt = run_dir / r["checkpoint"]
            loaded[mode] = models.load(ckpt).eval()
            onnx_files[mode] = run_dir / "onnx" / f"{r['id']}.onnx"
            if not onnx_files[mode].exists():
                onnx_files[mode].parent.mkdir(parents=True, exist_ok=True)
                export_verified(loaded[mode], onnx_files[mode], example)
            meta = {"record_id": r["id"], "mode": mode, "seed": seed}
            rows[mode] = {
                "id": r["id"], "test_acc": r["test_acc"], "val_acc": r["val_acc"],
                **{k: r[k] for k in ("params", "nonzeros", "macs", "effective_macs")},
                "dense_bytes": ckpt.stat().st_size,
                "sparse_bytes": int(sparse.save(loaded[mode], run_dir / "sparse" / f"{r['id']}.epz", meta=meta)["bytes"]),
                "generation_seconds": r["decided"].get("generation_seconds"),
                "seconds_per_epoch": r["seconds"] / max(r.get("epochs_run") or 1, 1),
                "candidate_seconds": r["seconds"],
            }
        for b in (1, 32):
            times: dict[tuple, list[float]] = {}
            for _ in range(rounds):
                for mode in MODES:
                    times.setdefault(("", mode), []).append(
                        latency(loaded[mode], shape, batch_size=b, runs=runs)["median_ms"])
                    times.setdefault(("onnx_", mode), []).append(
                        ort_latency(onnx_files[mode], shape, batch_size=b, runs=runs)["median_ms"])
            for (prefix, mode), values in times.items():
                rows[mode][f"{prefix}latency_ms_b{b}"] = statistics.median(values)
        rows["reconvene"]["structured"] = recs["reconvene"]["decided"]["structured"]
        before = conv_widths(loaded["unstructured"])  # UPaI keeps every channel of the input model
        rows["reconvene"]["channels"] = {n: [before[n], c] for n, c in conv_widths(loaded["reconvene"]).items()}
        rows["reconvene"]["average_sparsity"] = average_sparsity(loaded["unstructured"], weighted)
        out[seed] = rows
    return out


def summarize(per_seed: dict[int, dict[str, dict]]) -> dict:
    """Mean/std per mode over seeds, and the Reconvene-vs-UPaI comparison paired by seed: ``acc_diff`` =
    Reconvene − UPaI test accuracy; ``size_ratio`` / ``sparse_size_ratio`` / ``macs_ratio`` = UPaI ÷ Reconvene
    checkpoint bytes / sparse-artifact bytes / MACs; ``speedup_b<k>`` = UPaI ÷ Reconvene latency (``onnx_``:
    ONNX Runtime)."""
    modes = {}
    for mode in MODES:
        stats = {}
        for k in MODE_KEYS:
            stats[k], stats[f"{k}_std"] = mean_std([rows[mode].get(k) for rows in per_seed.values()])
        modes[mode] = stats
    ratios = {"acc_diff": lambda a, b: a["test_acc"] - b["test_acc"],
              "size_ratio": lambda a, b: b["dense_bytes"] / a["dense_bytes"],
              "sparse_size_ratio": lambda a, b: b["sparse_bytes"] / a["sparse_bytes"],
              "params_ratio": lambda a, b: b["params"] / a["params"],
              "macs_ratio": lambda a, b: b["macs"] / a["macs"]}
    for key in SPEEDUP_KEYS:
        latency_key = key.replace("speedup", "latency_ms")
        ratios[key] = lambda a, b, k=latency_key: b[k] / a[k]
    cmp: dict = {"seeds": sorted(per_seed)}
    for name, fn in ratios.items():
        cmp[name], cmp[f"{name}_std"] = mean_std([fn(rows["reconvene"], rows["unstructured"]) for rows in per_seed.values()])
    return {"modes": modes, "comparison": cmp}


def trained_grid(args, data_root: Path) -> list[dict]:
    """Each setting is one ``edgeprune.sweep(..., method="reconvene", modes=["reconvene", "unstructured"])``
    in its own run directory (resumable), then the measurements of :func:`measure_candidates`."""
    rows = []
    splits = data.load("mnist", root=data_root, val_fraction=0.1, seed=0, limit=args.limit)
    shape = (splits.in_channels, splits.image_size, splits.image_size)
    settings = [(m, s, p) for m in args.models for s in args.scores for p in args.sparsities]
    for i, (model, score, p) in enumerate(settings, 1):
        out = Path(args.runs) / f"{model}-{score}-p{p:g}"
        torch.manual_seed(0)  # the input model only gives the architecture: every candidate is re-initialised
        dense = build(model, splits.in_channels, splits.image_size)
        t0 = time.perf_counter()
        before = finished_candidates(out)
        result = edgeprune.sweep(
            dense, splits, method="reconvene", budgets=[p], seeds=args.seeds, out=out, progress=False,
            finetune={"epochs": args.epochs, "batch_size": args.batch_size, "lr": 0.05},
            modes=list(MODES), score=score, synflow_rounds=100, weighted=args.weighted, keep="score_mass",
            group_rule=args.group_rule, width=args.width, calib_batches=1, calib_batch_size=100,
        )
        pairs = candidates_by_seed(result)
        if not pairs:
            sys.exit(f"{out}: no seed finished both Reconvene and UPaI (see {out / 'results.jsonl'})")
        per_seed = measure_candidates(out, pairs, shape, args.latency_runs, weighted=args.weighted)
        summary = summarize(per_seed)
        cmp, rec, upai = summary["comparison"], summary["modes"]["reconvene"], summary["modes"]["unstructured"]
        first = per_seed[min(per_seed)]
        row = {
            "model": model, "score": score, "sparsity": p, "seeds": cmp["seeds"], "run_dir": str(out),
            "upai_test_acc": upai["test_acc"], "upai_test_acc_std": upai["test_acc_std"],
            "reconvene_test_acc": rec["test_acc"], "reconvene_test_acc_std": rec["test_acc_std"],
            **{k: cmp.get(k) for key in COMPARISON_KEYS for k in (key, f"{key}_std")},
            **{f"{who}_{k}": stats.get(k) for who, stats in (("upai", upai), ("reconvene", rec))
               for k in ("dense_bytes", "sparse_bytes", "params", "nonzeros", "macs", "generation_seconds",
                         "seconds_per_epoch", "latency_ms_b1", "latency_ms_b32", "onnx_latency_ms_b1",
                         "onnx_latency_ms_b32")},
            "sparse_bytes_kind": "artifact",
            "average_sparsity": first["reconvene"]["average_sparsity"],
            "channels": first["reconvene"]["channels"],
            "structured_layers": first["reconvene"]["structured"],
            "wall_seconds": time.perf_counter() - t0,
            "resumed_items": before,  # candidates found finished in the run folder by this invocation
            "train_seconds_total": sum(rows[m]["candidate_seconds"] for rows in per_seed.values() for m in MODES),
        }
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
    result.update(provenance())
    path = save(args.name or NAME + suffix, result, section(result))
    print(f"wrote {path} in {result['elapsed_seconds'] / 60:.1f} min")


if __name__ == "__main__":
    main()

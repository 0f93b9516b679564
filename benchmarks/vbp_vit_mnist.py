"""Variance-Based Pruning on a small ViT trained on MNIST (3 seeds), plus DeiT-Base cost at 55 %.

    python benchmarks/vbp_vit_mnist.py [--seeds 0,1,2] [--epochs 3] [--no-deit] [--quick]

Part 1 (per seed): train the zoo ViT (dim 64, depth 4, 4 heads, patch 4; 50 tokens) on MNIST with the one
training loop (AdamW, lr ``--dense-lr``, wd 0.05, cosine, ``--warmup`` warm-up epochs), collect the MLP statistics in one pass over the
training split (eval transforms), then for every ratio in ``--ratios``:

* VBP (variance selection + mean-shift): retained accuracy (val and test), params / MACs per image,
  CPU latency (torch and ONNX Runtime, dense and pruned timed in alternating rounds) at batch 1 and 32;
* ablation, retained test accuracy: variance without mean-shift, magnitude + mean-shift (structured
  magnitude: squared norm of the neuron's fc1 row, bias and fc2 column);
* at ``--ft-ratios``: a short KD fine-tune of the VBP model from the dense model (``finetune_kd``: the one
  loop, AdamW, cosine, wd 0.01, KD alpha 0.5 / T 4; best validation epoch; test measured once).

Part 2: ``hf-config:deit`` (DeiT-Base default config, 224 px, 1000 classes, random weights: accuracy is
meaningless) pruned at 55 % with statistics from random images: params and MACs reductions and CPU latency
at batch 1, to compare with the paper's -36.01 % params / -34.93 % MACs / 1.44x (H200) / 1.50x (CPU).

Results: benchmarks/results/vbp_vit_mnist.json and the README section benchmarks/sections/vbp_vit_mnist.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import save, shared_data_dir  # noqa: E402
from edgeprune import data, models  # noqa: E402
from edgeprune.measure import accuracy  # noqa: E402
from edgeprune.methods import vbp  # noqa: E402
from edgeprune.methods.dense import train_dense  # noqa: E402
from edgeprune.train import TrainConfig, default_config  # noqa: E402

NAME = "vbp_vit_mnist"
ABLATIONS = {  # name -> (selection, compensation)
    "variance+mean-shift": ("variance", True),
    "variance only": ("variance", False),
    "magnitude+mean-shift": ("magnitude", True),
}
PAPER_DEIT_B = {"params_reduction": 0.3601, "macs_reduction": 0.3493, "speedup_h200": 1.44, "speedup_cpu": 1.50}


def floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def mean_std(values: list[float]) -> tuple[float, float]:
    values = [v for v in values if v is not None]
    if not values:
        return float("nan"), float("nan")
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def paired_latency(dense, pruned, shape, batches, runs: int, rounds: int = 5) -> dict:
    """Torch CPU latency of dense and pruned measured in alternating rounds (so load drift on a shared
    machine hits both alike): per batch size, the median over rounds of each round's median."""
    from edgeprune.measure import latency

    per_round = max(runs // rounds, 3)
    out = {}
    for b in batches:
        d, p = [], []
        for _ in range(rounds):
            d.append(latency(dense, shape, batch_size=b, runs=per_round, warmup=3)["median_ms"])
            p.append(latency(pruned, shape, batch_size=b, runs=per_round, warmup=3)["median_ms"])
        out[f"latency_ms_b{b}_before"] = statistics.median(d)
        out[f"latency_ms_b{b}_after"] = statistics.median(p)
    return out


def paired_ort_latency(dense, pruned, shape, batches, runs: int, rounds: int = 5) -> dict:
    """ONNX Runtime latency of dense and pruned (exported with edgeprune.export.onnx), alternating rounds."""
    import tempfile

    import numpy as np

    from edgeprune.export.onnx import export_onnx, ort_session
    from edgeprune.measure.latency import time_calls

    per_round = max(runs // rounds, 3)
    out = {}
    with tempfile.TemporaryDirectory(prefix="vbp-bench-") as folder:
        sessions = []
        for tag, model in (("dense", dense), ("pruned", pruned)):
            path = Path(folder) / f"{tag}.onnx"
            export_onnx(model, path, input_shape=tuple(shape))
            sessions.append(ort_session(path))
        name = sessions[0].get_inputs()[0].name
        for b in batches:
            x = np.random.default_rng(0).standard_normal((b, *shape), dtype=np.float32)
            times = [[], []]
            for _ in range(rounds):
                for i, session in enumerate(sessions):
                    t = time_calls(lambda s=session, x=x: s.run(None, {name: x}), runs=per_round, warmup=3)
                    times[i].append(t["median_ms"])
            out[f"ort_latency_ms_b{b}_before"] = statistics.median(times[0])
            out[f"ort_latency_ms_b{b}_after"] = statistics.median(times[1])
    return out


def with_speedups(rec: dict, batches) -> None:
    """Speedup and speedup / MAC ratio from the paired latencies (overrides the unpaired ones)."""
    for b in batches:
        for prefix in ("", "ort_"):
            if f"{prefix}latency_ms_b{b}_before" in rec:
                speedup = rec[f"{prefix}latency_ms_b{b}_before"] / rec[f"{prefix}latency_ms_b{b}_after"]
                rec[f"{prefix}speedup_b{b}"] = speedup
                rec[f"{prefix}speedup_over_mac_ratio_b{b}"] = speedup / rec["mac_ratio"]


def run_seed(seed: int, args, root: Path) -> dict:
    t_seed = time.perf_counter()
    splits = data.load("mnist", root=root, seed=seed, limit=args.limit)
    shape = (splits.in_channels, splits.image_size, splits.image_size)
    kwargs = {"dim": args.dim, "depth": args.depth, "num_heads": args.heads}
    train_cfg = default_config("vit", epochs=args.epochs, batch_size=128, lr=args.dense_lr,
                               warmup_epochs=args.warmup, seed=seed)
    torch.manual_seed(seed)
    dense, dense_metrics = train_dense("vit", splits, train_cfg, None, model_kwargs=kwargs, progress=False,
                                       latency_batches=())
    dense.eval()
    out = {"seed": seed, "dense": {"val_acc": dense_metrics["val_acc"], "test_acc": dense_metrics["test_acc"],
                                   "train_seconds": dense_metrics["train"]["seconds"]}}
    print(f"[seed {seed}] dense val {dense_metrics['val_acc']:.4f} test {dense_metrics['test_acc']:.4f} "
          f"({dense_metrics['train']['seconds']:.0f} s)", flush=True)

    t = time.perf_counter()
    calib = data.make_loader(splits.train.with_augment(False), 256, shuffle=True, seed=seed)
    stats = vbp.collect_statistics(dense, calib, calib_batches=args.calib_batches)
    out["statistics"] = {"seconds": time.perf_counter() - t, "samples": next(iter(stats.values())).count,
                         "blocks": len(stats), "neurons": sum(b.width for b in stats.values())}

    before = vbp.measure_cost(dense, shape, latency_batches=(), onnx=False)
    out["dense"].update(before)
    ft_cfg = TrainConfig.build(optimizer="adamw", lr=args.ft_lr, weight_decay=0.01, schedule="cosine",
                               epochs=args.ft_epochs, batch_size=args.ft_batch, max_batches=args.ft_steps,
                               patience=None, seed=seed)
    ratios = []
    for ratio in args.ratios:
        rec = {"ratio": ratio}
        for name, (selection, compensation) in ABLATIONS.items():
            pruned, vstats = vbp.prune_with_statistics(dense, stats, ratio, selection=selection,
                                                       compensation=compensation, seed=seed)
            if name == "variance+mean-shift":
                rec["pruned_neurons"] = vstats.pruned_neurons
                rec["kept_per_block"] = [b.kept for b in vstats.blocks.values()]
                rec["retained_val_acc"] = accuracy(pruned, splits.val)
                rec["retained_test_acc"] = accuracy(pruned, splits.test)
                after = vbp.measure_cost(pruned, shape, latency_batches=(), onnx=False)
                rec.update({f"{k}_after": v for k, v in after.items()})
                rec.update(vbp.reductions(before, after))
                rec.update(paired_latency(dense, pruned, shape, args.latency_batches, args.latency_runs))
                if args.onnx:
                    rec.update(paired_ort_latency(dense, pruned, shape, args.latency_batches, args.latency_runs))
                with_speedups(rec, args.latency_batches)
                if any(abs(ratio - r) < 1e-9 for r in args.ft_ratios):
                    t = time.perf_counter()
                    ft, val_final, kept = vbp.finetune_kd(pruned, dense, splits, ft_cfg,
                                                          val_retained=rec["retained_val_acc"])
                    rec["final_val_acc"] = val_final
                    rec["final_test_acc"] = accuracy(pruned, splits.test) if kept else rec["retained_test_acc"]
                    rec["finetune_kept"] = kept
                    rec["finetune_seconds"] = time.perf_counter() - t
                    rec["finetune_val_history"] = [h["val_acc"] for h in ft["history"]]
            else:
                rec[f"ablation_test_acc[{name}]"] = accuracy(pruned, splits.test)
        ratios.append(rec)
        extra = f", FT test {rec['final_test_acc']:.4f}" if "final_test_acc" in rec else ""
        print(f"[seed {seed}] ratio {ratio:.2f}: retained test {rec['retained_test_acc']:.4f}{extra}, MACs "
              f"-{rec['macs_reduction']:.1%}, speedup b1 {rec.get('speedup_b1', float('nan')):.2f}x", flush=True)
    out["ratios"] = ratios
    out["seconds"] = time.perf_counter() - t_seed
    return out


def aggregate(seeds: list[dict], args) -> list[dict]:
    """Per ratio: mean ± std over seeds of relative accuracies, reductions and speedups."""
    rows = []
    for i, ratio in enumerate(args.ratios):
        recs = [(s["dense"], s["ratios"][i]) for s in seeds]
        row = {"ratio": ratio}

        def add(key, fn, recs=recs, row=row):
            vals = [fn(d, r) for d, r in recs]
            if all(v is not None for v in vals):
                row[key] = mean_std(vals)

        add("retained_rel_test", lambda d, r: r["retained_test_acc"] / d["test_acc"])
        add("retained_rel_val", lambda d, r: r["retained_val_acc"] / d["val_acc"])
        add("final_rel_test", lambda d, r: r["final_test_acc"] / d["test_acc"] if "final_test_acc" in r else None)
        add("final_rel_val", lambda d, r: r["final_val_acc"] / d["val_acc"] if "final_val_acc" in r else None)
        for name in ABLATIONS:
            if name != "variance+mean-shift":
                add(f"ablation_rel_test[{name}]", lambda d, r, n=name: r[f"ablation_test_acc[{n}]"] / d["test_acc"])
        for key in ("params_reduction", "macs_reduction", "mac_ratio"):
            add(key, lambda d, r, k=key: r[k])
        for b in args.latency_batches:
            for prefix in ("", "ort_"):
                add(f"{prefix}speedup_b{b}", lambda d, r, k=f"{prefix}speedup_b{b}": r.get(k))
                add(f"{prefix}speedup_over_mac_ratio_b{b}", lambda d, r, k=f"{prefix}speedup_over_mac_ratio_b{b}": r.get(k))
        rows.append(row)
    return rows


def deit_base(args) -> dict:
    """DeiT-Base default config, random weights, 55 % of MLP neurons: cost before/after."""
    t0 = time.perf_counter()
    torch.manual_seed(0)
    model = models.create("hf-config:deit", num_classes=1000, in_channels=3, image_size=224).eval()
    gen = torch.Generator().manual_seed(0)
    calib = [(torch.randn(4, 3, 224, 224, generator=gen), torch.zeros(4, dtype=torch.long)) for _ in range(2)]
    t = time.perf_counter()
    pruned, vstats = vbp.prune(model, calib, args.deit_ratio)
    prune_s = time.perf_counter() - t
    shape = (3, 224, 224)
    before = vbp.measure_cost(model, shape, latency_batches=(), onnx=False)
    after = vbp.measure_cost(pruned, shape, latency_batches=(), onnx=False)
    rounds = max(args.deit_runs // 3, 1)
    paired = paired_latency(model, pruned, shape, (1,), args.deit_runs, rounds=rounds)
    if args.deit_onnx:
        paired.update(paired_ort_latency(model, pruned, shape, (1,), args.deit_runs, rounds=rounds))
    x = torch.randn(2, 3, 224, 224, generator=gen)
    with torch.no_grad():
        drift = float((pruned(x) - model(x)).abs().max())
    result = {
        "model": "hf-config:deit (DeiT-Base default config, random weights)",
        "ratio": args.deit_ratio,
        "pruned_neurons": vstats.pruned_neurons,
        "total_neurons": vstats.total_neurons,
        "kept_per_block": [b.kept for b in vstats.blocks.values()],
        "calibration": "2 batches of 4 random N(0,1) images",
        "prune_seconds": prune_s,
        **{f"{k}_before": v for k, v in before.items()},
        **{f"{k}_after": v for k, v in after.items()},
        **vbp.reductions(before, after),
        **paired,
        "max_abs_logit_change": drift,
        "paper": PAPER_DEIT_B,
        "seconds": time.perf_counter() - t0,
    }
    with_speedups(result, (1,))
    return result


def fmt_ms(pair) -> str:
    m, s = pair
    return f"{100 * m:.2f} ± {100 * s:.2f}"


def section(result: dict, args) -> str:
    rows = result["summary"]
    seeds = result["seeds"]
    dense_test = mean_std([s["dense"]["test_acc"] for s in seeds])
    dense_macs = seeds[0]["dense"]["macs"]
    dense_params = seeds[0]["dense"]["params"]
    lat_cols = [f"speedup_b{b}" for b in args.latency_batches]
    lines = [
        f"### Variance-Based Pruning, ViT on MNIST (`benchmarks/{NAME}.py`)",
        "",
        f"Zoo `vit` (dim {args.dim}, depth {args.depth}, {args.heads} heads, patch 4, {dense_params:,} params, "
        f"{dense_macs:,} MACs/image) trained {args.epochs} epochs per seed; seeds {', '.join(map(str, args.seeds))} "
        f"(mean ± std). Dense test accuracy {fmt_ms(dense_test)} %. Statistics: "
        f"{'one pass over the training split' if args.calib_batches == 0 else f'{args.calib_batches} batches of 256'}. "
        f"Relative = % of the dense model's test accuracy. Fine-tune: KD from the dense model, AdamW lr {args.ft_lr:g}, "
        f"cosine, wd 0.01, batch {args.ft_batch}, {args.ft_epochs} epochs × {args.ft_steps} steps, best validation epoch. "
        f"Speedup = dense / pruned median CPU latency (torch, {result['threads']} threads); "
        f"÷MAC = speedup / (dense MACs / pruned MACs).",
        "",
        "| pruned | params red. | MACs red. | retained (rel.) | after KD fine-tune (rel.) | "
        + " | ".join(f"speedup b{b} (÷MAC)" for b in args.latency_batches) + " |",
        "|---:|---:|---:|---:|---:|" + "---:|" * len(lat_cols),
    ]
    for r in rows:
        final = fmt_ms(r["final_rel_test"]) + " %" if "final_rel_test" in r else "—"
        lat = []
        for b in args.latency_batches:
            sp, eff = r.get(f"speedup_b{b}"), r.get(f"speedup_over_mac_ratio_b{b}")
            lat.append(f"{sp[0]:.2f}× ({eff[0]:.2f})" if sp else "—")
        lines.append(
            f"| {r['ratio']:.0%} | {100 * r['params_reduction'][0]:.2f} % | {100 * r['macs_reduction'][0]:.2f} % | "
            f"{fmt_ms(r['retained_rel_test'])} % | {final} | " + " | ".join(lat) + " |"
        )
    lines += ["", "Ablation, retained test accuracy relative to dense (no fine-tune):", "",
              "| pruned | " + " | ".join(ABLATIONS) + " |", "|---:|" + "---:|" * len(ABLATIONS)]
    for r in rows:
        cells = [fmt_ms(r["retained_rel_test"])] + [fmt_ms(r[f"ablation_rel_test[{n}]"]) for n in ABLATIONS if
                                                     n != "variance+mean-shift"]
        lines.append(f"| {r['ratio']:.0%} | " + " | ".join(c + " %" for c in cells) + " |")
    if any("ort_speedup_b1" in r for r in rows):
        lines += ["", "ONNX Runtime speedup (÷MAC), same models: " + "; ".join(
            f"{r['ratio']:.0%}: " + ", ".join(
                f"b{b} {r[f'ort_speedup_b{b}'][0]:.2f}× ({r[f'ort_speedup_over_mac_ratio_b{b}'][0]:.2f})"
                for b in args.latency_batches if f"ort_speedup_b{b}" in r) for r in rows) + "."]
    deit = result.get("deit_base")
    if deit:
        ort = ""
        if "ort_speedup_b1" in deit:
            ort = (f"; ONNX Runtime {deit['ort_latency_ms_b1_before']:.0f} → {deit['ort_latency_ms_b1_after']:.0f} ms "
                   f"({deit['ort_speedup_b1']:.2f}×)")
        lines += [
            "",
            f"DeiT-Base (`hf-config:deit`, default config, random weights), {deit['ratio']:.0%} of MLP neurons "
            f"({deit['pruned_neurons']:,}/{deit['total_neurons']:,}): params {deit['params_before'] / 1e6:.2f} M → "
            f"{deit['params_after'] / 1e6:.2f} M (−{100 * deit['params_reduction']:.2f} %, paper −36.01 %), MACs "
            f"{deit['macs_before'] / 1e9:.2f} G → {deit['macs_after'] / 1e9:.2f} G (−{100 * deit['macs_reduction']:.2f} %, "
            f"paper −34.93 %); CPU batch 1 torch {deit['latency_ms_b1_before']:.0f} → {deit['latency_ms_b1_after']:.0f} ms "
            f"({deit['speedup_b1']:.2f}×, ÷MAC {deit['speedup_over_mac_ratio_b1']:.2f}){ort} (paper: 1.44× on H200, "
            f"1.50× on a Xeon CPU).",
        ]
    load = ", ".join(f"{v:.1f}" for v in result["load_average_start"])
    lines += ["", f"Whole run {result['seconds'] / 60:.1f} min wall ({result['cpu_seconds'] / 60:.1f} CPU-min, "
                  f"{result['threads']} torch threads) on {result['machine_line']}; load average at start {load} "
                  f"(the machine is shared)."]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=3, help="dense training epochs")
    ap.add_argument("--dense-lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=float, default=0.3, help="dense warm-up epochs")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--ratios", default="0.1,0.2,0.3,0.4,0.5,0.6")
    ap.add_argument("--ft-ratios", default="0.3,0.5,0.6", help="ratios that get the KD fine-tune")
    ap.add_argument("--ft-lr", type=float, default=1.5e-5, help="the paper's fine-tune lr")
    ap.add_argument("--ft-epochs", type=int, default=2)
    ap.add_argument("--ft-steps", type=int, default=150, help="fine-tune batches per epoch")
    ap.add_argument("--ft-batch", type=int, default=64)
    ap.add_argument("--calib-batches", type=int, default=0, help="0 = one pass over the training split")
    ap.add_argument("--latency", default="1,32", help="latency batch sizes")
    ap.add_argument("--latency-runs", type=int, default=100, help="timed runs per model and batch size (5 rounds)")
    ap.add_argument("--no-onnx", dest="onnx", action="store_false", help="skip ONNX Runtime on the MNIST models")
    ap.add_argument("--no-deit", action="store_true")
    ap.add_argument("--deit-ratio", type=float, default=0.55)
    ap.add_argument("--deit-runs", type=int, default=12)
    ap.add_argument("--no-deit-onnx", dest="deit_onnx", action="store_false", help="skip DeiT-B in ONNX Runtime")
    ap.add_argument("--limit", type=int, default=None, help="training examples (quick runs)")
    ap.add_argument("--quick", action="store_true", help="smoke test: 1 seed, 1 epoch, 6000 images, no DeiT")
    args = ap.parse_args()
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.ratios = floats(args.ratios)
    args.ft_ratios = floats(args.ft_ratios)
    args.latency_batches = [int(b) for b in args.latency.split(",")]
    if args.quick:
        args.seeds, args.epochs, args.limit, args.no_deit, args.latency_runs = [0], 1, 6000, True, 10
        args.ft_steps, args.ratios, args.ft_ratios = 20, [0.3, 0.5], [0.5]
    if args.threads:
        torch.set_num_threads(args.threads)
    root = shared_data_dir()
    if root is None:
        sys.exit("MNIST not found: set EDGEPRUNE_DATA to a folder holding mnist/")

    start, cpu_start = time.perf_counter(), time.process_time()
    result = {"name": NAME, "settings": {k: v for k, v in vars(args).items()}, "threads": torch.get_num_threads(),
              "load_average_start": list(os.getloadavg())}
    seeds = []
    for seed in args.seeds:
        seeds.append(run_seed(seed, args, root))
    result["seeds"] = seeds
    result["summary"] = aggregate(seeds, args)
    if not args.no_deit:
        result["deit_base"] = deit_base(args)
        d = result["deit_base"]
        print(f"[deit-b] params -{d['params_reduction']:.2%} MACs -{d['macs_reduction']:.2%} "
              f"speedup b1 {d['speedup_b1']:.2f}x", flush=True)
    result["seconds"] = time.perf_counter() - start
    result["cpu_seconds"] = time.process_time() - cpu_start
    result["load_average_end"] = list(os.getloadavg())
    from edgeprune.measure import machine_info

    info = machine_info()
    result["machine_line"] = f"{info['cpu']}, {info['cores']} cores, torch {info['torch']}"
    md = section(result, args)
    if args.quick:  # a smoke test never overwrites the committed result
        print(md)
        return
    save(NAME, result, md)
    print(md)


if __name__ == "__main__":
    main()

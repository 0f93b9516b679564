"""Edge deployment of dense and pruned models: ONNX FP32 / INT8 accuracy in ONNX Runtime, bytes of every
artifact beside the information bound, torch vs ONNX Runtime latency, structured speedup vs MAC ratio.

    python benchmarks/deploy.py [--epochs 3] [--ft-epochs 1] [--resnet-limit 10000] [--threads 1] [--quick]

Models (MNIST, one seed; test accuracy measured once per final model):

* LeNet-300-100 and LeNet-5 trained ``--epochs`` epochs (SGD, the one loop), then global magnitude pruning
  at 90 / 95 / 98 % (one threshold over all Conv/Linear weights, exact counts) and a ``--ft-epochs``
  fine-tune with the masks kept exact (``fit(masks=)``).
* ResNet-20 trained on ``--resnet-limit`` MNIST images, then 50 % of the output channels of every coupled
  channel group removed physically (lowest summed L1 filter norm; torch-pruning's DependencyGraph through
  ``edgeprune.surgery.channels``; the classifier's group is protected) and a ``--ft-epochs`` fine-tune.

For every model: top-1 in PyTorch, FP32 and static-INT8 (QDQ, per-channel, 16 calibration batches of the
training split) top-1 in ONNX Runtime (``edgeprune.export.evaluate_int8``), bytes of the checkpoint, the
ONNX files and the ``.epz`` artifact with FP32 / FP16 / INT8 values beside the information bound, torch and
ORT (FP32, INT8) latency at batch 1 and 32 with ``--threads`` intra-op threads. A synthetic table checks
the pattern coder against n·H(d) on random masks at 50-99 % sparsity.

Results: benchmarks/results/deploy.json and the README section benchmarks/sections/deploy.md.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import save, shared_data_dir  # noqa: E402
from edgeprune import data, models  # noqa: E402
from edgeprune.export import evaluate_int8, sparse  # noqa: E402
from edgeprune.export.ort_latency import ort_latency  # noqa: E402
from edgeprune.measure import accuracy, latency, macs, nonzeros, param_count, prunable_weights, sparsity  # noqa: E402
from edgeprune.prune.masks import global_masks, make_permanent  # noqa: E402
from edgeprune.surgery.channels import remove_channels  # noqa: E402
from edgeprune.surgery.groups import coupled_groups  # noqa: E402
from edgeprune.train import default_config, fit  # noqa: E402

NAME = "deploy"
LEVELS = (0.9, 0.95, 0.98)
BATCHES = (1, 32)
ARTIFACTS = (("fp32", "channel"), ("fp16", "channel"), ("int8", "channel"), ("int8", "tensor"))


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ------------------------------------------------------------------------------------------------------
# pruning
# ------------------------------------------------------------------------------------------------------


def magnitude_prune(model, level: float) -> dict:
    """Global magnitude masks at ``level`` over all prunable weights, applied in place; returns the masks."""
    masks = global_masks({n: w.detach().abs() for n, w in prunable_weights(model).items()}, level)
    make_permanent(model, masks)
    return masks


def halve_channels(model, example: torch.Tensor, fraction: float = 0.5) -> dict:
    """Remove ``fraction`` of every unprotected coupled group's output channels (lowest summed L1 norm)."""
    modules = dict(model.named_modules())
    plan = {}
    for group in coupled_groups(model, example):
        if group.protected:
            continue
        norms = sum(modules[m].weight.detach().abs().flatten(1).sum(1) for m in group.members)
        drop = torch.argsort(norms)[: int(fraction * group.channels)]
        if len(drop):
            plan[group.members[0]] = sorted(int(i) for i in drop)
    return remove_channels(model, example, plan)


# ------------------------------------------------------------------------------------------------------
# measuring one model
# ------------------------------------------------------------------------------------------------------


def measure(label: str, model, splits, args, workdir: Path) -> dict:
    """Accuracies (torch, ORT FP32, ORT INT8) and the sizes of every artifact (latency: see latency_rounds)."""
    t0 = time.perf_counter()
    model.eval()
    shape = (splits.in_channels, splits.image_size, splits.image_size)
    folder = workdir / label
    folder.mkdir(parents=True, exist_ok=True)
    report = macs(model, torch.zeros(1, *shape))
    ckpt = models.save(model, folder / "model.pt")
    out = {
        "model": label, "spec": model.edgeprune_build["spec"], "sparsity": sparsity(model),
        "params": param_count(model), "nonzeros": nonzeros(model), "macs": report.dense,
        "effective_macs": report.effective, "test_acc_torch": accuracy(model, splits.test),
        "checkpoint_bytes": ckpt.stat().st_size,
    }
    q = evaluate_int8(model, splits, "static", calib_batches=args.calib_batches, workdir=folder)
    out.update({k: q[k] for k in ("fp32_acc_ort", "int8_acc_ort", "onnx_bytes", "int8_onnx_bytes", "max_abs_diff")})
    out["int8_settings"] = {k: v for k, v in q["int8"].items() if k not in ("bytes", "seconds")}

    artifacts = {}
    for values, scale in ARTIFACTS:
        key = values if values != "int8" else f"int8-{scale}"
        path = folder / f"model.{key}.epz"
        info = sparse.save(model, path, values=values, int8_scale=scale)
        loaded = sparse.load(path)
        artifacts[key] = {k: info[k] for k in ("bytes", "bound_bytes", "ratio_to_bound", "dense_fp32_bytes",
                                               "pattern_bytes", "pattern_bound_bytes", "value_bytes",
                                               "raw_value_bytes", "scale_bytes", "header_bytes")}
        # rebuilt FP16/INT8-valued models are scored only where the artifact is meant for (unstructured sparsity)
        artifacts[key]["test_acc_torch"] = (out["test_acc_torch"] if values == "fp32"
                                            else accuracy(loaded, splits.test) if out["sparsity"] > 0 else None)
        if values == "fp32":  # the FP32 artifact must rebuild the model exactly
            artifacts[key]["exact"] = all(torch.equal(a, b) for a, b in
                                          zip(model.state_dict().values(), loaded.state_dict().values()))
    out["artifacts"] = artifacts

    out["seconds"] = time.perf_counter() - t0
    log(f"{label}: sparsity {out['sparsity']:.3f} acc torch {out['test_acc_torch']:.4f} ORT FP32 "
        f"{out['fp32_acc_ort']:.4f} INT8 {out['int8_acc_ort']:.4f}; epz FP32 {artifacts['fp32']['bytes']:,} B "
        f"({artifacts['fp32']['ratio_to_bound']:.3f}x bound) ({out['seconds']:.0f} s)")
    return out


LATENCY_KEYS = tuple(f"{r}_b{b}" for b in BATCHES for r in ("torch", "ort", "ort_int8"))


def latency_rounds(entries: list[tuple[dict, object]], shape: tuple, args, workdir: Path) -> None:
    """Time every (row, model) of one family in ``args.rounds`` interleaved rounds (dense, pruned, dense...)
    so a change in machine load hits all of them alike; store the median of the round medians."""
    seen: dict[str, dict[str, list[float]]] = {row["model"]: {k: [] for k in LATENCY_KEYS} for row, _ in entries}
    threads = args.threads
    for _ in range(args.rounds):
        for row, model in entries:
            folder = workdir / row["model"]
            for b in BATCHES:
                times = seen[row["model"]]
                times[f"torch_b{b}"].append(latency(model, shape, batch_size=b, runs=args.runs, warmup=5,
                                                    threads=threads)["median_ms"])
                times[f"ort_b{b}"].append(ort_latency(folder / "model.onnx", shape, batch_size=b, runs=args.runs,
                                                      warmup=5, threads=threads)["median_ms"])
                times[f"ort_int8_b{b}"].append(ort_latency(folder / "model.int8.onnx", shape, batch_size=b,
                                                           runs=args.runs, warmup=5, threads=threads)["median_ms"])
    for row, _ in entries:
        times = seen[row["model"]]
        row["latency"] = {k: {"median_ms": statistics.median(v), "round_medians_ms": v, "threads": threads,
                              "runs_per_round": args.runs} for k, v in times.items()}
        log(f"{row['model']}: latency ms torch b1/b32 {row['latency']['torch_b1']['median_ms']:.3f} / "
            f"{row['latency']['torch_b32']['median_ms']:.3f}, ORT {row['latency']['ort_b1']['median_ms']:.3f} / "
            f"{row['latency']['ort_b32']['median_ms']:.3f}, ORT INT8 {row['latency']['ort_int8_b1']['median_ms']:.3f} / "
            f"{row['latency']['ort_int8_b32']['median_ms']:.3f}")


# ------------------------------------------------------------------------------------------------------
# the experiments
# ------------------------------------------------------------------------------------------------------


def train(spec: str, splits, epochs: int, seed: int):
    torch.manual_seed(seed)
    model = models.create(spec, num_classes=splits.num_classes, in_channels=splits.in_channels,
                          image_size=splits.image_size)
    cfg = default_config(spec, epochs=epochs, batch_size=128, seed=seed)
    result = fit(model, splits.train, splits.val, cfg, progress=False, description=f"train {spec}")
    log(f"{spec}: trained {epochs} epochs, best val {result.best_val_acc:.4f} ({result.seconds:.0f} s)")
    return model, result


def unstructured(spec: str, splits, args, workdir: Path) -> list[dict]:
    dense, res = train(spec, splits, args.lenet300_epochs if spec == "lenet300" else args.lenet5_epochs, args.seed)
    rows = [{**measure(f"{spec}-dense", dense, splits, args, workdir), "train_seconds": res.seconds}]
    entries = [(rows[0], dense)]
    for level in LEVELS:
        model = models.create(spec, num_classes=splits.num_classes, in_channels=splits.in_channels,
                              image_size=splits.image_size)
        model.load_state_dict(dense.state_dict())
        masks = magnitude_prune(model, level)
        before = accuracy(model, splits.val)
        cfg = default_config(spec, epochs=args.ft_epochs, batch_size=128, lr=0.01, seed=args.seed)
        ft = fit(model, splits.train, splits.val, cfg, masks=masks, progress=False, description=f"ft {spec} {level}")
        log(f"{spec} @ {level:.0%}: val {before:.4f} after pruning, {ft.best_val_acc:.4f} after fine-tune")
        row = measure(f"{spec}-mag{round(level * 100)}", model, splits, args, workdir)
        row.update({"target_sparsity": level, "val_acc_pruned": before, "val_acc_finetuned": ft.best_val_acc})
        rows.append(row)
        entries.append((row, model))
    latency_rounds(entries, (splits.in_channels, splits.image_size, splits.image_size), args, workdir)
    return rows


def structured(splits, args, workdir: Path) -> dict:
    spec = "resnet20"
    dense, res = train(spec, splits, args.resnet_epochs, args.seed)
    dense_row = {**measure(f"{spec}-dense", dense, splits, args, workdir), "train_seconds": res.seconds}
    model = models.load(workdir / f"{spec}-dense" / "model.pt")
    example = torch.zeros(1, splits.in_channels, splits.image_size, splits.image_size)
    removed = halve_channels(model, example, 0.5)
    before = accuracy(model, splits.val)
    cfg = default_config(spec, epochs=args.ft_epochs, batch_size=128, lr=0.02, seed=args.seed)
    ft = fit(model, splits.train, splits.val, cfg, progress=False, description="ft resnet20 channels")
    log(f"{spec} 50% channels: val {before:.4f} after removal, {ft.best_val_acc:.4f} after fine-tune")
    pruned_row = measure(f"{spec}-ch50", model, splits, args, workdir)
    pruned_row.update({"val_acc_pruned": before, "val_acc_finetuned": ft.best_val_acc, "layers_touched": len(removed)})
    latency_rounds([(dense_row, dense), (pruned_row, model)],
                   (splits.in_channels, splits.image_size, splits.image_size), args, workdir)
    mac_ratio = dense_row["macs"] / pruned_row["macs"]
    speed = {}
    for key in LATENCY_KEYS:
        s = dense_row["latency"][key]["median_ms"] / pruned_row["latency"][key]["median_ms"]
        speed[key] = {"speedup": s, "speedup_over_mac_ratio": s / mac_ratio}
    return {"dense": dense_row, "pruned": pruned_row, "mac_ratio": mac_ratio,
            "param_ratio": dense_row["params"] / pruned_row["params"], "speedup": speed}


def random_mask_bound(seed: int) -> list[dict]:
    """The .epz coder against n·H(d) on LeNet-300-100 with random (i.i.d.) masks at 50-99 % sparsity."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for level in (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99):
            torch.manual_seed(seed)
            model = models.create("lenet300", num_classes=10, in_channels=1, image_size=28)
            make_permanent(model, global_masks({n: torch.rand_like(w) for n, w in prunable_weights(model).items()}, level))
            row = {"sparsity": level}
            for values, scale in ARTIFACTS:
                key = values if values != "int8" else f"int8-{scale}"
                info = sparse.save(model, Path(tmp) / "m.epz", values=values, int8_scale=scale)
                row[key] = {k: info[k] for k in ("bytes", "bound_bytes", "ratio_to_bound", "pattern_bytes",
                                                 "pattern_bound_bytes", "value_bytes", "raw_value_bytes",
                                                 "scale_bytes", "header_bytes")}
            rows.append(row)
    return rows


# ------------------------------------------------------------------------------------------------------
# report
# ------------------------------------------------------------------------------------------------------


def kb(n: float) -> str:
    return f"{n / 1024:,.1f}"


def section(result: dict) -> str:
    s = result["settings"]
    rows = result["unstructured"] + [result["structured"]["dense"], result["structured"]["pruned"]]
    lines = [
        "### Edge deployment: ONNX, INT8, compressed sparse artifacts (`benchmarks/deploy.py`)",
        "",
        f"MNIST, one seed ({s['seed']}). LeNet-300-100 / LeNet-5: {s['lenet300_epochs']} / {s['lenet5_epochs']} epochs dense, global magnitude "
        f"pruning + {s['ft_epochs']} fine-tune epoch(s) with exact masks. ResNet-20: {s['resnet_epochs']} epochs on "
        f"{s['resnet_limit']:,} training images, then 50 % of every coupled channel group removed (torch-pruning "
        f"DependencyGraph) + {s['ft_epochs']} fine-tune epoch(s). INT8 = ONNX Runtime static QDQ, per-channel "
        f"weights, {s['calib_batches']} calibration batches of 32 training images. Accuracy columns are test top-1 "
        f"(%); FP32/INT8 are measured in ONNX Runtime {result['versions']['onnxruntime']}.",
        "",
        "| model | sparsity | torch | ORT FP32 | ORT INT8 | ONNX KiB | INT8 ONNX KiB | .epz FP32 KiB | .epz FP16 KiB "
        "| .epz INT8 KiB (chan / tensor) | FP32 bound KiB | .epz FP32 / bound | pattern / n·H(d) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        a = r["artifacts"]
        pat = (a["fp32"]["pattern_bytes"] / a["fp32"]["pattern_bound_bytes"]) if a["fp32"]["pattern_bound_bytes"] else float("nan")
        lines.append(
            f"| {r['model']} | {100 * r['sparsity']:.1f} % | {100 * r['test_acc_torch']:.2f} | {100 * r['fp32_acc_ort']:.2f} | "
            f"{100 * r['int8_acc_ort']:.2f} | {kb(r['onnx_bytes'])} | {kb(r['int8_onnx_bytes'])} | {kb(a['fp32']['bytes'])} | "
            f"{kb(a['fp16']['bytes'])} | {kb(a['int8-channel']['bytes'])} / {kb(a['int8-tensor']['bytes'])} | "
            f"{kb(a['fp32']['bound_bytes'])} | {a['fp32']['ratio_to_bound']:.3f} | "
            f"{'—' if math.isnan(pat) else f'{pat:.3f}'} |")
    exact = all(r["artifacts"]["fp32"]["exact"] for r in rows)
    lines += [
        "",
        f"Every FP32 .epz rebuilt its model exactly: {'yes' if exact else 'NO'}. ONNX and INT8 ONNX files of "
        "unstructured models are as large as dense ones (ONNX stores the zeros); the .epz is where unstructured "
        "sparsity pays off. n·H(d) bounds i.i.d. patterns; magnitude masks are burstier (e.g. MNIST's blank "
        "border pixels lose whole columns of LeNet-300's first layer), so the Golomb code, whose parameter is "
        "fitted to the actual gaps, can land slightly below it.",
        "",
        "Accuracy of the pruned models rebuilt from their .epz in PyTorch (test top-1 %; FP32 is exact): "
        + "; ".join(f"{r['model']}: FP16 {100 * r['artifacts']['fp16']['test_acc_torch']:.2f}, INT8 chan "
                    f"{100 * r['artifacts']['int8-channel']['test_acc_torch']:.2f} / tensor "
                    f"{100 * r['artifacts']['int8-tensor']['test_acc_torch']:.2f}" for r in rows if r["sparsity"] > 0) + ".",
        "",
        f"Latency, ms per call: median over {s['rounds']} interleaved rounds (every model of a family timed in "
        f"turn, so load changes on this shared 2-core machine hit all alike) of the median of {s['runs']} runs "
        f"after 5 warm-up; {s['threads']} intra-op thread(s); {result['machine']['cpu']}:",
        "",
        "| model | torch b1 | ORT b1 | ORT INT8 b1 | torch b32 | ORT b32 | ORT INT8 b32 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        L = r["latency"]
        lines.append(f"| {r['model']} | " + " | ".join(f"{L[k]['median_ms']:.3f}" for k in
                                                    ("torch_b1", "ort_b1", "ort_int8_b1", "torch_b32", "ort_b32", "ort_int8_b32")) + " |")
    st = result["structured"]
    lines += [
        "",
        f"Structured ResNet-20 (50 % channels): params {st['dense']['params']:,} → {st['pruned']['params']:,} "
        f"({st['param_ratio']:.2f}x), MACs/image {st['dense']['macs']:,} → {st['pruned']['macs']:,} "
        f"(MAC ratio {st['mac_ratio']:.2f}x), test top-1 {100 * st['dense']['test_acc_torch']:.2f} → "
        f"{100 * st['pruned']['test_acc_torch']:.2f} %.",
        "",
        "| runtime, batch | speedup | speedup / MAC ratio (goal ≥ 0.9) |",
        "|---|---:|---:|",
    ]
    for key, v in st["speedup"].items():
        lines.append(f"| {key.replace('_b', ', batch ')} | {v['speedup']:.2f}x | {v['speedup_over_mac_ratio']:.2f} |")
    lines += [
        "",
        "Unstructured sparsity does not change latency in either runtime (dense kernels multiply the zeros). "
        "Halving the channels cuts MACs 4x but the narrower layers (8/16/32 channels) use the CPU less "
        "efficiently and element-wise work only halves, so the measured speedup stays below the MAC ratio "
        "except for torch at batch 1, where the dense model's per-layer overhead dominates.",
    ]
    lines += [
        "",
        "Pattern coder on random (i.i.d.) masks, LeNet-300-100 (266,610 weights): file bytes / information bound "
        "(n·H(d) + nnz·b bits per tensor; INT8 scales and the header are not in the bound, byte-plane LZMA can take "
        "FP32/FP16 values below their raw width):",
        "",
        "| sparsity | pattern / n·H(d) | FP32 | FP16 | INT8 (channel scales) | INT8 (tensor scale) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["random_masks"]:
        lines.append(f"| {100 * r['sparsity']:.0f} % | {r['fp32']['pattern_bytes'] / r['fp32']['pattern_bound_bytes']:.3f} | "
                     f"{r['fp32']['ratio_to_bound']:.3f} | {r['fp16']['ratio_to_bound']:.3f} | "
                     f"{r['int8-channel']['ratio_to_bound']:.3f} | {r['int8-tensor']['ratio_to_bound']:.3f} |")
    lines += ["", f"Whole run {result['seconds'] / 60:.1f} min."]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lenet300-epochs", type=int, default=3, help="dense epochs of LeNet-300-100")
    ap.add_argument("--lenet5-epochs", type=int, default=2, help="dense epochs of LeNet-5")
    ap.add_argument("--ft-epochs", type=int, default=1, help="fine-tune epochs after pruning")
    ap.add_argument("--resnet-epochs", type=int, default=3)
    ap.add_argument("--resnet-limit", type=int, default=8000, help="MNIST train+val images for ResNet-20")
    ap.add_argument("--calib-batches", type=int, default=16)
    ap.add_argument("--runs", type=int, default=30, help="timed latency runs per setting and round")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved latency rounds (median of round medians)")
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads for training and latency")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="smoke run: 2000 images, 1 epoch, 5 runs")
    ap.add_argument("--render", action="store_true", help="only re-render the README section from results/deploy.json")
    args = ap.parse_args()
    if args.render:
        import json

        from common import RESULTS, SECTIONS
        from edgeprune.utils.io import write_text

        text = section(json.loads((RESULTS / f"{NAME}.json").read_text()))
        write_text(SECTIONS / f"{NAME}.md", text.rstrip() + "\n")
        print(text)
        return
    if args.quick:
        args.lenet300_epochs, args.lenet5_epochs, args.ft_epochs, args.resnet_epochs = 1, 1, 1, 1
        args.resnet_limit, args.runs, args.rounds = 2000, 5, 1
    root = shared_data_dir()
    if root is None:
        sys.exit("MNIST not found: set EDGEPRUNE_DATA to a folder holding mnist/")
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    import onnx
    import onnxruntime

    with tempfile.TemporaryDirectory(prefix="edgeprune-deploy-") as tmp:
        workdir = Path(tmp)
        splits = data.load("mnist", root=root, seed=args.seed, limit=2000 if args.quick else None)
        unstructured_rows = []
        for spec in ("lenet300", "lenet5"):
            unstructured_rows += unstructured(spec, splits, args, workdir)
        small = data.load("mnist", root=root, seed=args.seed, limit=args.resnet_limit)
        structured_result = structured(small, args, workdir)
    result = {
        "settings": {k: v for k, v in vars(args).items()},
        "versions": {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__},
        "unstructured": unstructured_rows,
        "structured": structured_result,
        "random_masks": random_mask_bound(args.seed),
        "seconds": time.perf_counter() - start,
    }
    from edgeprune.measure import machine_info

    result["machine"] = machine_info()
    text = section(result)
    if args.quick:
        print(text)
        log("quick run: results not saved")
        return
    save(NAME, result, text)
    print(text)


if __name__ == "__main__":
    main()

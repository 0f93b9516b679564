"""ExecuTorch (XNNPACK) beside ONNX Runtime on the MNIST zoo models, and standard sparse ONNX sizes.

    python benchmarks/executorch_vs_ort.py [--limit 10000] [--epochs 1] [--ft-epochs 1] [--threads 1] [--quick]

Models (MNIST, ``--limit`` train+val images, test split of 10,000; one seed): LeNet-5, ResNet-20, VGG-16 at
1/2 width and the zoo ViT, each trained ``--epochs`` epochs (SGD for CNNs, AdamW for the ViT, the one loop),
plus a structured version: the CNNs lose 50 % of every unprotected coupled channel group (lowest summed L1,
torch-pruning's DependencyGraph through ``edgeprune.surgery.channels``), the ViT 50 % of its MLP hidden neurons
(VBP through ``edgeprune.prune``), then ``--ft-epochs`` of fine-tuning. The budget is small on purpose (2
shared cores): the point is parity, INT8-vs-FP32 and runtime ratios, not state-of-the-art accuracy.

For every model: ONNX FP32 + static INT8 (QDQ, per-channel, 16 calibration batches; ``evaluate_int8``) and
ExecuTorch FP32 + INT8 (PT2E, XNNPACK quantizer, per-channel, the same 16 training batches), all exported
at batch 1 for the device (the ``.pte`` is checked against PyTorch on 64 test images); test top-1 of all
four in their runtimes; file bytes; the operators left outside the XNNPACK delegate; batch-1 latency of the
eight files of a model pair (dense, structured) timed side by side in interleaved rounds with one thread
(``edgeprune.export.compare_latency``); speed-up ÷ MAC ratio of the structured model in both runtimes.

Sparse ONNX: LeNet-300-100 and LeNet-5 trained ``--sparse-epochs``, global magnitude pruning at 98 % / 95 % (exact
counts) and ``--ft-epochs`` with masks kept exact; dense ONNX vs sparse-initializer ONNX (FP32 and INT8),
ORT output difference, beside the ``.epz`` artifact and gzip of the sparse ONNX.

Results: benchmarks/results/executorch.json and benchmarks/sections/executorch.md. (The script is not named
executorch.py: as sys.path[0] it would shadow the executorch package.)
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import edgeprune  # noqa: E402
from common import save, shared_data_dir  # noqa: E402
from deploy import halve_channels, magnitude_prune  # noqa: E402
from edgeprune import data, models  # noqa: E402
from edgeprune.export import Program, compare_latency, et_accuracy, evaluate_int8, export_executorch, sparse  # noqa: E402
from edgeprune.export.executorch import calibration_batches  # noqa: E402
from edgeprune.export.sparse_onnx import write_sparse  # noqa: E402
from edgeprune.measure import accuracy, macs, param_count  # noqa: E402
from edgeprune.train import default_config, fit  # noqa: E402

NAME = "executorch"
SPECS = (("lenet5", {}), ("resnet20", {}), ("vgg16", {"width_mult": 0.5}), ("vit", {}))


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def create(spec: str, kwargs: dict, splits):
    return models.create(spec, num_classes=splits.num_classes, in_channels=splits.in_channels,
                         image_size=splits.image_size, **kwargs)


def train(spec: str, kwargs: dict, splits, epochs: int, seed: int):
    torch.manual_seed(seed)
    model = create(spec, kwargs, splits)
    cfg = default_config(spec, epochs=epochs, seed=seed)
    result = fit(model, splits.train, splits.val, cfg, progress=False, description=f"train {spec}")
    log(f"{spec}: trained {epochs} epochs, best val {result.best_val_acc:.4f} ({result.seconds:.0f} s)")
    return model


def structured(spec: str, kwargs: dict, dense, splits, args):
    if spec == "vit":
        pruned = edgeprune.prune(dense, splits, method="vbp", budget=0.5, finetune=args.ft_epochs, seed=args.seed)
        log(f"vit VBP 50 %: val {pruned.record.get('val_acc', float('nan')):.4f}")
        return pruned.model.eval()
    model = create(spec, kwargs, splits)
    model.load_state_dict(dense.state_dict())
    example = torch.zeros(1, splits.in_channels, splits.image_size, splits.image_size)
    halve_channels(model, example, 0.5)
    cfg = default_config(spec, epochs=args.ft_epochs, lr=0.02, seed=args.seed)
    ft = fit(model, splits.train, splits.val, cfg, progress=False, description=f"ft {spec} channels")
    log(f"{spec} 50 % channels: val {ft.best_val_acc:.4f} after fine-tune")
    return model.eval()


def measure(label: str, model, splits, args, folder: Path) -> dict:
    """Accuracies and bytes in ONNX Runtime and ExecuTorch (FP32 and INT8); files stay in ``folder``."""
    t0 = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    model.eval()
    inputs = next(iter(data.make_loader(splits.test, 64)))[0]
    ort = evaluate_int8(model, splits, "static", calib_batches=args.calib_batches, workdir=folder)
    et = export_executorch(model, folder / "model.pte", inputs, batch=1)
    calib = calibration_batches(splits.train, args.calib_batches, 32, seed=args.seed)
    et_q = export_executorch(model, folder / "model.int8.pte", inputs, batch=1, int8=True, calibration=calib)
    et_fp32_acc, images = et_accuracy(Program(folder / "model.pte"), splits.test)
    et_int8_acc, _ = et_accuracy(Program(folder / "model.int8.pte"), splits.test)
    example = torch.zeros(1, splits.in_channels, splits.image_size, splits.image_size)
    row = {
        "label": label, "params": param_count(model), "macs": int(macs(model, example).dense),
        "torch_acc": accuracy(model, splits.test), "test_images": images,
        "ort_fp32_acc": ort["fp32_acc_ort"], "ort_int8_acc": ort["int8_acc_ort"],
        "et_fp32_acc": et_fp32_acc, "et_int8_acc": et_int8_acc,
        "onnx_bytes": ort["onnx_bytes"], "onnx_int8_bytes": ort["int8_onnx_bytes"],
        "pte_bytes": et["bytes"], "pte_int8_bytes": et_q["bytes"],
        "parity_ort": ort["max_abs_diff"], "parity_et": et["max_abs_diff"],
        "et_int8_vs_pt2e_reference": et_q["max_abs_diff"],
        "outside_delegate": et["outside_delegate"], "outside_delegate_int8": et_q["outside_delegate"],
        "delegated_subgraphs": et["delegated_subgraphs"], "seconds": time.perf_counter() - t0,
    }
    log(f"{label}: ORT {row['ort_fp32_acc']:.4f}/{row['ort_int8_acc']:.4f}  ET {et_fp32_acc:.4f}/{et_int8_acc:.4f}  "
        f"parity ET {et['max_abs_diff']:.1e}  pte {et['bytes']:,} B  ({row['seconds']:.0f} s)")
    return row


def latency_pair(rows: list[dict], folders: list[Path], args) -> None:
    files = {"onnx_fp32": "model.onnx", "onnx_int8": "model.int8.onnx", "et_fp32": "model.pte", "et_int8": "model.int8.pte"}
    paths = {f"{i}:{key}": folder / name for i, folder in enumerate(folders) for key, name in files.items()}
    timed = compare_latency(paths, batch=1, rounds=args.rounds, runs=args.runs, threads=args.threads)
    for i, row in enumerate(rows):
        row["latency_b1_ms"] = {key: timed[f"{i}:{key}"]["median_ms"] for key in files}
        row["latency_rounds_ms"] = {key: timed[f"{i}:{key}"]["rounds_ms"] for key in files}


def cnn_and_vit(splits, args, workdir: Path, out: list[dict], checkpoint) -> list[dict]:
    """Every model pair of SPECS; ``checkpoint()`` saves what is finished after each pair."""
    for spec, kwargs in SPECS:
        epochs = args.vit_epochs if spec == "vit" and args.vit_epochs else args.epochs
        dense = train(spec, kwargs, splits, epochs, args.seed)
        small = structured(spec, kwargs, dense, splits, args)
        folders = [workdir / f"{spec}-dense", workdir / f"{spec}-structured"]
        rows = [measure(f"{spec}{'/2' if kwargs else ''} dense", dense, splits, args, folders[0]),
                measure(f"{spec}{'/2' if kwargs else ''} structured", small, splits, args, folders[1])]
        latency_pair(rows, folders, args)
        dense_row, small_row = rows
        mac_ratio = dense_row["macs"] / small_row["macs"]
        small_row["mac_ratio"] = mac_ratio
        small_row["speedup"] = {k: dense_row["latency_b1_ms"][k] / small_row["latency_b1_ms"][k]
                                for k in dense_row["latency_b1_ms"]}
        small_row["speedup_over_mac_ratio"] = {k: v / mac_ratio for k, v in small_row["speedup"].items()}
        out += rows
        checkpoint()
    return out


def sparse_sizes(splits, args, workdir: Path) -> list[dict]:
    out = []
    for spec, level in (("lenet300", 0.98), ("lenet5", 0.95)):
        model = train(spec, {}, splits, args.sparse_epochs, args.seed)
        masks = magnitude_prune(model, level)
        cfg = default_config(spec, epochs=args.ft_epochs, lr=0.01, seed=args.seed)
        fit(model, splits.train, splits.val, cfg, masks=masks, progress=False, description=f"ft {spec} {level}")
        folder = workdir / f"{spec}-sparse"
        ort = evaluate_int8(model, splits, "static", calib_batches=args.calib_batches, workdir=folder)
        inputs = next(iter(data.make_loader(splits.test, 256)))[0]
        fp32 = write_sparse(folder / "model.onnx", folder / "model.sparse.onnx", inputs)
        int8 = write_sparse(folder / "model.int8.onnx", folder / "model.int8.sparse.onnx", inputs)
        epz = sparse.save(model, folder / "model.epz", values="fp32")
        epz8 = sparse.save(model, folder / "model.int8.epz", values="int8")
        row = {
            "model": spec, "sparsity": level, "ort_fp32_acc": ort["fp32_acc_ort"], "ort_int8_acc": ort["int8_acc_ort"],
            "onnx_bytes": fp32["dense_bytes"], "sparse_onnx_bytes": fp32["bytes"], "ratio": fp32["ratio_to_dense"],
            "max_abs_diff": fp32["max_abs_diff_to_dense"],
            "onnx_int8_bytes": int8["dense_bytes"], "sparse_onnx_int8_bytes": int8["bytes"],
            "ratio_int8": int8["ratio_to_dense"], "max_abs_diff_int8": int8["max_abs_diff_to_dense"],
            "sparse_onnx_gzip_bytes": len(gzip.compress((folder / "model.sparse.onnx").read_bytes(), 9)),
            "epz_fp32_bytes": epz["bytes"], "epz_int8_bytes": epz8["bytes"],
        }
        log(f"{spec} @ {level:.0%}: ONNX {row['onnx_bytes']:,} -> sparse {row['sparse_onnx_bytes']:,} B "
            f"({row['ratio']:.1f}x, diff {row['max_abs_diff']:.1e}); INT8 {row['onnx_int8_bytes']:,} -> "
            f"{row['sparse_onnx_int8_bytes']:,}; .epz {row['epz_fp32_bytes']:,}")
        out.append(row)
    return out


def _ops(outside: dict) -> str:
    return ", ".join(f"{op.split('::')[-1]}×{n}" for op, n in outside.items()) or "none"


def section(result: dict) -> str:
    s = result["settings"]
    lines = [
        "## ExecuTorch (XNNPACK) beside ONNX Runtime",
        "",
        f"`benchmarks/executorch_vs_ort.py`: MNIST ({s['limit']:,} train+val images, "
        f"{format(result['models'][0]['test_images'], ',') if result['models'] else '?'} "
        f"test), {s['epochs']} training epoch(s)"
        f"{' (ViT ' + str(s['vit_epochs']) + ', AdamW)' if s.get('vit_epochs') else ''}, structured = 50 % of the channels (CNNs) or of the MLP neurons "
        f"(ViT, VBP) + {s['ft_epochs']} fine-tune epoch(s); one seed. All files exported at batch 1. Parity: max "
        "|runtime − PyTorch| logit over 64 test images. Accuracy: test top-1 in the runtime itself. Latency: batch 1, "
        f"1 thread, medians of {s['rounds']} interleaved rounds × {s['runs']} calls, the eight files of a pair side by side.",
        "",
        "| model | MACs | top-1 torch | ORT FP32 / INT8 | ExecuTorch FP32 / INT8 | parity ORT / ET | .onnx / INT8 | "
        ".pte / INT8 | ms ORT FP32 / INT8 | ms ET FP32 / INT8 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["models"]:
        lat = r["latency_b1_ms"]
        lines.append(
            f"| {r['label']} | {r['macs'] / 1e6:.2f} M | {r['torch_acc']:.2%} | {r['ort_fp32_acc']:.2%} / "
            f"{r['ort_int8_acc']:.2%} | {r['et_fp32_acc']:.2%} / {r['et_int8_acc']:.2%} | {r['parity_ort']:.1e} / "
            f"{r['parity_et']:.1e} | {r['onnx_bytes'] / 1e3:,.0f} / {r['onnx_int8_bytes'] / 1e3:,.0f} kB | "
            f"{r['pte_bytes'] / 1e3:,.0f} / {r['pte_int8_bytes'] / 1e3:,.0f} kB | {lat['onnx_fp32']:.3f} / "
            f"{lat['onnx_int8']:.3f} | {lat['et_fp32']:.3f} / {lat['et_int8']:.3f} |")
    lines += ["", "Structured vs dense: speed-up at batch 1 and speed-up ÷ MAC ratio (1.0 = the whole theoretical gain).",
              "", "| model | MAC ratio | ORT FP32 | ORT INT8 | ExecuTorch FP32 | ExecuTorch INT8 |", "|---|---:|---:|---:|---:|---:|"]
    for r in result["models"]:
        if "speedup" in r:
            sp, eff = r["speedup"], r["speedup_over_mac_ratio"]
            cells = " | ".join(f"{sp[k]:.2f}× ({eff[k]:.2f})" for k in ("onnx_fp32", "onnx_int8", "et_fp32", "et_int8"))
            lines.append(f"| {r['label']} | {r['mac_ratio']:.2f}× | {cells} |")
    lines += ["", "Operators left outside the XNNPACK delegate (FP32 `.pte`; they run on ExecuTorch's portable kernels):", ""]
    for r in result["models"]:
        lines.append(f"- {r['label']}: {_ops(r['outside_delegate'])}")
    lines += ["", "### Standard sparse ONNX (`sparse_initializer`s) vs dense ONNX and `.epz`", "",
              "| model | sparsity | ORT FP32 / INT8 | .onnx | sparse .onnx (×smaller, max diff) | gzip -9 of it | "
              "INT8 .onnx → sparse | .epz FP32 / INT8 |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result["sparse_onnx"]:
        lines.append(
            f"| {r['model']} | {r['sparsity']:.0%} | {r['ort_fp32_acc']:.2%} / {r['ort_int8_acc']:.2%} | "
            f"{r['onnx_bytes']:,} | {r['sparse_onnx_bytes']:,} ({r['ratio']:.1f}×, {r['max_abs_diff']:.0e}) | "
            f"{r['sparse_onnx_gzip_bytes']:,} | {r['onnx_int8_bytes']:,} → {r['sparse_onnx_int8_bytes']:,} "
            f"({r['ratio_int8']:.1f}×, {r['max_abs_diff_int8']:.0e}) | {r['epz_fp32_bytes']:,} / {r['epz_int8_bytes']:,} |")
    done = ", ".join(r["label"] for r in result["models"] if "structured" in r["label"])
    merged = s.get("merged_from")
    if merged:
        lines += ["", f"The ViT rows were re-run with `--merge --only vit`; the other rows and the sparse table come from "
                      f"`{merged['command']}` at `{merged['git_revision']}`."]
    lines += ["", f"Whole run {result['seconds'] / 60:.1f} min" + ("." if result.get("complete") else
              f"; **partial**: the run was stopped after {done or 'the sparse-ONNX part'} (2 cores shared with other jobs).")]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=10000, help="MNIST train+val images")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--ft-epochs", type=int, default=1)
    ap.add_argument("--vit-epochs", type=int, default=None, help="training epochs of the ViT (default: --epochs)")
    ap.add_argument("--merge", action="store_true", help="redo only the --only models, keep the rest of results/executorch.json")
    ap.add_argument("--sparse-epochs", type=int, default=3, help="dense epochs of the LeNets before magnitude pruning")
    ap.add_argument("--calib-batches", type=int, default=16)
    ap.add_argument("--runs", type=int, default=20, help="timed calls per file and round")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved latency rounds")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", default=None, help="comma-separated model specs (debugging)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 1000 images, LeNet-5 only, not saved")
    args = ap.parse_args()
    if args.quick:
        args.limit, args.runs, args.rounds, args.only, args.sparse_epochs = 1000, 5, 1, args.only or "lenet5", 1
    root = shared_data_dir()
    if root is None:
        sys.exit("MNIST not found: set EDGEPRUNE_DATA to a folder holding mnist/")
    torch.set_num_threads(args.threads)
    global SPECS
    if args.only:
        SPECS = tuple(s for s in SPECS if s[0] in args.only.split(","))
    start = time.perf_counter()
    rows: list[dict] = []
    sparse_rows: list[dict] = []
    if args.merge:  # keep the finished parts of results/executorch.json, redo the models of --only
        import json  # noqa: PLC0415  (only for --merge)

        from common import RESULTS  # noqa: PLC0415

        old = json.loads((RESULTS / f"{NAME}.json").read_text())
        redo = {spec for spec, _ in SPECS}
        rows += [r for r in old["models"] if r["label"].split()[0].split("/")[0] not in redo]
        sparse_rows += old["sparse_onnx"]
        args.merged_from = {"git_revision": old["git_revision"], "command": old["command"], "settings": old["settings"]}

    def result(complete: bool) -> dict:
        timed = [r for r in rows if "latency_b1_ms" in r]
        return {"settings": vars(args), "complete": complete, "models": rows, "sparse_onnx": sparse_rows,
                "seconds": time.perf_counter() - start, "versions": {"torch": torch.__version__, "executorch": "1.5.1"},
                "int8_gap_pp": {r["label"]: {"ort": 100 * (r["ort_fp32_acc"] - r["ort_int8_acc"]),
                                             "executorch": 100 * (r["et_fp32_acc"] - r["et_int8_acc"])} for r in rows},
                "median_et_over_ort_fp32": statistics.median(r["latency_b1_ms"]["et_fp32"] / r["latency_b1_ms"]["onnx_fp32"]
                                                             for r in timed) if timed else None}

    def checkpoint(complete: bool = False) -> None:
        if not args.quick:
            save(NAME, result(complete), section(result(complete)))

    with tempfile.TemporaryDirectory(prefix="edgeprune-et-") as tmp:
        splits = data.load("mnist", root=root, seed=args.seed, limit=args.limit)
        if not args.merge:
            sparse_rows += sparse_sizes(splits, args, Path(tmp))
            checkpoint()
        cnn_and_vit(splits, args, Path(tmp), rows, checkpoint)
    checkpoint(complete=True)
    print(section(result(True)))
    if args.quick:
        log("quick run: results not saved")


if __name__ == "__main__":
    main()

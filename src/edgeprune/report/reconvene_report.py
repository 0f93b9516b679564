"""The Reconvene-vs-UPaI report: mean ± std per mode, the paired comparison, the PSE table, a plot."""

from __future__ import annotations

import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot: reports are written without a display
import matplotlib.pyplot as plt  # noqa: E402

from edgeprune.config import Config  # noqa: E402
from edgeprune.report.tables import human_bytes  # noqa: E402
from edgeprune.utils.io import atomic_path, write_text  # noqa: E402

# The two arms the report compares, in the order it lists them (the modes of
# edgeprune.methods.reconvene.PaIConfig; records of any other mode are not reported).
ARMS = ("reconvene", "unstructured")

SUMMARY_KEYS = ("test_acc", "val_acc", "params", "nonzeros", "dense_bytes", "sparse_bytes", "macs", "effective_macs",
                "latency_ms_b1", "latency_ms_b32", "onnx_latency_ms_b1", "onnx_latency_ms_b32", "generation_seconds",
                "seconds_per_epoch")


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarize_records(records: list[dict]) -> dict:
    """Mean/std per mode over seeds, and the Reconvene-vs-UPaI comparison on the seeds both finished.

    Comparison (paired by seed): ``acc_diff`` = Reconvene − UPaI test accuracy; ``size_ratio`` = UPaI ÷
    Reconvene dense checkpoint bytes; ``sparse_size_ratio`` = the same for the compressed sparse form;
    ``speedup_b<k>`` = UPaI ÷ Reconvene torch latency at batch k (``onnx_speedup_b<k>``: ONNX Runtime);
    ``macs_ratio`` dense MACs.
    """
    by_mode: dict[str, dict] = {}
    for mode in ARMS:
        rows = [r for r in records if r.get("mode") == mode]
        if not rows:
            continue
        stats = {"seeds": sorted(r["seed"] for r in rows),
                 "sparse_bytes_kind": rows[0].get("sparse_bytes_kind")}
        for k in SUMMARY_KEYS:
            vals = [r[k] for r in rows if isinstance(r.get(k), (int, float))]
            if vals:
                stats[k], stats[f"{k}_std"] = _mean_std(vals)
        by_mode[mode] = stats
    out: dict = {"modes": by_mode}
    rec = {r["seed"]: r for r in records if r.get("mode") == "reconvene"}
    upai = {r["seed"]: r for r in records if r.get("mode") == "unstructured"}
    paired = sorted(set(rec) & set(upai))
    if paired:
        comparisons = {
            "acc_diff": lambda a, b: a["test_acc"] - b["test_acc"],
            "size_ratio": lambda a, b: b["dense_bytes"] / a["dense_bytes"],
            "sparse_size_ratio": lambda a, b: b["sparse_bytes"] / a["sparse_bytes"],
            "params_ratio": lambda a, b: b["params"] / a["params"],
            "macs_ratio": lambda a, b: b["macs"] / a["macs"],
        }
        for runtime in ("", "onnx_"):
            for batch in ("b1", "b32"):
                key = f"{runtime}latency_ms_{batch}"
                if all(key in rec[s] and key in upai[s] for s in paired):
                    comparisons[f"{runtime}speedup_{batch}"] = lambda a, b, key=key: b[key] / a[key]
        cmp = {"seeds": paired}
        for name, fn in comparisons.items():
            cmp[name], cmp[f"{name}_std"] = _mean_std([fn(rec[s], upai[s]) for s in paired])
        out["comparison"] = cmp
    return out


def _fmt_pm(stats: dict, key: str, scale: float = 1.0, digits: int = 2) -> str:
    if key not in stats:
        return "–"
    return f"{stats[key] * scale:.{digits}f} ± {stats.get(key + '_std', 0.0) * scale:.{digits}f}"


def plot_accuracy_vs_size(records: list[dict], path: Path) -> Path:
    """Test accuracy vs bytes: dense checkpoint (filled) and compressed sparse form (hollow), per mode."""
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    colors = {"unstructured": "tab:blue", "reconvene": "tab:red"}
    labels = {"unstructured": "UPaI", "reconvene": "Reconvene"}
    for mode in ARMS:
        rows = [r for r in records if r.get("mode") == mode]
        if not rows:
            continue
        acc = [100 * r["test_acc"] for r in rows]
        ax.scatter([r["dense_bytes"] for r in rows], acc, color=colors[mode], label=f"{labels[mode]} (dense file)")
        kind = rows[0].get("sparse_bytes_kind", "estimate")
        ax.scatter([r["sparse_bytes"] for r in rows], acc, facecolors="none", edgecolors=colors[mode],
                   label=f"{labels[mode]} (sparse {'artifact' if kind == 'artifact' else 'estimate'})")
    ax.set_xscale("log")
    ax.set_xlabel("model size (bytes, log scale)")
    ax.set_ylabel("test accuracy (%)")
    first = records[0] if records else {}
    ax.set_title(f"{first.get('model', '')} on {first.get('dataset', '')}, p={first.get('sparsity', '')}, "
                 f"{first.get('score', '')}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return path


def write_report(out: Path, config: Config, records: list[dict]) -> dict:
    """``report.md`` and ``accuracy_vs_size.png`` from the records; returns :func:`summarize_records`."""
    summary = summarize_records(records)
    if records:
        plot_accuracy_vs_size(records, out / "accuracy_vs_size.png")
    lines = [
        f"# Reconvene vs UPaI: {config.model} on {config.dataset}, sparsity {config.sparsity}, score {config.score}",
        "",
        f"Seeds: {config.seeds}. PSE average: {'parameter-weighted (= p)' if config.weighted else 'unweighted mean of conv layers'}; "
        f"channels kept by {config.keep}{' (width rule ' + config.width + ')' if config.keep == 'score_mass' else ''}; residual groups: {config.group_rule}; re-initialised: {config.reinit}. "
        f"Both models train from scratch with the same schedule ({config.train_config(0).epochs} epochs).",
        "",
        "| | test acc (%) | params | non-zeros | dense file | sparse form | MACs (dense) | MACs (effective) | torch b1 (ms) | torch b32 (ms) | ONNX Runtime b1 (ms) | ONNX Runtime b32 (ms) | generation (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    names = {"unstructured": "UPaI", "reconvene": "Reconvene"}
    for mode, s in summary["modes"].items():
        kind = s.get("sparse_bytes_kind")
        lines.append(
            f"| {names[mode]} | {_fmt_pm(s, 'test_acc', 100)} | {s['params']:,.0f} | {s['nonzeros']:,.0f} | "
            f"{human_bytes(s['dense_bytes'])} | {human_bytes(s['sparse_bytes'])}{'' if kind == 'artifact' else ' (estimate)'} | "
            f"{s['macs']:,.0f} | {s['effective_macs']:,.0f} | {_fmt_pm(s, 'latency_ms_b1', 1, 3)} | "
            f"{_fmt_pm(s, 'latency_ms_b32', 1, 3)} | {_fmt_pm(s, 'onnx_latency_ms_b1', 1, 3)} | "
            f"{_fmt_pm(s, 'onnx_latency_ms_b32', 1, 3)} | {_fmt_pm(s, 'generation_seconds', 1, 2)} |"
        )
    cmp = summary.get("comparison")
    if cmp:
        lines += [
            "",
            f"Reconvene vs UPaI (paired by seed, {len(cmp['seeds'])} seed(s)): accuracy difference "
            f"{_fmt_pm(cmp, 'acc_diff', 100)} points; dense file {_fmt_pm(cmp, 'size_ratio', 1, 2)}x smaller; "
            f"sparse form {_fmt_pm(cmp, 'sparse_size_ratio', 1, 2)}x smaller; dense MACs {_fmt_pm(cmp, 'macs_ratio', 1, 2)}x fewer; "
            + "; ".join(f"{'ONNX Runtime' if k.startswith('onnx') else 'torch'} latency {k.rsplit('_', 1)[1]} "
                        f"{_fmt_pm(cmp, k, 1, 2)}x faster"
                        for k in ("speedup_b1", "speedup_b32", "onnx_speedup_b1", "onnx_speedup_b32") if k in cmp) + ".",
        ]
    rec = [r for r in records if r.get("mode") == "reconvene"]
    if rec:
        first = min(rec, key=lambda r: r["seed"])
        lines += [
            "",
            f"## Pruning Sensitivity Evaluator (seed {first['seed']})",
            "",
            f"Average sparsity compared against: {first['average_sparsity']:.4f}. A layer pruned harder is insensitive; "
            "residual-coupled layers are decided as one group.",
            "",
            "| layer | UPaI sparsity | insensitive | structured | channels | weights after | note |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in first["layers"]:
            lines.append(
                f"| {row['layer']} | {row['sparsity']:.4f} | {'yes' if row['insensitive'] else 'no'} | "
                f"{'yes' if row['structured'] else 'no'} | {row['channels_before']} → {row['channels_after']} | "
                f"{row['weights_after']:,} ({row['nonzeros_after']:,} non-zero) | {row['group_reason']} |"
            )
    if records:
        m = records[0]["machine"]
        lines += ["", f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']}. Latency is the median of "
                  f"{config.latency_runs} runs (PyTorch eager, CPU; and ONNX Runtime CPU on the exported `models/*.onnx`). Sizes: dense file = `edgeprune.models.save` "
                  "checkpoint; sparse form = `edgeprune.export.sparse` artifact (`.epz`) unless marked estimate "
                  "(bitmap n/8 + 4 bytes per non-zero).", ""]
        lines.append("![accuracy vs size](accuracy_vs_size.png)")
    write_text(out / "report.md", "\n".join(lines) + "\n")
    return summary

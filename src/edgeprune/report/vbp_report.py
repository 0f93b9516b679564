"""The VBP run report: a table per pruning ratio (retained / final accuracy, reductions, speed-ups), a plot."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot: reports are written without a display
import matplotlib.pyplot as plt  # noqa: E402

from edgeprune.config import Config  # noqa: E402
from edgeprune.utils.io import atomic_path, write_text  # noqa: E402


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.2f}%"


def write_report(out: Path, cfg: Config, dense_info: dict, records: list[dict]) -> None:
    """report.md (a table per ratio) and accuracy_vs_ratio.png when there are several ratios.

    ``cfg`` is the run's :class:`edgeprune.methods.vbp.VbpConfig` (passed in: reports do not import methods).
    """
    records = sorted(records, key=lambda r: r["ratio"])
    lat_keys = [k[: -len("_before")] for k in (records[0] if records else {}) if "latency_ms_b" in k and k.endswith("_before")]
    lines = [
        f"# Variance-Based Pruning: {cfg.model} on {cfg.dataset}",
        "",
        f"Selection: **{cfg.selection}**{' (per layer)' if cfg.per_layer else ' (global)'}, mean-shift "
        f"compensation: **{'on' if cfg.compensation else 'off'}**, min_keep {cfg.min_keep}, calibration batches "
        f"{cfg.calib_batches or 'all (one pass over train)'} of {cfg.calib_batch_size}. Fine-tune: {cfg.epochs} epochs, "
        f"AdamW lr {cfg.lr:g}, cosine, wd {cfg.weight_decay:g}, batch {cfg.batch_size}, KD from the unpruned model "
        f"(alpha {cfg.kd_alpha:g}, T {cfg.kd_temperature:g}). Seed {cfg.seed}.",
        "",
        f"Dense model: val {_pct(dense_info['val_acc'])}, test {_pct(dense_info['test_acc'])}.",
        "Retained = right after pruning (no training). Final = after fine-tuning (best validation epoch; "
        "test measured once). Relative = % of the dense model's accuracy on the same split.",
        "",
        "| ratio | neurons pruned | params (red.) | MACs (red.) | retained val / test (rel. test) | "
        "final val / test (rel. test) | " + " | ".join(f"{k} before → after (speedup, ÷MAC ratio)" for k in lat_keys) + " |",
        "|" + "---|" * (6 + len(lat_keys)),
    ]
    for r in records:
        lat = []
        for k in lat_keys:
            b = k.rsplit("_b", 1)[1]
            prefix = "ort_" if k.startswith("ort_") else ""
            lat.append(f"{r[k + '_before']:.3f} → {r[k + '_after']:.3f} ms ({r[f'{prefix}speedup_b{b}']:.2f}×, "
                       f"{r[f'{prefix}speedup_over_mac_ratio_b{b}']:.2f})")
        lines.append(
            f"| {r['ratio']:.2f} | {r['pruned_neurons']}/{r['total_neurons']} | {r['params_after']:,} "
            f"(−{_pct(r['params_reduction'])}) | {r['macs_after']:,} (−{_pct(r['macs_reduction'])}) | "
            f"{_pct(r['retained_val_acc'])} / {_pct(r['retained_test_acc'])} ({_pct(r['retained_rel_test'])}) | "
            f"{_pct(r['final_val_acc'])} / {_pct(r['final_test_acc'])} ({_pct(r['final_rel_test'])}) | "
            + " | ".join(lat) + " |"
        )
    if records:
        r = records[0]
        lines += ["", f"Before pruning: {r['params_before']:,} params, {r['macs_before']:,} MACs per image."]
    write_text(out / "report.md", "\n".join(lines) + "\n")
    if len(records) >= 2:
        plot_accuracy(out / "accuracy_vs_ratio.png", records, dense_info, title=f"VBP: {cfg.model} on {cfg.dataset}")


def plot_accuracy(path: Path, records: list[dict], dense_info: dict, title: str = "VBP") -> None:
    """Test accuracy (retained and final) against the pruning ratio, dense accuracy as a line."""
    ratios = [r["ratio"] for r in records]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(ratios, [r["retained_test_acc"] for r in records], "o-", label="retained (no training)")
    ax.plot(ratios, [r["final_test_acc"] for r in records], "s-", label="after KD fine-tune")
    ax.axhline(dense_info["test_acc"], color="gray", linestyle="--", label="dense")
    ax.set_xlabel("fraction of MLP neurons pruned")
    ax.set_ylabel("test accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)

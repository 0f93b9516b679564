"""Matplotlib figures (Agg backend: files only, no display)."""

from __future__ import annotations

import importlib
from pathlib import Path

from edgeprune.export.runtimes import BY_KEY
from edgeprune.report.metric import ACCURACY, Metric
from edgeprune.utils.io import atomic_path
from edgeprune.utils.lazy import OnFirstUse

# pyplot on the first plot, with the file-only Agg backend chosen before it loads
plt = OnFirstUse("matplotlib.pyplot", setup=lambda: importlib.import_module("matplotlib").use("Agg"))

MARKERS = {"magnitude": "o", "gradient": "^", "product": "D"}


def _save(fig, path: Path) -> Path:
    """``fig`` as a PNG at ``path``, written atomically; the figure is closed."""
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


def _finish(fig, ax, path: Path, dense_acc: float, dense_label: str, xlabel: str, title: str,
            metric: Metric = ACCURACY) -> Path:
    """The reference line, labels, legend, and the PNG written atomically."""
    ax.axhline(metric.scale * dense_acc, ls="--", color="green", label=f"{dense_label} ({metric.text(dense_acc)})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(metric.axis)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return _save(fig, path)


def front_plot(groups: list[dict], front: list[dict], dense_acc: float, path: Path, chosen: dict | None = None,
               title: str = "validation accuracy vs weights removed", metric: Metric = ACCURACY) -> Path:
    """Settings as points per method (error bars over seeds), the front as a line, the chosen one as a star;
    the y axis is the validation value of ``metric`` (``dense_acc``: the input model's)."""
    fig, ax = plt.subplots(figsize=(9.5, 5), dpi=120)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    key, scale = metric.val, metric.scale
    for k, method in enumerate(sorted({g.get("origin", g["method"]) for g in groups})):
        pts = [g for g in groups if g.get("origin", g["method"]) == method]
        ax.errorbar([100 * g["removed"] for g in pts], [scale * g[key] for g in pts],
                    yerr=[scale * g.get(f"{key}_std", 0) for g in pts], fmt="o", color=colors[k % len(colors)],
                    label=method, alpha=0.85, capsize=2)
    if front:
        ax.plot([100 * g["removed"] for g in front], [scale * g[key] for g in front], "-", color="black",
                lw=1.2, alpha=0.6, label="front", zorder=0)
    if chosen:
        ax.scatter([100 * chosen["removed"]], [scale * chosen[key]], marker="*", s=260, color="gold",
                   edgecolors="black", zorder=5, label="chosen")
    return _finish(fig, ax, path, dense_acc, "input model", "non-zero weights removed (%)", title, metric)


def deploy_plot(groups: list[dict], dense: dict, path: Path, limits: dict | None = None,
                title: str = "validation accuracy on the device", metric: Metric = ACCURACY) -> Path:
    """Two panels: the validation value of ``metric`` vs ONNX Runtime latency (batch 1) and vs ONNX file bytes
    (FP32), the input model as a star, the budget as a vertical line when the run had one (``limits``: record
    field -> absolute limit, e.g. ``{"ort_latency_ms_b1": 2.5}``)."""
    limits = limits or {}
    val, y = metric.val, metric.scale
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), dpi=120)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, key, scale, xlabel in ((axes[0], "ort_latency_ms_b1", 1.0, "ONNX Runtime latency, batch 1 (ms)"),
                                   (axes[1], "onnx_bytes", 1e-3, "ONNX file (FP32, kB)")):
        for k, method in enumerate(sorted({g["method"] for g in groups})):
            pts = [g for g in groups if g["method"] == method and key in g]
            ax.errorbar([scale * g[key] for g in pts], [y * g[val] for g in pts],
                        yerr=[y * g.get(f"{val}_std", 0) for g in pts], fmt="o", color=colors[k % len(colors)],
                        label=method, alpha=0.85, capsize=2)
        if key in dense:
            ax.scatter([scale * dense[key]], [y * dense[val]], marker="*", s=200, color="green",
                       label="input model", zorder=5)
        if key in limits:
            ax.axvline(scale * limits[key], ls=":", color="red", label="budget")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(metric.axis)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)


def edge_plot(models: dict[str, dict], path: Path, runtimes: dict[str, str],
              title: str = "every installed runtime: batch 1, 1 thread") -> Path:
    """Two panels of grouped bars per model (``{"input model": {...}, "chosen": {...}, "chosen INT8": {...}}``): file
    kB and batch-1 milliseconds, one bar per runtime of ``runtimes`` ({key: title}: :mod:`edgeprune.export.runtimes`)."""
    names = list(models)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=120)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    panels = ((axes[0], [(BY_KEY[k].bytes_key, t) for k, t in runtimes.items()], 1e-3, "file size (kB)"),
              (axes[1], [(f"{k}_ms_b1", t) for k, t in runtimes.items()], 1.0, "latency, batch 1 (ms)"))
    for ax, series, scale, ylabel in panels:
        width = 0.8 / len(series)
        for k, (key, label) in enumerate(series):
            xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(names))]
            bars = ax.bar(xs, [scale * models[n].get(key, 0.0) for n in names], width, label=label,
                          color=colors[k % len(colors)])
            ax.bar_label(bars, fmt="%.3g", fontsize=7)
        ax.set_xticks(range(len(names)), names)
        ax.set_ylabel(ylabel)
        ax.set_ylim(0, ax.get_ylim()[1] * 1.25)  # room for the legend above the bars
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=8, loc="upper center", ncols=2)
    fig.suptitle(title)
    return _save(fig, path)

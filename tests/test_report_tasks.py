"""Run reports speak the task's metric: a segmentation sweep's report, plot and summary name mIoU and choose
the highest; a regression sweep's choose the lowest MSE and show it as a plain number, not a percentage; a
classifier's report keeps its words. Real sweeps of a user's own models on scikit-learn's digits."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from matplotlib.figure import Figure
from torch.utils.data import DataLoader, Subset

import edgeprune
from byom.dense_tasks import TinyRegressor, TinySegNet, regression_loaders, segmentation_loaders, trained
from edgeprune import tasks
from edgeprune.errors import DamagedFileError
from edgeprune.report.metric import Metric
from edgeprune.runs.report import render
from edgeprune.utils.io import seal

FINETUNE = {"epochs": 1, "max_batches": 4}
TOLERANCE = 0.01  # render's default


def small(loaders, train: int = 480, evaluate: int = 120):
    """The first examples of each split (the bootstrap intervals cost time per test example)."""
    (tr, va, te), keep = loaders, (train, evaluate, evaluate)
    return tuple(DataLoader(Subset(d.dataset, range(min(n, len(d.dataset)))), d.batch_size, shuffle=i == 0)
                 for i, (d, n) in enumerate(zip((tr, va, te), keep)))


@pytest.fixture(scope="module")
def seg_run(tmp_path_factory):
    data = small(segmentation_loaders())
    model = trained(TinySegNet(width=8), data, tasks.Segmentation(), epochs=1)
    out = tmp_path_factory.mktemp("seg") / "run"
    edgeprune.sweep(model, data, task="segmentation", out=out, budgets=[0.5, 0.7], finetune=FINETUNE,
                    criteria=["magnitude"], strategies=["balanced"], baselines=["magnitude"], calib_batches=2,
                    progress=False)
    return out


@pytest.fixture(scope="module")
def reg_run(tmp_path_factory):
    data = small(regression_loaders())
    model = trained(TinyRegressor(width=8), data, tasks.Regression(), epochs=2)
    out = tmp_path_factory.mktemp("reg") / "run"
    edgeprune.sweep(model, data, task="regression", out=out, budgets=[0.5, 0.7], seeds=2, finetune=FINETUNE,
                    criteria=["magnitude", "gradient"], strategies=["balanced"], baselines=["magnitude"],
                    calib_batches=2, progress=False)
    return out


@pytest.fixture
def plotted(monkeypatch):
    """The y label and title of every figure saved (the real figures, written as usual)."""
    seen, save = [], Figure.savefig

    def spy(fig, *args, **kwargs):
        ax = fig.axes[0]
        seen.append((ax.get_ylabel(), ax.get_title(), fig.get_suptitle()))
        return save(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", spy)
    return seen


def candidates(run) -> list[dict]:
    records = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    return [r for r in records if r.get("kind") == "candidate" and r["status"] == "ok"]


def settings(run, metric: str) -> dict[str, tuple[float, float]]:
    """Setting (records equal but for the seed) -> (budget, mean validation value)."""
    found: dict[str, list] = {}
    for r in candidates(run):
        key = json.dumps([r["budget"], r["setting"]], sort_keys=True)
        found.setdefault(key, [r["budget"], []])[1].append(r[f"val_{metric}"])
    return {k: (b, sum(v) / len(v)) for k, (b, v) in found.items()}


def check_choice(summary: dict, run, metric: Metric) -> None:
    """The chosen setting: the best validation value (in the metric's direction) of the highest budget whose
    best setting is within the tolerance of the input model's value, else the best overall."""
    dense = summary["dense"][metric.val]
    every = settings(run, metric.name)
    good = [b for b, v in every.values() if metric.within(v, dense, TOLERANCE)]
    chosen = summary["chosen"]
    budget = max(good) if good else chosen["budget"]
    peers = [v for b, v in every.values() if b == budget] if good else [v for _, v in every.values()]
    best = max(peers, key=metric.score)
    mine = next(v for k, (b, v) in every.items() if json.loads(k) == [chosen["budget"], chosen["setting"]])
    assert chosen["budget"] == budget and mine == pytest.approx(best)


def check_front(summary: dict, metric: Metric) -> None:
    """Along the front (weights removed ascending) the validation value gets strictly worse."""
    values = [g[metric.val] for g in summary["front"]]
    assert values and all(metric.score(a) > metric.score(b) for a, b in zip(values, values[1:]))


def test_segmentation_report_names_miou_and_chooses_the_highest(seg_run, plotted):
    summary = render(seg_run)
    miou = Metric.of(summary["dense"])
    assert (summary["metric"], summary["metric_label"], summary["metric_higher"]) == ("miou", "mIoU", True)
    assert all("val_miou" in g and "test_miou" in g and "val_acc" not in g for g in summary["front"])
    check_front(summary, miou)
    check_choice(summary, seg_run, miou)
    lo, hi = next(g["test_ci"] for g in summary["front"] if summary["chosen"]["id"] in g["ids"])
    assert 0.0 <= lo <= summary["chosen"]["test_miou"] <= hi <= 1.0

    report = (seg_run / "report.md").read_text()
    assert "## Front (validation mIoU vs weights removed)" in report
    assert "| val mIoU after pruning % | val mIoU % | test mIoU % [95 % CI] |" in report
    assert "Selection uses validation mIoU (higher is better)" in report and "validation accuracy" not in report
    assert f"validation mIoU {100 * summary['chosen']['val_miou']:.2f}%" in report
    assert (seg_run / "front.png").stat().st_size > 0
    assert plotted[0][:2] == ("validation mIoU (%)", "mix_and_match: validation mIoU vs weights removed")


def test_regression_report_chooses_the_lowest_mse_and_shows_plain_numbers(reg_run, plotted):
    summary = render(reg_run)
    mse = Metric.of(summary["dense"])
    assert (summary["metric"], summary["metric_higher"]) == ("mse", False)
    check_front(summary, mse)
    check_choice(summary, reg_run, mse)
    chosen = summary["chosen"]
    at_budget = [v for b, v in settings(reg_run, "mse").values() if b == chosen["budget"]]
    assert len(at_budget) >= 2 and min(at_budget) == pytest.approx(
        next(g["val_mse"] for g in summary["front"] if chosen["id"] in g["ids"]))

    report = (reg_run / "report.md").read_text()
    assert "| val MSE after pruning | val MSE | test MSE [95 % CI] |" in report
    assert "Selection uses validation MSE (lower is better)" in report
    assert "within 1.0 % (relative) of the input model's" in report
    assert not re.search(r"MSE [\d.]+(?: ± [\d.]+)? ?%", report), "MSE is shown as a percentage"
    rows = [line.split("|") for line in report.splitlines() if line.startswith("| ") and "@ sparsity" in line]
    assert rows and not any("%" in cell for row in rows for cell in row[4:7])  # val after pruning, val, test
    assert f"Input model: validation MSE {mse.number(summary['dense']['val_mse'])}, test MSE" in report
    lo, hi = re.search(r"test MSE \S+ \[(\S+), (\S+)\] over 2 seeds", report).groups()
    assert 0.0 <= float(lo) <= float(hi)  # a t-interval over two seeds, cut at zero
    assert plotted[0][0] == "validation MSE, lower is better"


def test_classification_report_keeps_its_words(tmp_path, plotted):
    out = tmp_path / "run"
    result = edgeprune.sweep("lenet5", "digits", method="magnitude", budgets=[0.5, 0.8], out=out, finetune=0,
                             progress=False)
    assert "metric" not in result.summary and set(result.summary) == {
        "method", "dense", "chosen", "chosen_origin", "chosen_test", "chosen_vs_dense", "mam_vs_baseline", "front"}
    assert set(result.summary["front"][0]) == {"label", "origin", "ids", "removed", "val_acc", "test_ci", "test_acc"}
    assert re.fullmatch(r"\d+\.\d\d % \[\d+\.\d\d, \d+\.\d\d\]", result.summary["chosen_test"])
    report = (out / "report.md").read_text()
    for words in ("| setting | seeds | weights removed % | val after pruning % | val % | test % [95 % CI] | params | MACs |",
                  "Selection uses validation accuracy; test accuracy is measured once per final model.",
                  "## Front (validation accuracy vs weights removed)", "Test accuracies carry a 95 % interval (Wilson",
                  "the most accurate setting of the highest budget within 1.0 pp of the input model, else the most accurate"):
        assert words in report
    assert plotted[0][:2] == ("validation top-1 (%)", "magnitude: validation accuracy vs weights removed")


@pytest.mark.parametrize("change,needle", [({"metric": "mse", "metric_higher": False}, "measures 'mse' (lower is better)"),
                                           ({"metric": ["miou"]}, "metric=['miou']"),
                                           ({"metric_higher": "yes"}, "metric_higher='yes'")])
def test_a_record_of_another_metric_is_refused_in_one_line(seg_run, tmp_path, change, needle):
    copy = tmp_path / "run"
    shutil.copytree(seg_run, copy)
    lines = (copy / "results.jsonl").read_text().splitlines()
    lines[1] = json.dumps(seal({**json.loads(lines[1]), **change}))  # sealed again: only the metric is wrong
    (copy / "results.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(DamagedFileError) as info:
        render(copy)
    assert "\n" not in str(info.value) and "line 2" in str(info.value) and needle in str(info.value)


@pytest.mark.slow
def test_segmentation_deploy_table_and_plot_name_miou(tmp_path, plotted):
    data = small(segmentation_loaders())
    model = trained(TinySegNet(width=8), data, tasks.Segmentation(), epochs=1)
    out = tmp_path / "run"
    edgeprune.sweep(model, data, task="segmentation", out=out, budgets=["params<=60%"], granularity="channel",
                    finetune=FINETUNE, criteria=["magnitude"], strategies=["balanced"], calib_batches=2, latency_runs=5,
                    progress=False)
    report = (out / "report.md").read_text()
    assert "| setting | val mIoU % | test mIoU % | ms b1 |" in report and (out / "deploy.png").stat().st_size > 0
    dense = json.loads((out / "summary.json").read_text())["dense"]
    assert f"| input model | {100 * dense['val_miou']:.2f} | {100 * dense['test_miou']:.2f} |" in report
    assert ("validation mIoU (%)", "", "validation mIoU on the device") in plotted


@pytest.mark.long
def test_the_tasks_guide_runs_as_written(tmp_path, monkeypatch):
    """docs/tasks.md's Python blocks, in order, in one namespace (the sweep writes runs/ under tmp_path)."""
    guide = Path(__file__).resolve().parents[1] / "docs" / "tasks.md"
    blocks = re.findall(r"```python\n(.*?)```", guide.read_text(), re.S)
    assert len(blocks) == 3
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(guide), "exec"), namespace)  # noqa: S102  (the guide's own code)
    assert namespace["result"].summary["metric"] == "miou"
    assert "validation mIoU" in (tmp_path / "runs" / "seg-digits" / "report.md").read_text()
    lo, hi = namespace["pruned"].record["test_dice_ci"]
    assert 0.0 <= lo <= hi <= 1.0

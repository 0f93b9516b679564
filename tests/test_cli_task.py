"""`--task` on the pruning commands: a segmentation net of a user's own (path.py:factory) pruned from the shell on
a masks: folder of real digit scenes, its result and report in mIoU; a data set that names its task needs no
--task; a bad --task is one line, exit code 2, nothing written; `edgeprune tasks` lists the presets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from edgeprune import tasks

BYOM = Path(__file__).resolve().parent / "byom"
COMMON = ["--budget", "0.5", "--finetune", "0", "--dense-epochs", "1", "-q"]


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> Path:
    """masks:PATH data: 150 digits upscaled to 16x16, each mask the digit's class (1..10) on its ink, 0 elsewhere."""
    root = tmp_path_factory.mktemp("scenes")
    (root / "images").mkdir()
    (root / "masks").mkdir()
    digits = load_digits()
    for i in range(150):
        image = np.kron((digits.images[i] / 16 * 255).astype(np.uint8), np.ones((2, 2), np.uint8))
        Image.fromarray(image, "L").save(root / "images" / f"{i:03d}.png")
        Image.fromarray(np.where(image > 64, digits.target[i] + 1, 0).astype(np.uint8), "L").save(root / "masks" / f"{i:03d}.png")
    (root / "classes.txt").write_text("\n".join(["background", *map(str, range(10))]) + "\n")
    return root


@pytest.fixture(scope="module")
def segnet(tmp_path_factory) -> str:
    """A user's model file: a factory building TinySegNet for the data's classes."""
    path = tmp_path_factory.mktemp("user") / "segnet.py"
    path.write_text(f"import sys\nsys.path.insert(0, {str(BYOM.parent)!r})\nfrom byom.dense_tasks import TinySegNet\n\n\n"
                    "def build(num_classes=11, width=8):\n    return TinySegNet(classes=num_classes, width=width)\n")
    return f"{path}:build"


def test_prune_a_segmentation_net_from_the_shell(run_cli, tmp_path, scenes, segnet):
    out = tmp_path / "run"
    code, stdout, err = run_cli("prune", "magnitude", "--model", segnet, "--dataset", f"masks:{scenes}",
                                "--task", "segmentation", "--out", out, *COMMON)
    assert code == 0, err
    text = " ".join(stdout.split())
    assert "Front (validation mIoU vs non-zero weights removed)" in text and "val mIoU %" in text
    assert "input model: val mIoU " in text and "val %" not in text
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert all(r["metric"] == "miou" and "val_miou" in r and "val_acc" not in r for r in records)
    trained = json.loads((out / "dense" / "metrics.json").read_text())
    assert trained["task"] == "segmentation" and 0.0 <= trained["test_miou"] <= 1.0 and "test_acc" not in trained
    assert "## Front (validation mIoU vs weights removed)" in (out / "report.md").read_text()
    assert json.loads((out / "summary.json").read_text())["metric"] == "miou"


def test_a_data_set_that_names_its_task_needs_no_flag(run_cli, tmp_path, scenes, segnet):
    # a classifier's check would refuse the net's dict of [B, 11, H, W] maps; the plan goes through
    code, stdout, err = run_cli("prune", "magnitude", "--model", segnet, "--dataset", f"masks:{scenes}",
                                "--out", tmp_path / "run", "--dry-run", *COMMON)
    assert code == 0, err
    assert "candidate" in err and not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", [["prune", "magnitude"], ["search"], ["vbp"], ["pai"]])
@pytest.mark.parametrize("task,needle", [("nosuch", "unknown task 'nosuch'; allowed: classification, segmentation"),
                                         ("missing/tasks.py:build", "missing/tasks.py")])
def test_a_bad_task_is_one_line_and_nothing_is_written(run_cli, tmp_path, command, task, needle):
    out = tmp_path / "run"
    code, stdout, err = run_cli(*command, "--model", "lenet5", "--dataset", "digits", "--task", task, "--out", out, "-q")
    assert code == 2 and needle in err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ")
    assert not out.exists()


def test_tasks_lists_the_presets(run_cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    code, stdout, err = run_cli("tasks")
    assert code == 0, err
    text = " ".join(stdout.split())
    for name, description in tasks.DESCRIPTIONS.items():
        assert name in text and " ".join(description.split()) in text
    assert "mIoU (higher is better)" in text and "MSE (lower is better)" in text

"""Every bad input of the foundation commands: exit 2, one line on stderr, no traceback, nothing written."""

import pickle

import pytest
import torch

from helpers import assert_one_line_error


@pytest.mark.parametrize(
    "args,needles",
    [
        (["--model", "lenet9"], ["lenet9", "lenet5"]),
        (["--dataset", "imagenet"], ["imagenet", "mnist"]),
        (["--epochs", "0"], ["epochs", "0"]),
        (["--lr", "-0.1"], ["lr", "-0.1"]),
        (["--batch-size", "0"], ["batch_size", "0"]),
        (["--model", "vit", "--arg", "patch_size=3"], ["3"]),
        (["--arg", "oops"], ["oops", "key=value"]),
    ],
)
def test_train_bad_input(run_cli, tmp_path, args, needles):
    base = {"--model": "lenet5", "--dataset": "digits", "--epochs": "1"}
    extra = []
    i = 0
    while i < len(args):
        if args[i] in base:
            base[args[i]] = args[i + 1]
        else:
            extra += args[i : i + 2]
        i += 2
    out = tmp_path / "run"
    argv = ["train", *[x for kv in base.items() for x in kv], *extra, "--out", out, "-q"]
    code, _, err = run_cli(*argv)
    assert_one_line_error(code, err, *needles)
    assert not out.exists() or not any(out.iterdir())


def test_missing_data_folder_is_named(run_cli, tmp_path):
    code, _, err = run_cli("train", "--model", "lenet5", "--dataset", "mnist", "--data-dir", tmp_path / "nowhere", "-q", "--out", tmp_path / "o")
    assert_one_line_error(code, err, "nowhere")


def test_hf_weights_cannot_be_fetched_offline(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, _, err = run_cli("train", "--model", "hf:google/vit-base-patch16-224", "--dataset", "digits", "-q", "--out", tmp_path / "o")
    assert_one_line_error(code, err, "google/vit-base-patch16-224")


def test_output_folder_not_writable(run_cli, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    code, _, err = run_cli("train", "--model", "lenet5", "--dataset", "digits", "--epochs", "1", "-q", "--out", blocker / "run")
    assert_one_line_error(code, err, "file.txt")


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_measure_refuses_bad_checkpoints(run_cli, tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    assert_one_line_error(*run_cli("measure", text)[::2], "notes.pt")

    evil = tmp_path / "evil.pt"
    torch.save({"format": "edgeprune-checkpoint", "payload": Evil()}, evil)
    code, out, err = run_cli("measure", evil)
    assert_one_line_error(code, err, "evil.pt")
    assert "pwned" not in out

    plain = tmp_path / "plain.pt"
    with open(plain, "wb") as f:
        pickle.dump({"a": 1}, f)
    assert_one_line_error(*run_cli("measure", plain)[::2], "plain.pt")

    assert_one_line_error(*run_cli("measure", tmp_path / "missing.pt")[::2], "missing.pt")


def test_measure_names_mismatched_keys(run_cli, tmp_path):
    from edgeprune import models

    model = models.create("lenet5", num_classes=10, in_channels=1, image_size=8)
    path = models.save(model, tmp_path / "m.pt")
    raw = torch.load(path, weights_only=True)
    raw["state_dict"]["extra.weight"] = torch.zeros(3)
    raw["state_dict"].pop(next(iter(raw["state_dict"])))
    torch.save(raw, path)
    assert_one_line_error(*run_cli("measure", path)[::2], "extra.weight")


def test_measure_bad_threads_and_batches(run_cli, tmp_path):
    from edgeprune import models

    path = models.save(models.create("lenet300", num_classes=10, in_channels=1, image_size=8), tmp_path / "m.pt")
    assert_one_line_error(*run_cli("measure", path, "--threads", "0")[::2], "threads")
    assert_one_line_error(*run_cli("measure", path, "--batch", "1,x")[::2], "1,x")


def test_usage_errors_exit_2(run_cli):
    code, _, err = run_cli("train", "--dataset", "digits")
    assert code == 2 and "--model" in err

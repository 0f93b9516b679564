"""`edgeprune prune --weights PATH`: local weights for a torchvision:/timm: model reach the model that is
trained and pruned; a wrong combination is one line, exit 2, and nothing is written."""

import json

import pytest
import torch

pytest.importorskip("timm")

from edgeprune import models  # noqa: E402
from edgeprune.cli.prune import with_weights  # noqa: E402
from edgeprune.errors import ConfigError  # noqa: E402
from helpers import assert_one_line_error  # noqa: E402


def test_weights_reach_the_pruned_model(tmp_path, run_cli):
    torch.manual_seed(0)
    source = models.create("timm:resnet10t", num_classes=1000, in_channels=3, image_size=32)
    weights = tmp_path / "w.pth"
    torch.save(source.state_dict(), weights)
    out = tmp_path / "run"
    code, _, err = run_cli("prune", "mix_and_match", "--model", "timm:resnet10t", "--weights", weights,
                           "--dataset", "synthetic:n=64", "--dense-epochs", "1", "--finetune", "0", "--budget", "0.5",
                           "-O", "strategies=[balanced]", "-O", "criteria=[magnitude]", "-O", "baselines=[]",
                           "--out", out, "--quiet")
    assert code == 0, err
    metrics = json.loads((out / "dense" / "metrics.json").read_text())
    assert metrics["model_kwargs"]["weights"] == str(weights)
    assert (out / "chosen.pt").is_file()


@pytest.mark.parametrize("spec, extra, message", [
    ("lenet5", {}, "applies to torchvision: and timm: models"),
    ("timm:resnet10t", {"checkpoint": "c.pt"}, "--weights and --checkpoint both set"),
    ("timm:resnet10t", {"arg": True}, "--arg weights=... both set"),
    ("timm:resnet10t", {"missing": True}, "is not a file"),
])
def test_bad_combinations_are_refused(tmp_path, spec, extra, message):
    weights = tmp_path / "w.pth"
    if not extra.get("missing"):
        weights.write_bytes(b"x")
    args = {"weights": "elsewhere"} if extra.get("arg") else {}
    with pytest.raises(ConfigError, match=message):
        with_weights(spec, args, weights, tmp_path / extra["checkpoint"] if "checkpoint" in extra else None)


def test_cli_refusal_is_one_line_and_writes_nothing(tmp_path, run_cli):
    out = tmp_path / "run"
    code, _, err = run_cli("prune", "mix_and_match", "--model", "lenet5", "--weights", tmp_path / "none.pth", "--out", out)
    assert_one_line_error(code, err, "--weights")
    assert not out.exists()

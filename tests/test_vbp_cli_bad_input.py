"""Bad input to ``edgeprune vbp``: exit 2, one line starting with "error: ", nothing trained or written."""

import pytest
import torch

from edgeprune import models
from helpers import assert_one_line_error


@pytest.mark.parametrize(
    "extra,needles",
    [
        (["--ratio", "1.0"], ["ratio", "[0, 1)", "1.0"]),
        (["--ratio", "-0.2"], ["ratio", "-0.2"]),
        (["--ratios", "0.2,1.5"], ["ratio", "1.5"]),
        (["--calib-batches", "-1"], ["calib_batches", "-1"]),
        (["--selection", "snip"], ["selection", "snip", "variance"]),
    ],
)
def test_bad_settings(run_cli, tmp_path, extra, needles):
    out = tmp_path / "run"
    code, _, err = run_cli("vbp", "--model", "vit", "--dataset", "digits", "--out", out, "-q", *extra)
    assert_one_line_error(code, err, *needles)
    assert not out.exists()


def test_model_without_mlp_block_names_the_roles_found(run_cli, tmp_path):
    out = tmp_path / "run"
    code, _, err = run_cli("vbp", "--model", "lenet5", "--dataset", "digits", "--out", out, "-q")
    assert_one_line_error(code, err, "no MLP block", "roles found", "conv x", "classifier x1")
    assert not out.exists()  # failed before training a dense model


def test_calibration_data_of_the_wrong_shape(run_cli, tmp_path):
    model = models.create("vit", num_classes=10, in_channels=1, image_size=8, dim=16, depth=1, num_heads=2)
    ckpt = models.save(model, tmp_path / "vit.pt")
    out = tmp_path / "run"
    code, _, err = run_cli("vbp", "--model", "vit", "--checkpoint", ckpt, "--dataset",
                           "synthetic:classes=10,channels=3,size=16,n=64", "--out", out, "-q")
    assert_one_line_error(code, err, "checkpoint", "1 channels", "has 10 / 3")
    assert not out.exists()


def test_statistics_api_rejects_a_batch_that_does_not_fit():
    from edgeprune.errors import DataError
    from edgeprune.methods import vbp

    model = models.create("vit", num_classes=10, in_channels=1, image_size=8, dim=16, depth=1, num_heads=2)
    with pytest.raises(DataError, match=r"expected batches shaped \(B, 1, 8, 8\), got \(2, 3, 8, 8\)"):
        vbp.prune(model, [(torch.randn(2, 3, 8, 8), torch.zeros(2))], 0.5)

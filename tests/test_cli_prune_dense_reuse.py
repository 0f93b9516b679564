"""The input model trained into OUT/dense/ is reused only by the command that made it."""

from edgeprune import data
from edgeprune.methods.dense import train_dense
from edgeprune.train import default_config
from helpers import assert_one_line_error


def test_a_dense_model_of_other_settings_is_not_reused(run_cli, tmp_path):
    out = tmp_path / "run"
    train_dense("lenet5", data.load("digits"), default_config("lenet5", epochs=1), out / "dense", progress=False)
    for args, needle in ((["--dense-epochs", "2"], "epochs 1"), (["--dense-epochs", "1", "--arg", "padding=3"], "model_kwargs"),
                         (["--dense-epochs", "1", "--model", "lenet300"], "'lenet5'")):
        argv = ["prune", "magnitude", "--model", "lenet5", "--dataset", "digits", *args, "--out", out, "-q"]
        assert needle in assert_one_line_error(*run_cli(*argv)[::2])
    assert sorted(p.name for p in out.iterdir()) == ["dense"]


def test_an_empty_budget_is_refused(run_cli, tmp_path):
    code, _, err = run_cli("prune", "magnitude", "--model", "lenet300", "--budget", "", "--out", tmp_path / "r", "-q")
    assert "--budget" in assert_one_line_error(code, err)

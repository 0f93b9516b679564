"""Every method option is checked by the method's typed Options, before the input model is trained or
anything is written: `prune METHOD -O ...` (and the aliases' flags) exit 2 with one line naming the value
and what is allowed, and --out is not created; `edgeprune.prune` raises ConfigError before training."""

import pytest
from torch import nn

import edgeprune
from edgeprune.errors import ConfigError
from helpers import assert_one_line_error

BAD_OPTIONS = [
    ("mix_and_match", "criteria=[]", "criteria=[]"),
    ("mix_and_match", "strategies=[]", "strategies=[]"),
    ("mix_and_match", "calib_batches=0", "calib_batches=0"),
    ("mix_and_match", "calib_batch_size=0", "calib_batch_size=0"),
    ("mix_and_match", "latency_runs=0", "latency_runs=0"),
    ("mix_and_match", "drop_blocks=[1]", "granularity='channel'"),
    ("reconvene", "modes=[]", "modes=[]"),
    ("snip", "calib_batches=0", "calib_batches=0"),
    ("grasp", "calib_batch_size=-1", "calib_batch_size=-1"),
    ("magnitude", "calib_batches=-3", "calib_batches=-3"),
    ("random", "calib_batch_size=0", "calib_batch_size=0"),
    ("vbp", "calib_batch_size=0", "calib_batch_size=0"),
    ("vbp", "min_keep=0", "min_keep=0"),
]


@pytest.mark.parametrize("method,option,needle", BAD_OPTIONS)
def test_prune_refuses_a_bad_option_before_training(method, option, needle, run_cli, tmp_path):
    out = tmp_path / "run"
    code, _, err = run_cli("prune", method, "--model", "lenet300", "--dataset", "digits", "-O", option,
                           "--dense-epochs", "1", "--finetune", "0", "--out", out)
    line = assert_one_line_error(code, err, needle)
    assert "allowed" in line or "at least" in line or "greater than" in line or "needs" in line, line
    assert not out.exists()


@pytest.mark.parametrize("flags,needle", [(("--criteria", ","), "criteria=[]"),
                                          (("--calib-batches", "0"), "calib_batches=0"),
                                          (("--strategies", ","), "strategies=[]")])
def test_search_refuses_a_bad_flag_before_training(flags, needle, run_cli, tmp_path):
    out = tmp_path / "run"
    code, _, err = run_cli("search", "--model", "lenet300", "--dataset", "digits", *flags, "--dense-epochs", "1",
                           "--out", out)
    assert_one_line_error(code, err, needle)
    assert not out.exists()


class NeverRun(nn.Module):
    """A model whose forward fails loudly: the option must be refused before the model is even looked at
    (nothing calibrated, trained or dry-run)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        raise AssertionError("the model ran: the option was checked too late")


@pytest.mark.parametrize("method,options,needle", [
    ("mix_and_match", {"criteria": []}, "criteria=[]"), ("mix_and_match", {"calib_batches": 0}, "calib_batches=0"),
    ("mix_and_match", {"drop_blocks": [1]}, "granularity='channel'"), ("reconvene", {"modes": []}, "modes=[]"),
    ("snip", {"calib_batches": 0}, "calib_batches=0"),
])
def test_api_prune_raises_before_the_model_runs(method, options, needle):
    with pytest.raises(ConfigError) as info:
        edgeprune.prune(NeverRun(), "digits", method, **options)
    assert "\n" not in str(info.value) and needle in str(info.value)

import pytest

from edgeprune.errors import ConfigError
from edgeprune.methods.mix_and_match import SearchConfig

from helpers import assert_one_line_error




@pytest.mark.parametrize(
    "args,needle",
    [
        (["--criteria", "magnitude,taylor"], "taylor"),
        (["--strategies", "min,zigzag"], "zigzag"),
        (["--ranges", "learned"], "learned"),
        (["--target-sparsity", "1.0"], "target_sparsity"),
        (["--target-sparsity", "-0.1"], "target_sparsity"),
        (["--calib-batches", "0"], "calib_batches"),
        (["--seeds", "0"], "seeds"),
        (["--executor", "slurm"], "slurm"),
    ],
)
def test_search_flags_refused(run_cli, tmp_path, args, needle):
    code, _, err = run_cli("search", "--model", "lenet300", "--dataset", "digits", *args, "--out", tmp_path / "r", "-q")
    assert needle in assert_one_line_error(code, err)
    assert not (tmp_path / "r").exists()


def test_recipe_unknown_key_and_wrong_type(run_cli, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: lenet300\nepochz: 3\n")
    assert "epochz" in assert_one_line_error(*run_cli("search", "--recipe", recipe, "-q")[::2])
    recipe.write_text("model: lenet300\nepochs: many\n")
    assert "epochs" in assert_one_line_error(*run_cli("search", "--recipe", recipe, "-q")[::2])
    recipe.write_text("model: lenet300\nrange_rules: {patch_embed: [0.9, 0.2]}\n")
    assert "0.9" in assert_one_line_error(*run_cli("search", "--recipe", recipe, "-q", "--out", tmp_path / "x")[::2])


def test_checkpoint_of_another_model_is_refused(run_cli, tmp_path):
    from edgeprune import models

    ckpt = models.save(models.create("lenet300", num_classes=10, in_channels=1, image_size=8), tmp_path / "m.pt")
    code, _, err = run_cli("search", "--model", "lenet5", "--dataset", "digits", "--checkpoint", ckpt, "-q", "--out", tmp_path / "r")
    assert "lenet300" in assert_one_line_error(code, err)


def test_a_run_directory_of_another_configuration_is_refused(tmp_path):
    from edgeprune.runs import RunStore

    RunStore(tmp_path).open(SearchConfig.build(model="lenet300", epochs=2).identity())
    with pytest.raises(ConfigError, match="different configuration"):
        RunStore(tmp_path).open(SearchConfig.build(model="lenet300", epochs=3).identity())

import pytest

from edgeprune.errors import ConfigError
from edgeprune.train import TrainConfig, default_config


@pytest.mark.parametrize("field,value", [("epochs", 0), ("epochs", -1), ("lr", 0.0), ("lr", -0.1), ("batch_size", 0)])
def test_non_positive_settings_are_refused_with_one_line(field, value):
    with pytest.raises(ConfigError) as info:
        TrainConfig.build(**{field: value})
    msg = str(info.value)
    assert field in msg and str(value) in msg and "\n" not in msg


def test_unknown_setting_and_optimizer_are_named():
    with pytest.raises(ConfigError, match="unknown key 'epoch'"):
        TrainConfig.build({"epoch": 3})
    with pytest.raises(ConfigError, match="optimizer"):
        TrainConfig.build(optimizer="lion")


def test_defaults_follow_the_model_family():
    assert default_config("vit").optimizer == "adamw"
    assert default_config("vit").batch_size == 64 and default_config("lenet5").batch_size == 128
    assert default_config("vit", batch_size=None).batch_size == 64  # an unset CLI option keeps the family default
    assert default_config("lenet5").optimizer == "sgd"
    assert default_config("lenet5", lr=0.2).lr == 0.2

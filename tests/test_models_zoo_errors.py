"""Impossible model settings and unknown specs give one-line errors naming the bad value."""

import pytest

from edgeprune.errors import ConfigError, EdgepruneError, ModelError
from edgeprune.models import create


@pytest.mark.parametrize("kwargs,needle", [
    (dict(num_classes=1), "num_classes"),
    (dict(num_classes=0), "num_classes"),
    (dict(num_classes=2.5), "num_classes"),
    (dict(in_channels=0), "in_channels"),
    (dict(image_size=0), "image_size"),
])
def test_bad_build_arguments(kwargs, needle):
    with pytest.raises(ModelError, match=needle) as info:
        create("resnet20", **kwargs)
    assert "\n" not in str(info.value)
    assert str(list(kwargs.values())[0]) in str(info.value)


def test_vit_image_not_divisible_by_patch():
    with pytest.raises(ModelError, match=r"image_size 30 .*patch_size 4"):
        create("vit", image_size=30)


def test_vit_dim_not_divisible_by_heads():
    with pytest.raises(ModelError, match=r"dim 30 .*num_heads 4"):
        create("vit", dim=30)


def test_lenet5_image_too_small():
    with pytest.raises(ModelError, match=r"image_size 3 .*lenet5"):
        create("lenet5", in_channels=1, image_size=3)


def test_unknown_option_names_it_and_the_allowed_ones():
    with pytest.raises(ConfigError, match=r"'width'.*vgg16.*classifier_width"):
        create("vgg16", width=3)


@pytest.mark.parametrize("spec", ["resnet999", "zoo:nope", "foo:bar", "hf:", ""])
def test_unknown_spec(spec):
    with pytest.raises(ConfigError) as info:
        create(spec)
    message = str(info.value)
    assert "\n" not in message
    if spec:
        assert repr(spec) in message
    if spec != "":
        assert "resnet20" in message and "hf-config:" in message and "timm:" in message


def test_errors_share_the_project_base_class():
    with pytest.raises(EdgepruneError):
        create("vit", image_size=30)

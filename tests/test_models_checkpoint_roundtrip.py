"""save -> load rebuilds the same model: same outputs, meta back, safe plain-typed payload."""

import pytest
import torch
from torch.nn.utils import prune

from edgeprune import models
from edgeprune.errors import CheckpointError
from edgeprune.models import create, load, load_meta, save


@pytest.mark.parametrize("spec,channels,size,kwargs", [
    ("lenet5", 1, 8, {}),
    ("resnet20", 3, 32, {}),
    ("vit", 1, 28, {"dim": 32, "depth": 2, "num_heads": 2}),
])
def test_round_trip_gives_equal_outputs(tmp_path, spec, channels, size, kwargs):
    torch.manual_seed(0)
    model = create(spec, num_classes=5, in_channels=channels, image_size=size, **kwargs)
    model.train()
    model(torch.randn(8, channels, size, size))  # move BatchNorm running stats off their defaults
    model.eval()
    path = save(model, tmp_path / "sub" / "model.pt", meta={"seed": 0, "acc": 0.5, "tags": ("a", "b")})
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]  # no temp file left behind

    again = load(path)
    x = torch.randn(3, channels, size, size)
    with torch.no_grad():
        torch.testing.assert_close(again(x), model(x))
    assert not again.training
    assert again.edgeprune_build == model.edgeprune_build

    meta = load_meta(path)
    assert meta["seed"] == 0 and meta["acc"] == 0.5 and meta["tags"] == ["a", "b"]
    assert meta["build"]["spec"] == spec


def test_payload_is_plain_and_weights_only(tmp_path):
    path = save(create("lenet300", in_channels=1, image_size=8), tmp_path / "m.pt")
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "edgeprune-checkpoint" and raw["version"] == 1
    assert raw["structure"]["classifier"] == {"type": "Linear", "in_features": 100, "out_features": 10}
    assert set(raw) == {"format", "version", "build", "state_dict", "structure", "meta", "sha256"}


def test_baked_masks_and_torch_prune_reparametrisation(tmp_path):
    torch.manual_seed(0)
    model = create("lenet5", in_channels=1, image_size=8).eval()
    prune.l1_unstructured(model.features[0], "weight", amount=0.5)  # weight_orig + weight_mask
    with torch.no_grad():
        model.classifier[0].weight[:, ::2] = 0.0  # a mask already baked into the weights
    path = save(model, tmp_path / "masked.pt")
    again = load(path)
    x = torch.randn(2, 1, 8, 8)
    torch.testing.assert_close(again(x), model(x))
    assert (again.features[0].weight == 0).sum().item() == model.features[0].weight.numel() // 2
    assert (again.classifier[0].weight[:, ::2] == 0).all()


def test_spec_argument_is_checked_to_load_back(tmp_path):
    model = create("resnet20", num_classes=4)
    del model.edgeprune_build
    path = save(model, tmp_path / "a.pt")  # no build info: a custom model, spec None
    assert load_meta(path)["build"]["spec"] is None
    with pytest.raises(CheckpointError, match="custom ResNet model without a spec; pass model=ResNet"):
        load(path)
    # the class count comes from the model's output (4), not create()'s default (10)
    assert load_meta(save(model, tmp_path / "b.pt", spec="resnet20"))["build"]["num_classes"] == 4
    # a spec of another depth does not take these weights: refused, nothing written
    with pytest.raises(CheckpointError, match=r"spec='resnet32'"):
        save(model, tmp_path / "b2.pt", spec="resnet32")
    assert not (tmp_path / "b2.pt").exists()

    plain = torch.nn.Sequential(*create("lenet300").children())  # same layers under other names
    with pytest.raises(CheckpointError, match=r"this Sequential does not fit.*unexpected \(6\): 0\.1\.weight"):
        save(plain, tmp_path / "c.pt", spec="lenet300")

    torch.manual_seed(0)
    model = create("resnet20").eval()  # create()'s default sizes: the spec alone describes it
    del model.edgeprune_build
    path = save(model, tmp_path / "d.pt", spec="zoo:resnet20")
    assert load_meta(path)["build"]["spec"] == "zoo:resnet20"
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(load(path)(x), model(x))


@pytest.mark.parametrize("spec, sizes", [("unet-tiny", dict(num_classes=11, in_channels=1, image_size=32)),
                                         ("kws-cnn1d", dict(num_classes=5, in_channels=1, image_size=64)),
                                         ("resnet20", dict(num_classes=5, in_channels=1, image_size=32))])
def test_save_with_spec_infers_sizes_of_a_model_without_build_info(tmp_path, spec, sizes):
    """A segmenter, a 1-D net and a classifier of other than create()'s default sizes, their build info gone
    (the user made them by hand): spec= reads the input channels from the first convolution and the class count
    from the output (per-pixel logits: dim 1), and the probe input has the model's own rank."""
    model = models.create(spec, **sizes)
    del model.edgeprune_build
    save(model, tmp_path / "m.pt", spec=spec)
    back = load(tmp_path / "m.pt")
    assert (back.edgeprune_build["num_classes"], back.edgeprune_build["in_channels"]) == (sizes["num_classes"], sizes["in_channels"])
    x = models.probe_input(back, sizes["in_channels"], sizes["image_size"], batch=2, seed=0)
    assert torch.equal(back.eval()(x), model.eval()(x))

"""Optional parts of a method that cannot run on a model (criteria and baselines that need gradients, on a
model with an inference-only custom op) are left out with a one-line warning naming why; the call goes on
with the rest."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import edgeprune
from byom.mynet import MyNet
from byom.userdata import loaders, trained_model
from edgeprune.errors import ModelError


class SquashOnce(torch.autograd.Function):
    """A user's inference-only custom op: it has no backward."""

    @staticmethod
    def forward(ctx, x):
        return x * torch.sigmoid(x)


class CustomActNet(MyNet):
    def forward(self, x):
        x = self.block(self.stem(x))
        x = SquashOnce.apply(self.bn(self.pointwise(self.depthwise(x)))).mean((2, 3))
        return self.head(x + self.fc2(nn.functional.gelu(self.fc1(x))))


@pytest.fixture(scope="module")
def model():
    net = CustomActNet()
    net.load_state_dict(trained_model().state_dict())
    return net.eval()


@pytest.mark.slow
@pytest.mark.parametrize("granularity", ["weight", "channel"])
def test_parts_that_need_gradients_are_left_out_with_one_warning_each(model, granularity):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pruned = edgeprune.prune(model, loaders(), method="mix_and_match", budget=0.6, finetune=0,
                                 strategies=["balanced"], calib_batches=2, granularity=granularity)
    left_out = sorted(str(w.message) for w in caught if "left out" in str(w.message))
    expected = ["criterion 'gradient'", "criterion 'product'"] + (["baseline 'grasp'", "baseline 'snip'"]
                                                                    if granularity == "weight" else [])
    assert [m.split(" cannot")[0] for m in left_out] == sorted(expected)
    assert all("backward" in m and "\n" not in m for m in left_out)
    assert {c["decided"]["criterion"] for c in pruned.candidates} == {"magnitude"}
    assert pruned.record["status"] == "ok"


def test_a_criterion_that_cannot_run_is_left_out_and_the_others_go_on(model):
    from edgeprune.methods.base import optional_parts

    def build(name):
        if name == "bad":
            raise RuntimeError("derivative for aten::foo_backward is not implemented\nmore")
        return name.upper()

    with pytest.warns(UserWarning, match=r"criterion 'bad' cannot run on this model and is left out: RuntimeError: "
                                         r"derivative for aten::foo_backward is not implemented$"):
        assert optional_parts(["a", "bad", "b"], build, "criterion", need_one=True) == {"a": "A", "b": "B"}
    with pytest.warns(UserWarning), pytest.raises(ModelError, match="no criterion can run on this model: bad: Runtime"):
        optional_parts(["bad"], build, "criterion", need_one=True)
    with pytest.warns(UserWarning):
        assert optional_parts(["bad"], build, "baseline", need_one=False) == {}


def test_a_user_mistake_is_not_a_part_failure():
    from edgeprune.errors import ConfigError
    from edgeprune.methods.base import optional_parts

    def build(name):
        raise ConfigError(f"bad option for {name}")

    with pytest.raises(ConfigError, match="bad option for a"):
        optional_parts(["a", "b"], build, "criterion", need_one=True)


def test_a_part_the_model_cannot_run_is_left_out():
    from edgeprune.methods.base import optional_parts

    def build(name):
        if name == "grasp":
            raise ModelError("criterion 'grasp' gives NaN scores for attn.qkv.weight on this model")
        return name

    with pytest.warns(UserWarning, match=r"baseline 'grasp' cannot run on this model and is left out: criterion "
                                         r"'grasp' gives NaN scores for attn.qkv.weight on this model$"):
        assert optional_parts(["magnitude", "grasp"], build, "baseline", need_one=False) == {"magnitude": "magnitude"}


def test_the_magnitude_baseline_shares_the_magnitude_criterions_scores():
    """One copy of the magnitude scores (and of their sort) serves the criterion and the global baseline: on a
    294 M-parameter model each copy is 1.2 GB, and each sort as much again."""
    from edgeprune.data import Data
    from edgeprune.methods.base import Candidate, get_method

    model = trained_model()
    train, val, test = loaders()
    method = get_method("mix_and_match", criteria=["magnitude"], baselines=["magnitude", "random"])
    state = method.prepare(model, Data(train, val, test, input_shape=(1, 8, 8)), torch.zeros(1, 1, 8, 8))
    baseline, shared = state.baselines["magnitude"]
    assert shared is state.builders["magnitude"]
    fresh = get_method("magnitude").prepare(model, None, None)
    candidate = Candidate("global-magnitude", 0.6, 0, {"baseline": "magnitude"})
    assert all(torch.equal(a, fresh.global_(0.6)[n]) for n, a in method.prune(state, model, candidate).masks.items())

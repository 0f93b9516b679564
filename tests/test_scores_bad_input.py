"""Bad input to scores.compute / calibration_batches gives one-line ConfigErrors naming the problem."""

import pytest
import torch
from torch import nn

from edgeprune import scores
from edgeprune.errors import ConfigError

MODEL = nn.Sequential(nn.Linear(4, 3))
BATCHES = [(torch.randn(2, 4), torch.tensor([0, 1]))]


def test_unknown_criterion_lists_the_allowed_ones():
    with pytest.raises(ConfigError, match="unknown score criterion 'hessian'.*magnitude.*gradient.*synflow"):
        scores.compute("hessian", MODEL, BATCHES)


@pytest.mark.parametrize("name", ["gradient", "product", "snip", "grasp", "grasp_abs"])
def test_data_driven_criteria_need_batches(name):
    for batches in (None, []):
        with pytest.raises(ConfigError, match=f"criterion '{name}' needs calibration batches"):
            scores.compute(name, MODEL, batches)


def test_model_without_prunable_layer():
    with pytest.raises(ConfigError, match="no prunable layer"):
        scores.compute("magnitude", nn.Sequential(nn.BatchNorm1d(3), nn.ReLU()))


def test_unknown_option_and_bad_option_values():
    with pytest.raises(ConfigError, match="unknown option 'sparsity' for criterion 'gradient'.*mode"):
        scores.compute("gradient", MODEL, BATCHES, sparsity=0.5)
    with pytest.raises(ConfigError, match="mode must be one of train, eval"):
        scores.compute("gradient", MODEL, BATCHES, mode="test")
    with pytest.raises(ConfigError, match="rounds=10 needs the target sparsity"):
        scores.compute("synflow", MODEL, input_shape=(4,), rounds=10)
    with pytest.raises(ConfigError, match=r"synflow sparsity must be in \[0, 1\), got 1.0"):
        scores.compute("synflow", MODEL, input_shape=(4,), sparsity=1.0)
    with pytest.raises(ConfigError, match="input_shape"):
        scores.compute("synflow", MODEL)
    with pytest.raises(ConfigError, match="temperature must be > 0"):
        scores.compute("grasp", MODEL, BATCHES, temperature=0)


@pytest.mark.parametrize("num_batches", [0, -1])
def test_calibration_batches_need_a_positive_count(num_batches):
    with pytest.raises(ConfigError, match=f"num_batches must be > 0, got {num_batches}"):
        scores.calibration_batches([(torch.zeros(4), 0)], num_batches)

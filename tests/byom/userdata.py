"""What a user brings: their own DataLoaders (scikit-learn's digits as 1x8x8 tensors) and a model of their
own class trained with their own loop; plus fast settings of every method for tests."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset

from byom.mynet import build

FAST_OPTIONS = {
    "mix_and_match": {"criteria": ["magnitude", "gradient"], "strategies": ["balanced", "p70"],
                      "range_rules": {"small_numel": 0}, "calib_batches": 2},
    "reconvene": {"synflow_rounds": 5},
    "snip": {"calib_batches": 2},
    "grasp": {"calib_batches": 2},
    "vbp": {"calib_batches": 4},
}
FINETUNE = {"epochs": 1, "max_batches": 4}
BUDGETS = {"vbp": 0.5}  # every other method: 0.6


def loaders(batch_size: int = 64) -> tuple[DataLoader, DataLoader, DataLoader]:
    digits = load_digits()
    x = torch.tensor(digits.images / 16.0, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(digits.target, dtype=torch.int64)
    order = torch.from_numpy(np.random.default_rng(0).permutation(len(y)))
    train, val, test = order[:1200], order[1200:1450], order[1450:]
    g = torch.Generator().manual_seed(0)
    return (DataLoader(TensorDataset(x[train], y[train]), batch_size, shuffle=True, generator=g),
            DataLoader(TensorDataset(x[val], y[val]), 256),
            DataLoader(TensorDataset(x[test], y[test]), 256))


def trained_model(epochs: int = 3):
    torch.manual_seed(0)
    model = build()
    train, _, _ = loaders()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(epochs):
        for x, y in train:
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    return model.eval()

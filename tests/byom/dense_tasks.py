"""Real dense and regression data from scikit-learn's digits, and small models of a user's own for them.

* segmentation: every 8x8 digit is its own scene, its mask the digit's class (1..10) where the ink is above
  a quarter of full scale, background (0) elsewhere; upscaled to 16x16 so a stride-2 net has room.
* regression: predict the digit's value as a float (MSE), from the same images.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

SPLITS = (slice(0, 1200), slice(1200, 1450), slice(1450, None))


def _digits():
    digits = load_digits()
    x = torch.tensor(digits.images / 16.0, dtype=torch.float32).unsqueeze(1)
    x = F.interpolate(x, size=16, mode="bilinear", align_corners=False)
    y = torch.tensor(digits.target, dtype=torch.int64)
    order = torch.from_numpy(np.random.default_rng(0).permutation(len(y)))
    return x[order], y[order]


def _loaders(x, y, batch_size: int):
    g = torch.Generator().manual_seed(0)
    parts = [TensorDataset(x[s], y[s]) for s in SPLITS]
    return (DataLoader(parts[0], batch_size, shuffle=True, generator=g), DataLoader(parts[1], 256), DataLoader(parts[2], 256))


def segmentation_loaders(batch_size: int = 32):
    x, label = _digits()
    mask = torch.where(x[:, 0] > 0.25, label.view(-1, 1, 1) + 1, torch.zeros_like(label).view(-1, 1, 1))
    return _loaders(x, mask.long(), batch_size)


def regression_loaders(batch_size: int = 64):
    x, label = _digits()
    return _loaders(x, label.float().unsqueeze(1), batch_size)


class TinySegNet(nn.Module):
    """An encoder-decoder of a user's own: two stride-2 convs down, a transposed conv up, a 1x1 classifier;
    returns torchvision's ``{"out": ..., "aux": ...}`` dict."""

    def __init__(self, classes: int = 11, width: int = 32):
        super().__init__()
        self.enc1 = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU())
        self.enc2 = nn.Sequential(nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU())
        self.up = nn.Sequential(nn.ConvTranspose2d(2 * width, width, 2, stride=2), nn.BatchNorm2d(width), nn.ReLU())
        self.head = nn.Conv2d(2 * width, classes, 1)
        self.aux = nn.Conv2d(2 * width, classes, 1)

    def forward(self, x):
        a = self.enc1(x)
        b = self.enc2(a)
        out = self.head(torch.cat([a, self.up(b)], 1))
        return {"out": out, "aux": F.interpolate(self.aux(b), size=x.shape[-2:], mode="bilinear", align_corners=False)}


class TinyRegressor(nn.Module):
    def __init__(self, width: int = 32):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(width, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc1, self.fc2 = nn.Linear(width, 64), nn.Linear(64, 1)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(self.features(x))))


def trained(model: nn.Module, loaders, task, epochs: int = 3) -> nn.Module:
    """The user's model trained with our loop (a user's own loop would do as well)."""
    from edgeprune.train import TrainConfig, fit

    torch.manual_seed(0)
    fit(model, loaders[0], loaders[1], TrainConfig(epochs=epochs, lr=5e-3, optimizer="adam", weight_decay=0.0),
        task=task, progress=False)
    return model.eval()

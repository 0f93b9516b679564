"""A classifier returning a dict whose logits are not the first output (what runtimes must keep and read by name)."""

from torch import nn


class TwoOutputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(8, 10)

    def forward(self, x):
        features = self.body(x)
        return {"embedding": features, "logits": self.head(features)}

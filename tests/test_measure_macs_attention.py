"""measure.macs counts attention matrix products on CPU (torch's counter only knows the CUDA kernels)."""

import torch
import torch.nn.functional as F
from torch import nn

from edgeprune import models
from edgeprune.measure.macs import macs


class Attention(nn.Module):
    def forward(self, x):
        q = x.reshape(3, 2, 16, 8)  # B=3, H=2, L=S=16, E=8
        return F.scaled_dot_product_attention(q, q, q).flatten(1)


def test_sdpa_macs_on_cpu():
    assert macs(Attention(), torch.randn(3, 256)).dense == 3 * 2 * 16 * 16 * (8 + 8)  # Q·Kᵀ and ·V


def test_vit_macs_include_attention():
    model = models.create("vit", num_classes=10, in_channels=3, image_size=16, dim=32, depth=2, num_heads=2)
    report = macs(model, torch.zeros(1, 3, 16, 16))
    layers = sum(report.per_layer.values())
    tokens = (16 // model.patch_embed.proj.kernel_size[0]) ** 2 + 1  # patches + class token
    attention = 2 * tokens * tokens * 32  # per block: Q·Kᵀ and ·V over all heads (head dims sum to 32)
    assert report.dense >= layers + 2 * attention


class Recurrent(nn.Module):
    def __init__(self, rnn: nn.Module):
        super().__init__()
        self.rnn = rnn

    def forward(self, x):
        return self.rnn(x)[0]


def test_lstm_macs_on_cpu():
    """oneDNN's LSTM kernel has no formula in torch's counter: per step and direction, each layer's two weight
    matrices, as GRU and RNN (which reach the counter as matmuls) are counted."""
    batch, steps, hidden = 3, 7, 6
    x = torch.zeros(batch, steps, 4)
    lstm = nn.LSTM(4, hidden, num_layers=2, bidirectional=True, batch_first=True)
    matrices = 2 * (4 * hidden * (4 + hidden) + 4 * hidden * (2 * hidden + hidden))  # two directions, two layers
    assert macs(Recurrent(lstm), x).dense == batch * steps * matrices
    gru = nn.GRU(4, hidden, batch_first=True)
    assert macs(Recurrent(gru), x).dense >= batch * steps * 3 * hidden * (4 + hidden)

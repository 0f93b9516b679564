"""SplitMultiheadAttention computes what the nn.MultiheadAttention it replaces computes, for every call form
torch's layers and user models use (batch first or not, masks, weights averaged or per head, unbatched)."""

import pytest
import torch
from torch import nn

from edgeprune.models.mha import SplitMultiheadAttention, split_mha


def pair(batch_first: bool, bias: bool = True):
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(32, 4, bias=bias, batch_first=batch_first).eval()
    return mha, SplitMultiheadAttention.from_mha(mha).eval()


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_self_attention_matches(batch_first, bias):
    mha, split = pair(batch_first, bias)
    x = torch.randn(2, 7, 32) if batch_first else torch.randn(7, 2, 32)
    for kwargs in ({}, {"need_weights": False}, {"average_attn_weights": False}):
        want, want_w = mha(x, x, x, **kwargs)
        got, got_w = split(x, x, x, **kwargs)
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
        assert (got_w is None) == (want_w is None)
        if want_w is not None:
            torch.testing.assert_close(got_w, want_w, atol=1e-5, rtol=1e-5)


def test_masks_cross_attention_and_unbatched_inputs_match():
    mha, split = pair(batch_first=True)
    q, kv = torch.randn(2, 5, 32), torch.randn(2, 9, 32)
    padding = torch.zeros(2, 9, dtype=torch.bool)
    padding[1, -3:] = True
    causal = torch.ones(5, 9, dtype=torch.bool).triu(1)
    additive = torch.randn(2 * 4, 5, 9)
    for kwargs in ({"key_padding_mask": padding}, {"attn_mask": causal}, {"attn_mask": additive},
                   {"attn_mask": causal, "key_padding_mask": padding}):
        torch.testing.assert_close(split(q, kv, kv, **kwargs)[0], mha(q, kv, kv, **kwargs)[0], atol=1e-5, rtol=1e-5)
    x = torch.randn(6, 32)
    torch.testing.assert_close(split(x, x, x)[0], mha(x, x, x)[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(split(x, x, x)[1], mha(x, x, x)[1], atol=1e-5, rtol=1e-5)


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(16, 2, batch_first=True)
        self.single = nn.MultiheadAttention(16, 1, batch_first=True)  # one head: nothing to gain, kept
        self.kv_bias = nn.MultiheadAttention(16, 2, add_bias_kv=True, batch_first=True)  # not reproduced: kept

    def forward(self, x):
        x = x + self.attn(x, x, x, need_weights=False)[0]
        return x + self.single(x, x, x)[0] + self.kv_bias(x, x, x)[0]


def test_split_mha_replaces_only_what_it_reproduces():
    torch.manual_seed(0)
    model = Encoder().eval()
    x = torch.randn(3, 4, 16)
    want = model(x)
    assert split_mha(model) == ["attn"]
    assert isinstance(model.attn, SplitMultiheadAttention)
    assert isinstance(model.single, nn.MultiheadAttention) and isinstance(model.kv_bias, nn.MultiheadAttention)
    torch.testing.assert_close(model(x), want, atol=1e-5, rtol=1e-5)

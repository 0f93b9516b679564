import math

import torch

from edgeprune.train import kd_loss


def test_kd_loss_matches_a_hand_computation():
    s = torch.tensor([[2.0, 0.5, -1.0]])
    t = torch.tensor([[1.0, 1.5, 0.0]])
    y = torch.tensor([0])
    alpha, T = 0.3, 2.0
    ps = [math.exp(v / T) for v in s[0].tolist()]
    pt = [math.exp(v / T) for v in t[0].tolist()]
    ps = [p / sum(ps) for p in ps]
    pt = [p / sum(pt) for p in pt]
    kl = sum(b * math.log(b / a) for a, b in zip(ps, pt))
    ce = -math.log(math.exp(2.0) / sum(math.exp(v) for v in s[0].tolist()))
    expected = alpha * ce + (1 - alpha) * T * T * kl
    assert abs(kd_loss(s, t, y, alpha, T).item() - expected) < 1e-6


def test_kd_with_teacher_equal_to_student_is_alpha_times_ce():
    s = torch.randn(4, 5)
    y = torch.tensor([0, 1, 2, 3])
    ce = torch.nn.functional.cross_entropy(s, y)
    assert torch.allclose(kd_loss(s, s.clone(), y, 0.5, 4.0), 0.5 * ce, atol=1e-6)

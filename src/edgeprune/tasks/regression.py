"""Regression (keypoints, time series, any real-valued target): MSE loss, MSE (primary) and MAE."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from edgeprune.errors import DataError, ModelError
from edgeprune.tasks.base import Task


def _tensor(output) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    for key in ("out", "logits", "pred"):
        value = output.get(key) if isinstance(output, dict) else getattr(output, key, None)
        if isinstance(value, torch.Tensor):
            return value
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise ModelError(f"a regression model must return a tensor, got {type(output).__name__}")


class Regression(Task):
    name = "regression"
    metric = "mse"
    label = "mean squared error"
    higher_is_better = False

    def check_target(self, x, y, what):
        if not isinstance(y, torch.Tensor) or not y.is_floating_point() or y.ndim < 1 or y.shape[0] != x.shape[0]:
            got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
            raise DataError(f"{what} yields targets {got}; regression expects float targets [batch, ...] "
                            f"({x.shape[0]} per batch)")
        return y

    def _pred(self, output, y):
        pred = _tensor(output).float()
        if pred.shape != y.shape:
            if pred.numel() != y.numel():
                raise DataError(f"targets of shape {tuple(y.shape)} do not fit predictions of shape {tuple(pred.shape)}")
            pred = pred.reshape(y.shape)
        return pred

    def loss(self, output, y):
        return F.mse_loss(self._pred(output, y), y.float())

    def distil(self, student, teacher, y, alpha, temperature):
        s = self._pred(student, y)
        return alpha * F.mse_loss(s, y.float()) + (1.0 - alpha) * F.mse_loss(s, self._pred(teacher, y))

    def targets_from(self, output, x):
        return _tensor(output).float()

    def example_statistics(self, output, y):
        err = (self._pred(output, y) - y.float()).reshape(len(y), -1)
        return torch.stack([err.pow(2).sum(1), err.abs().sum(1), torch.full_like(err[:, 0], err.shape[1])], 1).double().cpu()

    def reduce(self, values, index=None):
        total = (values if index is None else values[torch.as_tensor(index)]).sum(0)
        n = float(total[2])
        return {"mse": float(total[0]) / n if n else float("nan"), "mae": float(total[1]) / n if n else float("nan")}

    def check_output(self, model, output, example, data):
        _tensor(output)

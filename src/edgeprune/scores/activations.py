"""Per-neuron activation statistics (VBP): mean and variance of the input of a layer, in float64.

The tensor measured is the INPUT of a consumer layer (for VBP: the post-activation hidden vector that an
MLP's ``mlp_out`` multiplies), so whatever sits between the activation and the consumer (dropout, an
optional norm) is included exactly. Every token / spatial position counts as one sample: a Linear
consumer's input ``[..., C]`` is flattened to ``[-1, C]``, a 1x1 Conv2d consumer's ``[B, C, H, W]`` to
``[B*H*W, C]``. Batches are merged with Chan's parallel update of (count, mean, M2) in float64, which
gives the same result as Welford's per-sample recurrence without its Python loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import nn

from edgeprune.data.loaders import checked
from edgeprune.errors import DataError, ModelError, check_positive


@dataclass
class RunningMoments:
    """Count, mean and sum of squared deviations (M2) of ``channels`` features, merged in float64."""

    count: int
    mean: torch.Tensor  # float64 [C]
    m2: torch.Tensor  # float64 [C]

    @classmethod
    def zeros(cls, channels: int) -> "RunningMoments":
        return cls(0, torch.zeros(channels, dtype=torch.float64), torch.zeros(channels, dtype=torch.float64))

    @property
    def channels(self) -> int:
        return int(self.mean.numel())

    @torch.no_grad()
    def update(self, samples: torch.Tensor) -> None:
        """Merge a ``[N, C]`` block of samples (any float dtype/device) into the running moments."""
        if samples.ndim != 2 or samples.shape[1] != self.channels:
            raise ValueError(f"expected samples of shape [N, {self.channels}], got {tuple(samples.shape)}")
        n_b = int(samples.shape[0])
        if n_b == 0:
            return
        x = samples.detach()
        if x.device.type == "mps":  # no float64 there
            x = x.cpu()
        x = x.to(torch.float64)  # batch moments on the activation's device; only [C] vectors move
        mean_b = x.mean(0)
        m2_b = (x - mean_b).square_().sum(0).cpu()
        mean_b = mean_b.cpu()
        n_a = self.count
        n = n_a + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b / n)
        self.m2 = self.m2 + m2_b + delta.square() * (n_a * n_b / n)
        self.count = n

    @property
    def variance(self) -> torch.Tensor:
        """Unbiased variance M2 / (N - 1) as in the paper (zeros when fewer than two samples)."""
        if self.count < 2:
            return torch.zeros_like(self.m2)
        return self.m2 / (self.count - 1)


def channel_samples(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``module``'s input ``x`` as ``[samples, channels]``: every token / position is one sample."""
    if isinstance(module, nn.Linear):
        return x.reshape(-1, x.shape[-1])
    if isinstance(module, nn.Conv2d) and x.ndim == 4:
        return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])
    raise ModelError(f"activation statistics support Linear and Conv2d consumers, got {type(module).__name__}")


def consumer_channels(module: nn.Module) -> int:
    if isinstance(module, nn.Linear):
        return int(module.in_features)
    if isinstance(module, nn.Conv2d):
        return int(module.in_channels)
    raise ModelError(f"activation statistics support Linear and Conv2d consumers, got {type(module).__name__}")


def _device_of(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def describe_shape_mismatch(got: tuple, expected: tuple | None, exc: Exception) -> DataError:
    """One-line DataError for a calibration batch the model cannot take."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    want = f"expected batches shaped (B, {', '.join(map(str, expected))})" if expected else "the model rejected it"
    return DataError(f"calibration data does not fit the model: {want}, got {got} ({first[:160]})")


@torch.no_grad()
def input_statistics(
    model: nn.Module,
    consumers: Mapping[str, nn.Module],
    batches: Iterable,
    *,
    max_batches: int = 0,
    expected_input: tuple | None = None,
    progress: bool = False,
    description: str = "activation statistics",
) -> dict[str, RunningMoments]:
    """Per-channel mean/variance of the input of each module in ``consumers`` ({name: module}).

    Runs ``model`` in eval mode on ``batches`` (a DataLoader, or any iterable, of ``(x, y)`` tensor pairs or
    of bare input tensors), used as it yields them; ``max_batches`` = 0 means one full pass. Other batches
    (checked with :func:`edgeprune.data.check_batch`), or none at all: DataError. ``expected_input`` (C, H, W) only improves the error message when a batch
    does not fit the model (DataError). The model's train/eval mode is restored afterwards.
    """
    check_positive("calibration batches", max_batches, allow_zero=True)
    if not consumers:
        raise ModelError("no layers to collect activation statistics for")
    moments = {name: RunningMoments.zeros(consumer_channels(m)) for name, m in consumers.items()}

    def make_hook(name):
        def hook(module, args):
            moments[name].update(channel_samples(module, args[0]))

        return hook

    handles = [m.register_forward_pre_hook(make_hook(name)) for name, m in consumers.items()]
    was_training = model.training
    model.eval()
    device = _device_of(model)
    total = None
    if hasattr(batches, "__len__"):
        total = len(batches) if max_batches == 0 else min(len(batches), max_batches)
    seen = 0
    try:
        with _progress(progress) as bar:
            task = bar.add_task(description, total=total)
            for i, (x, _) in enumerate(checked(batches, "calibration data", labels=False)):
                if max_batches and i >= max_batches:
                    break
                x = x.to(device)
                try:
                    model(x)
                except (RuntimeError, ValueError) as exc:  # HF models raise ValueError for wrong channels
                    raise describe_shape_mismatch(tuple(x.shape), expected_input, exc) from None
                seen += 1
                bar.update(task, advance=1)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    if seen == 0:
        raise DataError("calibration data is empty: no batch to collect activation statistics from")
    return moments


def _progress(enabled: bool):
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    transient=True, disable=not enabled)

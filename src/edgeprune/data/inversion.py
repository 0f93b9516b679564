"""Data-free calibration inputs for models with batch norm: DeepInversion (Yin et al., CVPR 2020).

Random inputs are optimised until the batch statistics every BatchNorm layer sees match its running mean and
variance (what it learnt from the training data), under total-variation and L2 image priors. Optionally
(``targets=True``) a cross-entropy term pulls a ``[batch, classes]`` output toward class-balanced targets,
which spreads the inputs over the classes. DeepInversion's random jitter / flips and its adaptive
(teacher-student competition) term are left out.

:func:`synthesize` returns the inputs, :func:`synthetic_loader` a DataLoader of them (batches of x only),
:func:`bn_matching_loss` how close a batch's statistics are to the running ones (compare with N(0, 1) noise).
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.data import DataLoader

from edgeprune.errors import ConfigError, ModelError, check_positive

_EPS = 1e-8


def _batch_norms(model: nn.Module) -> list[_BatchNorm]:
    """The BatchNorm layers that keep running statistics, in registration order; ModelError if there is none."""
    layers = [m for m in model.modules() if isinstance(m, _BatchNorm) and m.running_mean is not None]
    if not layers:
        raise ModelError(f"{type(model).__name__} has no BatchNorm layer: data-free synthesis matches BN statistics; "
                         "pass calibration data")
    return layers


@contextlib.contextmanager
def _bn_statistics(model: nn.Module):
    """Yields (BN layers, records): each forward appends (layer index, batch mean, batch variance) of every BN
    layer's input to records. Meanwhile the model is in eval mode with frozen parameters; all is restored after."""
    layers = _batch_norms(model)
    modes = [(m, m.training) for m in model.modules()]
    grad_flags = [(p, p.requires_grad) for p in model.parameters()]
    records: list[tuple[int, torch.Tensor, torch.Tensor]] = []

    def recorder(index: int):
        def record(_module, inputs, _output):
            x = inputs[0]
            var, mean = torch.var_mean(x, dim=[0, *range(2, x.dim())], correction=0)  # per channel, as BN does
            records.append((index, mean, var))
        return record

    handles = [layer.register_forward_hook(recorder(i)) for i, layer in enumerate(layers)]
    try:
        model.eval()
        for p, _ in grad_flags:
            p.requires_grad_(False)
        yield layers, records
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes:
            module.training = training
        for p, flag in grad_flags:
            p.requires_grad_(flag)


def _statistics_loss(layers, records, first_bn_weight: float) -> torch.Tensor:
    """DeepInversion's R_feature: Σ_l ||μ_l − running_mean_l||₂ + ||σ²_l − running_var_l||₂, first layer up-weighted."""
    total = torch.zeros(())
    for index, mean, var in records:
        layer = layers[index]
        distance = torch.linalg.vector_norm(mean - layer.running_mean) + torch.linalg.vector_norm(var - layer.running_var)
        total = total + (first_bn_weight if index == 0 else 1.0) * distance
    return total


def _image_prior(x: torch.Tensor, tv_weight: float, l2_weight: float) -> torch.Tensor:
    """L2 total variation along every spatial axis (none for [batch, features] inputs) plus the mean L2 norm."""
    total_variation = sum((torch.linalg.vector_norm(x.diff(dim=d)) for d in range(2, x.dim())), torch.zeros(()))
    return tv_weight * total_variation + l2_weight * x.flatten(1).norm(dim=1).mean()


def _probe(model: nn.Module, input_shape: tuple[int, ...], device, targets: bool) -> int:
    """Checks the model takes ``input_shape`` (ModelError otherwise); the number of classes when ``targets``."""
    try:
        with torch.no_grad():
            output = model(torch.zeros((2, *input_shape), device=device))
    except RuntimeError as exc:
        raise ModelError(f"{type(model).__name__} cannot take inputs of shape {tuple(input_shape)}: "
                         f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc
    if not targets:
        return 0
    if not isinstance(output, torch.Tensor) or output.dim() != 2:
        raise ModelError(f"targets=True needs [batch, classes] logits; {type(model).__name__} returns "
                         f"{tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__}")
    return output.shape[1]


def _check_settings(n, input_shape, steps, batch_size, lr, weights: dict[str, float]) -> None:
    for name, value in (("n", n), ("steps", steps), ("batch_size", batch_size), ("lr", lr)):
        check_positive(name, value)
    for name, value in weights.items():
        check_positive(name, value, allow_zero=True)
    if not input_shape or not all(isinstance(d, int) and d > 0 for d in input_shape):
        raise ConfigError(f"input_shape must be a non-empty tuple of positive ints (no batch axis), got {input_shape!r}")


def synthesize(model: nn.Module, n: int, input_shape: tuple[int, ...], *, steps: int = 200, batch_size: int = 64,
               lr: float = 0.1, tv_weight: float = 1e-4, l2_weight: float = 1e-5, first_bn_weight: float = 10.0,
               targets: bool = False, target_weight: float = 1.0, seed: int = 0, progress: bool = False) -> torch.Tensor:
    """``n`` float32 inputs ``[n, *input_shape]`` in the model's (normalised) input space, on its device, whose
    BatchNorm batch statistics match the running ones.

    Made in batches of ``batch_size``: each starts from N(0, 1) noise (drawn from ``seed``, so the result is
    deterministic) and takes ``steps`` Adam steps (DeepInversion's betas, cosine-decayed ``lr``) on the BN
    statistics loss plus the image priors; with ``targets=True`` also ``target_weight`` × the cross-entropy toward
    balanced targets (input i aims at class i mod classes). The model's parameters, buffers and training flags
    are left as they were. ModelError if it has no BatchNorm layer or cannot take ``input_shape``.
    """
    _check_settings(n, input_shape, steps, batch_size, lr, {"tv_weight": tv_weight, "l2_weight": l2_weight,
                                                           "first_bn_weight": first_bn_weight, "target_weight": target_weight})
    generator = torch.Generator().manual_seed(seed)
    starts = range(0, n, batch_size)
    bar = Progress(TextColumn("synthesising inputs"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   transient=True, disable=not progress)
    batches = []
    with _bn_statistics(model) as (layers, records), bar, torch.enable_grad():
        device = layers[0].running_mean.device
        classes = _probe(model, input_shape, device, targets)
        task = bar.add_task("synthesising inputs", total=len(starts) * steps)
        for start in starts:
            size = min(batch_size, n - start)
            x = torch.randn((size, *input_shape), generator=generator).to(device).requires_grad_()
            wanted = (torch.arange(start, start + size, device=device) % classes) if targets else None
            optimiser = torch.optim.Adam([x], lr=lr, betas=(0.5, 0.9))
            schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)
            for _ in range(steps):
                records.clear()
                output = model(x)
                loss = _statistics_loss(layers, records, first_bn_weight) + _image_prior(x, tv_weight, l2_weight)
                if wanted is not None:
                    loss = loss + target_weight * F.cross_entropy(output, wanted)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                schedule.step()
                bar.advance(task)
            records.clear()
            batches.append(x.detach())
    return torch.cat(batches)


def synthetic_loader(model: nn.Module, n: int, input_shape: tuple[int, ...], batch_size: int = 64, **kw) -> DataLoader:
    """A DataLoader over :func:`synthesize`'s inputs (made in batches of ``batch_size`` too), yielding batches
    of x only (no labels), in a fixed order; ``kw`` goes to :func:`synthesize`."""
    inputs = synthesize(model, n, input_shape, batch_size=batch_size, **kw)
    return DataLoader(inputs, batch_size=batch_size, shuffle=False)


def bn_matching_loss(model: nn.Module, x: torch.Tensor) -> float:
    """How far the batch statistics of ``x`` are from the model's BN running statistics: the mean over BN layers
    of ||μ − running_mean||₂ / ||√running_var||₂ + ||σ² − running_var||₂ / ||running_var||₂ (0 = a perfect match;
    scale-free, so comparable across models). One forward of all of ``x``; the model is left as it was."""
    with _bn_statistics(model) as (layers, records), torch.no_grad():
        model(x)
        errors = []
        for index, mean, var in records:
            running_mean, running_var = layers[index].running_mean, layers[index].running_var
            errors.append(float(torch.linalg.vector_norm(mean - running_mean) / (running_var.sqrt().norm() + _EPS)
                                + torch.linalg.vector_norm(var - running_var) / (running_var.norm() + _EPS)))
    if not errors:
        raise ModelError(f"no BatchNorm layer of {type(model).__name__} ran in its forward pass")
    return sum(errors) / len(errors)

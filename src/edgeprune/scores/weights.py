"""Per-weight scores from the weights alone or from loss gradients on calibration batches.

``magnitude`` |w|, ``gradient`` mean_b |∂L_b/∂w| (Mix-and-Match's sensitivity), ``product`` |w| · gradient,
``random``. Also the shared machinery of every data-driven criterion (``pai.py`` uses it too):
:func:`scoring_state` (mode, buffers and RNG restored afterwards) and :func:`batch_gradients`.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from edgeprune import tasks as tasks_lib
from edgeprune.errors import ConfigError
from edgeprune.measure import prunable_weights
from edgeprune.models import loss_logits
from edgeprune.scores.registry import criterion

Scores = dict[str, torch.Tensor]
Batch = tuple[torch.Tensor, torch.Tensor]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

MODES = ("train", "eval")


def to_scores(tensors: dict[str, torch.Tensor]) -> Scores:
    """The public score format: detached float32 CPU tensors.

    Callers pass freshly computed tensors (``w.abs()``, products...), never a weight itself, so no copy is
    made when they already are float32 on CPU.
    """
    return {n: t.detach().to(device="cpu", dtype=torch.float32) for n, t in tensors.items()}


def check_mode(mode: str) -> bool:
    """True for 'train', False for 'eval'; ConfigError otherwise."""
    if mode not in MODES:
        raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    return mode == "train"


@contextlib.contextmanager
def scoring_state(model: nn.Module, *, train: bool, seed: int, weights: Iterable[nn.Parameter] = ()):
    """Put ``model`` in train/eval mode for scoring and undo every side effect afterwards.

    Restored on exit: each module's ``training`` flag, every buffer (BatchNorm running statistics move
    during train-mode forwards), the ``requires_grad`` flags of ``weights`` (switched on for scoring) and
    the global RNG state (dropout during scoring draws from a generator seeded with ``seed``).
    """
    modes = [(m, m.training) for m in model.modules()]
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    weights = list(weights)
    flags = [(w, w.requires_grad) for w in weights]
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        try:
            model.train(train)
            for w in weights:
                w.requires_grad_(True)
            yield
        finally:
            for m, was_training in modes:
                m.training = was_training
            with torch.no_grad():
                for b, saved in buffers:
                    b.copy_(saved)
            for w, flag in flags:
                w.requires_grad_(flag)


def batch_loss(model: nn.Module, batch: Batch, loss_fn: LossFn | None, ref: torch.Tensor, *,
               temperature: float = 1.0) -> torch.Tensor:
    """Loss of ``model`` on one ``(x, y)`` batch, moved to the device (and float dtype) of ``ref``: ``loss_fn``
    on the logits, else the current task's training loss (cross-entropy for classifiers; ``temperature`` divides
    a classifier's logits)."""
    x, y = batch
    x = torch.as_tensor(x).to(ref.device)
    if x.is_floating_point():
        x = x.to(ref.dtype)
    task = tasks_lib.current()
    if loss_fn is None and not isinstance(task, tasks_lib.Classification):
        return task.check_loss(task.train_loss(model, x, task.to_device(y, ref.device))[0])
    y = torch.as_tensor(y).to(ref.device)
    logits = loss_logits(model(x))
    if temperature != 1.0:
        logits = logits / temperature
    return (loss_fn or F.cross_entropy)(logits, y)


def batch_gradients(
    model: nn.Module,
    batches: Sequence[Batch],
    loss_fn: LossFn | None,
    *,
    seed: int,
    train: bool = True,
) -> Iterator[dict[str, torch.Tensor]]:
    """Yield ``{name: ∂L_b/∂w}`` over the prunable weights for each batch b, in the scoring state.

    Gradients come from ``torch.autograd.grad``, so the model's ``.grad`` fields are never touched.
    A weight the loss does not depend on gets a zero gradient.
    """
    weights = prunable_weights(model)
    names, params = list(weights), list(weights.values())
    with scoring_state(model, train=train, seed=seed, weights=params):
        for batch in batches:
            loss = batch_loss(model, batch, loss_fn, params[0])
            grads = torch.autograd.grad(loss, params, allow_unused=True)
            yield {n: (g if g is not None else torch.zeros_like(p)) for n, p, g in zip(names, params, grads)}


def mean_abs_gradient(model: nn.Module, batches: Sequence[Batch], loss_fn: LossFn | None, *, seed: int,
                      train: bool = True) -> dict[str, torch.Tensor]:
    """Σ_b |∂L_b/∂w| / n_batches in the model's dtype and device (not yet converted to scores)."""
    total: dict[str, torch.Tensor] = {}
    count = 0
    for grads in batch_gradients(model, batches, loss_fn, seed=seed, train=train):
        count += 1
        for n, g in grads.items():
            a = g.detach().abs()
            total[n] = total[n].add_(a) if n in total else a.clone()
    return {n: t / count for n, t in total.items()}


@criterion("magnitude", "|w| (Han et al. 2015); data-free", needs_data=False)
def magnitude(model: nn.Module, batches, *, loss_fn, seed) -> Scores:
    return to_scores({n: w.detach().abs() for n, w in prunable_weights(model).items()})


@criterion("gradient", "mean over calibration batches of |dL/dw| (per-batch absolute value, train mode)", needs_data=True)
def gradient(model: nn.Module, batches, *, loss_fn, seed, mode: str = "train") -> Scores:
    return to_scores(mean_abs_gradient(model, batches, loss_fn, seed=seed, train=check_mode(mode)))


@criterion("product", "|w| * gradient (magnitude times mean |dL/dw|)", needs_data=True)
def product(model: nn.Module, batches, *, loss_fn, seed, mode: str = "train") -> Scores:
    grads = mean_abs_gradient(model, batches, loss_fn, seed=seed, train=check_mode(mode))
    weights = prunable_weights(model)
    return to_scores({n: weights[n].detach().abs() * g for n, g in grads.items()})


@criterion("random", "uniform random in [0, 1), seeded; data-free sanity baseline", needs_data=False)
def random_scores(model: nn.Module, batches, *, loss_fn, seed) -> Scores:
    generator = torch.Generator().manual_seed(int(seed))
    return {n: torch.rand(w.shape, generator=generator) for n, w in prunable_weights(model).items()}

"""The one training loop of edgeprune: dense training, fine-tuning of pruned models and KD.

Every method (Mix-and-Match fine-tunes, VBP's KD fine-tune, Reconvene's training from scratch) calls
:func:`fit`. Selection is on the validation split: the best validation epoch's weights are restored at the
end, and early stopping watches it (the task's primary metric: top-1 accuracy for classifiers). Test data never enters this module.

Distributed data parallel: when ``torch.distributed`` is initialised (``torchrun``), :func:`fit` shards the
training set with a DistributedSampler, wraps the model in DDP and only rank 0 shows progress; the caller
lets only rank 0 write files.

User DataLoaders: ``train_data`` / ``val_data`` may be DataLoaders yielding ``(x, y)`` tensor batches. They
are used as they are: their batch size and order win over ``batch_size`` / ``seed`` (the global torch RNG is
seeded with ``seed`` first, so a loader shuffling with it repeats; a loader with a generator of its own gets
that generator re-seeded with ``seed``, so a fit's data order never depends on what ran before it).

Determinism: the same seed gives the same weights — seeded init RNG, data order and augmentation draws (the
runner reseeds them per candidate), and :func:`deterministic` (torch's deterministic algorithms) around
every candidate. Under DDP a user training DataLoader
must already shard with a DistributedSampler (fit calls its ``set_epoch``); anything else is a ConfigError,
since every rank would train on all the data.
"""

from __future__ import annotations

import contextlib
import copy
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Literal

import pydantic
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from edgeprune import distributed as dist_lib
from edgeprune import tasks as tasks_lib
from edgeprune.config import MAX_BATCH_SIZE, MAX_BATCHES, MAX_EPOCHS, MAX_SEED, Config
from edgeprune.data.loaders import checked, make_loader
from edgeprune.errors import ConfigError, DataError, EdgepruneError
from edgeprune.models import load_state, logits_of
from edgeprune.prune.gradual import GradualMasks
from edgeprune.prune.masks import Masks, apply_masks, mask_gradients


class TrainConfig(Config):
    """Settings of :func:`fit`. ``epochs``, ``lr`` and ``batch_size`` must be > 0."""

    epochs: int = pydantic.Field(10, gt=0, le=MAX_EPOCHS)
    batch_size: int = pydantic.Field(128, gt=0, le=MAX_BATCH_SIZE)
    lr: float = pydantic.Field(0.05, gt=0)
    optimizer: Literal["sgd", "adam", "adamw"] = "sgd"
    momentum: float = pydantic.Field(0.9, ge=0, lt=1)
    weight_decay: float = pydantic.Field(5e-4, ge=0)
    schedule: Literal["cosine", "step", "constant"] = "cosine"
    step_size: int = pydantic.Field(30, gt=0, le=MAX_EPOCHS)  # epochs between LR drops, schedule="step"
    gamma: float = pydantic.Field(0.1, gt=0, le=1)
    warmup_epochs: float = pydantic.Field(0.0, ge=0, le=MAX_EPOCHS)
    label_smoothing: float = pydantic.Field(0.0, ge=0, lt=1)
    patience: int | None = pydantic.Field(None, gt=0, le=MAX_EPOCHS)  # early stopping: epochs without val improvement
    seed: int = pydantic.Field(0, ge=0, le=MAX_SEED)
    kd_alpha: float = pydantic.Field(0.5, ge=0, le=1)  # weight of the hard-label CE when a teacher is given
    kd_temperature: float = pydantic.Field(4.0, gt=0)
    max_batches: int | None = pydantic.Field(None, gt=0, le=MAX_BATCHES)  # cap per epoch, for quick runs
    eval_batch_size: int = pydantic.Field(512, gt=0, le=MAX_BATCH_SIZE)


# --quick / quick=True: every training stage stops after this many batches per epoch
QUICK_MAX_BATCHES = 10


def quick_config(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with batches per epoch capped for a quick run (a smaller cap already set is kept)."""
    return cfg.replace(max_batches=min(cfg.max_batches or QUICK_MAX_BATCHES, QUICK_MAX_BATCHES))


def duration_text(seconds: float | None) -> str:
    """'1h02m03s', '3m12s', '45s' ('–' for unknown)."""
    if seconds is None:
        return "–"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def log_line(text: str) -> None:
    """One plain progress line on stderr, flushed: it reaches a redirected log as it happens."""
    print(text, file=sys.stderr, flush=True)


# Measured on MNIST (cosine): the MLP wants a larger step; LeNet-5 diverges at 0.05 without the short warm-up;
# the zoo ViT (AdamW 2e-3, 0.5 warm-up epochs, 5 epochs, 3 seeds) reached 96.97 ± 0.27 % at batch 128 and
# 97.48 ± 0.16 % at batch 64 (benchmarks/train_mnist.py): in a 5-epoch budget twice the steps pay.
_LR_BY_MODEL = {"lenet300": 0.1}


def default_config(model_spec: str, **overrides) -> TrainConfig:
    """Sensible defaults by model family: AdamW for transformers, SGD with momentum for CNNs."""
    name = model_spec.split(":", 1)[-1]
    transformer = name.startswith("vit") or model_spec.startswith("hf")
    base = (
        {"optimizer": "adamw", "lr": 2e-3, "weight_decay": 0.05, "warmup_epochs": 0.5, "batch_size": 64}
        if transformer
        else {"optimizer": "sgd", "lr": _LR_BY_MODEL.get(name, 0.05), "momentum": 0.9, "weight_decay": 5e-4, "warmup_epochs": 0.3}
    )
    return TrainConfig.build(base, **overrides)


class TrainingDiverged(EdgepruneError):
    """The loss became NaN or infinite."""


@dataclass
class TrainResult:
    best_val_acc: float  # the best validation value of the task's primary metric (top-1 accuracy by default)
    best_epoch: int
    epochs_run: int
    seconds: float
    history: list[dict] = field(default_factory=list)

    @property
    def seconds_per_epoch(self) -> float:
        return self.seconds / max(self.epochs_run, 1)

    def as_dict(self) -> dict:
        return {
            "best_val_acc": self.best_val_acc,
            "best_epoch": self.best_epoch,
            "epochs_run": self.epochs_run,
            "seconds": self.seconds,
            "seconds_per_epoch": self.seconds_per_epoch,
            "history": self.history,
        }


def kd_loss(student: torch.Tensor, teacher: torch.Tensor, target: torch.Tensor, alpha: float, T: float):
    """alpha * CE(student, target) + (1 - alpha) * T^2 * KL(softmax(teacher/T) || softmax(student/T))."""
    return tasks_lib.Classification().distil(student, teacher, target, alpha, T)


def _task_of(task, cfg: TrainConfig) -> tasks_lib.Task:
    task = task if task is not None else tasks_lib.current()
    if type(task) is tasks_lib.Classification and cfg.label_smoothing:
        return tasks_lib.Classification(cfg.label_smoothing)
    return task


def _optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=cfg.momentum > 0)
    cls = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
    return cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _lr_factor(cfg: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """LR multiplier at optimizer step ``step`` (per-step schedule, linear warm-up first)."""
    total = cfg.epochs * steps_per_epoch
    warm = int(cfg.warmup_epochs * steps_per_epoch)
    if step < warm:
        return (step + 1) / warm
    if cfg.schedule == "constant":
        return 1.0
    if cfg.schedule == "step":
        return cfg.gamma ** ((step // steps_per_epoch) // cfg.step_size)
    progress = (step - warm) / max(total - warm, 1)
    return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


@contextlib.contextmanager
def deterministic():
    """torch's deterministic algorithms inside the block (warn-only where an op has none); restored after."""
    before, warn_only = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before, warn_only=warn_only)


def _distributed() -> tuple[bool, int, int]:
    return dist_lib.is_initialized(), dist_lib.rank(), dist_lib.world_size()


def _train_loader(train_data, cfg: TrainConfig, distributed: bool, rank: int, world: int):
    """(loader, sampler to ``set_epoch``): a user DataLoader as it is, else a seeded (sharded) loader."""
    if isinstance(train_data, DataLoader):
        if train_data.generator is not None:  # its shuffling then repeats for the same seed
            train_data.generator.manual_seed(cfg.seed)
        sampler = train_data.sampler if isinstance(train_data.sampler, DistributedSampler) else None
        if distributed and sampler is None:
            raise ConfigError(f"under torchrun a training DataLoader must shard with a DistributedSampler, got "
                              f"{type(train_data.sampler).__name__}; add one or pass the dataset to let fit shard it")
        return train_data, sampler
    sampler = DistributedSampler(train_data, num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed) if distributed else None
    return make_loader(train_data, cfg.batch_size, shuffle=sampler is None, seed=cfg.seed, sampler=sampler), sampler


def _steps_per_epoch(loader, cfg: TrainConfig) -> int:
    try:
        n = len(loader)
    except TypeError:  # an IterableDataset without __len__
        if cfg.max_batches is None:
            raise ConfigError("the training DataLoader has no len() (IterableDataset); set max_batches "
                              "to fix the steps per epoch") from None
        return cfg.max_batches
    if n == 0:
        raise DataError("training data is empty: it yields no batch; expected at least one (x, y) batch")
    return n if cfg.max_batches is None else min(n, cfg.max_batches)


def batches_per_epoch(train_data, cfg: TrainConfig) -> int:
    """Optimizer steps per epoch :func:`fit` takes on ``train_data`` (after ``max_batches``), one process."""
    return _steps_per_epoch(_train_loader(train_data, cfg, False, 0, 1)[0], cfg)


def fit(
    model: nn.Module,
    train_data,
    val_data,
    config: TrainConfig | None = None,
    *,
    teacher: nn.Module | None = None,
    masks: Masks | None = None,
    pruning: GradualMasks | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    description: str = "train",
    task: tasks_lib.Task | None = None,
) -> TrainResult:
    """Train ``model`` in place on ``train_data``; keep the weights of the best validation epoch.

    ``masks`` ({param name: bool keep-mask}) stay exact: pruned weights are zero at every step.
    ``task`` (default: the current one, see :func:`edgeprune.tasks.using`) gives the loss, the distillation
    loss and the validation metric (its primary metric, in its direction).
    ``teacher`` switches the loss to knowledge distillation (the task's; for classification :func:`kd_loss`).
    ``pruning`` (gradual schedule, :class:`~edgeprune.prune.gradual.GradualMasks`) replaces ``masks``: it
    prunes along its schedule after optimizer steps, and only epochs ending after its final update count
    for selection and early stopping; its ``masks`` attribute holds the final masks afterwards.
    ``train_data`` / ``val_data``: datasets or DataLoaders yielding ``(x, y)`` tensor batches (a DataLoader
    keeps its own batch size and order; see the module notes for DDP). Malformed batches: DataError.
    Raises :class:`TrainingDiverged` if the loss becomes NaN/inf.
    """
    cfg = config or TrainConfig()
    task = _task_of(task, cfg)
    with tasks_lib.using(task):
        return _fit(model, train_data, val_data, cfg, task, teacher, masks, pruning, device, progress, description)


def _fit(model, train_data, val_data, cfg, task, teacher, masks, pruning, device, progress, description) -> TrainResult:
    distributed, rank, world = _distributed()
    device = torch.device(device) if device is not None else dist_lib.device()  # under DDP: this rank's GPU
    torch.manual_seed(cfg.seed)
    model.to(device)
    if teacher is not None:
        teacher.to(device).eval()
    if masks:
        masks = {k: v.to(device) for k, v in masks.items()}
        apply_masks(model, masks)

    loader, sampler = _train_loader(train_data, cfg, distributed, rank, world)
    steps_per_epoch = _steps_per_epoch(loader, cfg)
    if pruning is not None:
        masks = {k: v.to(device) for k, v in pruning.begin(cfg.epochs * steps_per_epoch).items()}
    net = model
    if distributed:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    optimizer = _optimizer(model, cfg)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _lr_factor(cfg, s, steps_per_epoch))
    use_amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    best_acc, best_epoch, best_state, history = task.worst(), 0, None, []
    val_key = f"val_{task.metric}"
    count_correct = isinstance(task, tasks_lib.Classification)
    since_best, step = 0, 0
    start = time.perf_counter()
    bar = _progress(progress and rank == 0)
    epoch_lines = progress and rank == 0 and not sys.stderr.isatty()  # the transient bar leaves nothing in a log
    with bar:
        shown = bar.add_task(description, total=cfg.epochs * steps_per_epoch)
        for epoch in range(1, cfg.epochs + 1):
            if sampler is not None:
                sampler.set_epoch(epoch)
            net.train()
            t0, loss_sum, correct, seen = time.perf_counter(), 0.0, 0, 0
            for i, (x, y) in enumerate(checked(loader, "training data")):
                if i >= steps_per_epoch:
                    break
                x, y = x.to(device, non_blocking=True), task.to_device(y, device)
                with torch.autocast(device.type, enabled=use_amp):
                    if teacher is not None:
                        loss, output = task.distil_loss(net, teacher, x, y, cfg.kd_alpha, cfg.kd_temperature)
                    else:
                        loss, output = task.train_loss(net, x, y)
                    loss = task.check_loss(loss)
                if distributed:  # every rank must take the same decision, or the others hang in backward
                    finite = math.isfinite(dist_lib.all_reduce_sum([loss.item()], device)[0])
                else:
                    finite = bool(torch.isfinite(loss))
                if not finite:
                    raise TrainingDiverged(f"training loss became {loss.item()} at epoch {epoch}, batch {i + 1} (lr={cfg.lr})")
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if masks:
                    mask_gradients(model, masks)
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                step += 1
                if pruning is not None and (new := pruning.update(step, model)) is not None:
                    masks = {k: v.to(device) for k, v in new.items()}
                if masks:
                    apply_masks(model, masks)
                size = task.batch_size(y)
                loss_sum += loss.item() * size
                if count_correct:
                    correct += int((logits_of(output).argmax(1) == y).sum())
                seen += size
                bar.update(shown, advance=1, description=f"{description} ep {epoch}/{cfg.epochs} loss {loss.item():.3f}")
            if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):  # the last step's update
                raise TrainingDiverged(f"training made weights non-finite in epoch {epoch} (lr={cfg.lr})")
            if distributed:
                # rank 0 evaluates and broadcasts, so all ranks agree on early stopping and the best state
                loss_sum, correct, seen = dist_lib.all_reduce_sum([loss_sum, correct, seen], device)
                val_acc = task.primary(model, val_data, cfg.eval_batch_size) if rank == 0 else 0.0
                val_acc = dist_lib.broadcast_value(val_acc, 0, device)
            else:
                val_acc = task.primary(model, val_data, cfg.eval_batch_size)
            history.append(
                {
                    "epoch": epoch,
                    "train_loss": loss_sum / max(seen, 1),
                    **({"train_acc": correct / max(seen, 1)} if count_correct else {}),
                    "examples": int(seen),  # all ranks together under DDP
                    val_key: val_acc,
                    "lr": optimizer.param_groups[0]["lr"],
                    "seconds": time.perf_counter() - t0,
                }
            )
            if epoch_lines:
                spent = time.perf_counter() - start
                log_line(f"{description} epoch {epoch}/{cfg.epochs}  loss {history[-1]['train_loss']:.3f}  "
                         f"{val_key} {val_acc:.3f}  elapsed {duration_text(spent)}  "
                         f"ETA {duration_text(spent / epoch * (cfg.epochs - epoch))}")
            if pruning is not None and not pruning.finished(step):
                continue  # the masks are not final yet: neither a candidate for "best" nor a reason to stop
            if task.better(val_acc, best_acc):
                best_acc, best_epoch, since_best = val_acc, epoch, 0
                best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
            else:
                since_best += 1
                if cfg.patience is not None and since_best >= cfg.patience:
                    break
    if best_state is not None:
        load_state(model, best_state)
    if pruning is not None and (best_state is None or not pruning.finished(step)):
        masks = pruning.complete(model)  # cut short before the end step: prune to the final counts now
    if masks:
        apply_masks(model, masks)
    best = best_acc if math.isfinite(best_acc) else math.nan  # no epoch counted (cut short before the masks were final)
    return TrainResult(best, best_epoch, len(history), time.perf_counter() - start, history)


def _progress(enabled: bool):
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=True,
        disable=not enabled,
    )

"""The training loop behind :func:`edgeprune.train.fit` (see the package notes): setup, epochs, steps, selection."""

from __future__ import annotations

import contextlib
import copy
import math
import sys
import time
from dataclasses import dataclass

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from edgeprune import distributed as dist_lib
from edgeprune import tasks as tasks_lib
from edgeprune.data.loaders import checked, make_loader
from edgeprune.errors import ConfigError, DataError
from edgeprune.models import load_state, logits_of
from edgeprune.prune.gradual import GradualMasks
from edgeprune.prune.masks import Masks, apply_masks, mask_factors, mask_gradients
from edgeprune.train.config import TrainConfig, TrainingDiverged, TrainResult, duration_text, log_line


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
    # one kernel per step instead of a Python loop over the parameters: Adam's step is 4x faster on CPU, 6x for SGD
    fused = bool(params) and all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                               nesterov=cfg.momentum > 0, fused=fused or None)
    cls = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
    return cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused or None)


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
    with tasks_lib.using(task), _left_as_it_was(teacher):
        return _fit(model, train_data, val_data, cfg, task, teacher, masks, pruning, device, progress, description)


@contextlib.contextmanager
def _left_as_it_was(teacher: nn.Module | None):
    """The teacher (often the user's own input model) back in its train/eval mode and on its device afterwards."""
    if teacher is None:
        yield
        return
    was_training, where = teacher.training, next((p.device for p in teacher.parameters()), None)
    try:
        yield
    finally:
        teacher.train(was_training)
        if where is not None:
            teacher.to(where)


def _fit(model, train_data, val_data, cfg, task, teacher, masks, pruning, device, progress, description) -> TrainResult:
    distributed, rank, world = _distributed()
    device = torch.device(device) if device is not None else dist_lib.device()  # under DDP: this rank's GPU
    torch.manual_seed(cfg.seed)
    model.to(device)
    if teacher is not None:
        teacher.to(device).eval()
    if masks:
        masks = mask_factors(model, masks, device)
        apply_masks(model, masks)

    loader, sampler = _train_loader(train_data, cfg, distributed, rank, world)
    steps_per_epoch = _steps_per_epoch(loader, cfg)
    if pruning is not None:
        masks = mask_factors(model, pruning.begin(cfg.epochs * steps_per_epoch), device)
    net = model
    if distributed:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = _optimizer(model, cfg)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _lr_factor(cfg, s, steps_per_epoch))
    use_amp = device.type == "cuda"
    loop = _Loop(model, net, task, cfg, device, teacher, masks, pruning, optimizer, scheduler,
                 torch.amp.GradScaler("cuda", enabled=use_amp), distributed, rank, use_amp)
    best, history = _Best(task.worst()), []
    start = time.perf_counter()
    bar = _progress(progress and rank == 0)
    epoch_lines = progress and rank == 0 and not sys.stderr.isatty()  # the transient bar leaves nothing in a log
    with bar:
        shown = bar.add_task(description, total=cfg.epochs * steps_per_epoch)
        for epoch in range(1, cfg.epochs + 1):
            if sampler is not None:
                sampler.set_epoch(epoch)
            net.train()
            t0 = time.perf_counter()
            totals = _train_epoch(loop, loader, steps_per_epoch, epoch, (bar, shown, f"{description} ep {epoch}/{cfg.epochs}"))
            val_acc, totals = _validate(loop, val_data, totals)
            history.append(_epoch_record(loop, epoch, totals, val_acc, time.perf_counter() - t0))
            if epoch_lines:
                _log_epoch(description, epoch, cfg.epochs, history[-1], loop.val_key, time.perf_counter() - start)
            if pruning is not None and not pruning.finished(loop.step):
                continue  # the masks are not final yet: neither a candidate for "best" nor a reason to stop
            if best.stop_after(loop, val_acc, epoch):
                break
    return _finish(loop, best, history, start)


@dataclass
class _Loop:
    """What the steps of one :func:`fit` share; ``masks`` and ``step`` move as it trains."""

    model: nn.Module
    net: nn.Module  # the model, or its DDP wrapper
    task: tasks_lib.Task
    cfg: TrainConfig
    device: torch.device
    teacher: nn.Module | None
    masks: dict | None
    pruning: GradualMasks | None
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    distributed: bool
    rank: int
    use_amp: bool
    step: int = 0

    @property
    def val_key(self) -> str:
        return f"val_{self.task.metric}"

    @property
    def count_correct(self) -> bool:
        return isinstance(self.task, tasks_lib.Classification)


@dataclass
class _Best:
    """The best validation epoch so far, its weights and the epochs since it (for early stopping)."""

    acc: float
    epoch: int = 0
    state: dict | None = None
    since: int = 0

    def stop_after(self, loop: _Loop, val_acc: float, epoch: int) -> bool:
        """Record ``epoch``'s validation figure; True when patience has run out."""
        if loop.task.better(val_acc, self.acc):
            self.acc, self.epoch, self.since = val_acc, epoch, 0
            self.state = copy.deepcopy({k: v.detach().cpu() for k, v in loop.model.state_dict().items()})
            return False
        self.since += 1
        return loop.cfg.patience is not None and self.since >= loop.cfg.patience


def _train_epoch(loop: _Loop, loader, steps_per_epoch: int, epoch: int, shown) -> tuple[float, int, int]:
    """One epoch of steps; (summed loss, correct predictions, examples). ``shown``: (progress bar, its task, label)."""
    bar, task_id, label = shown
    loss_sum, correct, seen = 0.0, 0, 0
    for i, (x, y) in enumerate(checked(loader, "training data")):
        if i >= steps_per_epoch:
            break
        x, y = x.to(loop.device, non_blocking=True), loop.task.to_device(y, loop.device)
        loss, output = _train_step(loop, x, y, epoch, i)
        size = loop.task.batch_size(y)
        loss_sum += loss.item() * size
        if loop.count_correct:
            correct += int((logits_of(output).argmax(1) == y).sum())
        seen += size
        bar.update(task_id, advance=1, description=f"{label} loss {loss.item():.3f}")
    if not _finite(loop.model.parameters()):  # the last step's update
        raise TrainingDiverged(f"training made weights non-finite in epoch {epoch} (lr={loop.cfg.lr})")
    return loss_sum, correct, seen


def _finite(params) -> bool:
    """Whether every parameter is finite: one sum per tensor (a NaN or an infinity makes it non-finite) reads the
    weights once, where isfinite(...).all() also writes a mask of them (13x faster on VGG-11: benchmarks/step_overhead.py)."""
    return bool(torch.isfinite(torch.stack([p.detach().sum().float() for p in params]).sum()))


def _train_step(loop: _Loop, x, y, epoch: int, i: int):
    """Forward, backward and optimizer step on batch ``i``; masks kept exact; (loss, output)."""
    task, cfg, model = loop.task, loop.cfg, loop.model
    with torch.autocast(loop.device.type, enabled=loop.use_amp):
        if loop.teacher is not None:
            loss, output = task.distil_loss(loop.net, loop.teacher, x, y, cfg.kd_alpha, cfg.kd_temperature)
        else:
            loss, output = task.train_loss(loop.net, x, y)
        loss = task.check_loss(loss)
    if loop.distributed:  # every rank must take the same decision, or the others hang in backward
        finite = math.isfinite(dist_lib.all_reduce_sum([loss.item()], loop.device)[0])
    else:
        finite = bool(torch.isfinite(loss))
    if not finite:
        raise TrainingDiverged(f"training loss became {loss.item()} at epoch {epoch}, batch {i + 1} (lr={cfg.lr})")
    loop.optimizer.zero_grad(set_to_none=True)
    loop.scaler.scale(loss).backward()
    if loop.masks:
        mask_gradients(model, loop.masks)
    if cfg.clip_grad_norm is not None:
        loop.scaler.unscale_(loop.optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad_norm)
    loop.scaler.step(loop.optimizer)
    loop.scaler.update()
    loop.scheduler.step()
    loop.step += 1
    if loop.pruning is not None and (new := loop.pruning.update(loop.step, model)) is not None:
        loop.masks = mask_factors(model, new, loop.device)
    if loop.masks:
        apply_masks(model, loop.masks)
    return loss, output


def _validate(loop: _Loop, val_data, totals: tuple) -> tuple[float, tuple]:
    """The validation figure and the epoch's totals (under DDP: summed over the ranks)."""
    if not loop.distributed:
        return loop.task.primary(loop.model, val_data, loop.cfg.eval_batch_size), totals
    # rank 0 evaluates and broadcasts, so all ranks agree on early stopping and the best state
    totals = tuple(dist_lib.all_reduce_sum(list(totals), loop.device))
    val_acc = loop.task.primary(loop.model, val_data, loop.cfg.eval_batch_size) if loop.rank == 0 else 0.0
    return dist_lib.broadcast_value(val_acc, 0, loop.device), totals


def _epoch_record(loop: _Loop, epoch: int, totals: tuple, val_acc: float, seconds: float) -> dict:
    loss_sum, correct, seen = totals
    return {
        "epoch": epoch,
        "train_loss": loss_sum / max(seen, 1),
        **({"train_acc": correct / max(seen, 1)} if loop.count_correct else {}),
        "examples": int(seen),  # all ranks together under DDP
        loop.val_key: val_acc,
        "lr": loop.optimizer.param_groups[0]["lr"],
        "seconds": seconds,
    }


def _log_epoch(description: str, epoch: int, epochs: int, record: dict, val_key: str, spent: float) -> None:
    log_line(f"{description} epoch {epoch}/{epochs}  loss {record['train_loss']:.3f}  "
             f"{val_key} {record[val_key]:.3f}  elapsed {duration_text(spent)}  "
             f"ETA {duration_text(spent / epoch * (epochs - epoch))}")


def _finish(loop: _Loop, best: _Best, history: list, start: float) -> TrainResult:
    """Restore the best epoch's weights, make the masks final and exact; the result."""
    model, pruning, masks = loop.model, loop.pruning, loop.masks
    model.zero_grad(set_to_none=True)  # a trained model kept (the best candidate so far) would hold its last gradients
    if best.state is not None:
        load_state(model, best.state)
    if pruning is not None and (best.state is None or not pruning.finished(loop.step)):
        masks = pruning.complete(model)  # cut short before the end step: prune to the final counts now
    if masks:
        apply_masks(model, masks)
    acc = best.acc if math.isfinite(best.acc) else math.nan  # no epoch counted (cut short before the masks were final)
    return TrainResult(acc, best.epoch, len(history), time.perf_counter() - start, history)


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

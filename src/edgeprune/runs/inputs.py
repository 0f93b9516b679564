"""What a user hands us, checked before any work: a model, data, an example input, budgets, seeds, a
fine-tune budget. Every problem is one line naming the value and what is allowed."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
from dataclasses import dataclass

import torch
from torch import nn

from edgeprune import data as data_lib
from edgeprune import devices
from edgeprune import models as model_lib
from edgeprune import tasks as tasks_lib
from edgeprune.config import MAX_SEED, MAX_SEEDS
from edgeprune.data.loaders import first_batch
from edgeprune.errors import CheckpointError, ConfigError, DataError, EdgepruneError, ModelError, check_at_most
from edgeprune.methods.base import DefaultBudget, Method
from edgeprune.models._common import first_conv
from edgeprune.runs import unlabelled
from edgeprune.train import TrainConfig, default_config

IGNORED = -100  # cross entropy's ignore_index: a label that counts for nothing


@dataclass
class Inputs:
    model: nn.Module
    data: object  # edgeprune.data.Data
    example: torch.Tensor  # one input of the data's shape
    task: tasks_lib.Task = dataclasses.field(default_factory=tasks_lib.Classification)


def _example(data, example_input) -> torch.Tensor:
    if example_input is not None:
        if not isinstance(example_input, torch.Tensor):
            raise ConfigError(f"example_input must be a tensor, got {type(example_input).__name__}")
        return example_input[:1] if example_input.ndim >= 2 else example_input.unsqueeze(0)
    shape = getattr(data, "input_shape", None) or (data.in_channels, data.image_size, data.image_size)
    return torch.zeros(1, *shape)


def resolve(model, data, *, task=None, example_input=None, model_args: dict | None = None, data_dir=None) -> Inputs:
    """The user's module (or a spec built for the data), the data as a ``Data``, a checked example and the task
    (``task``: see :func:`edgeprune.tasks.get`; None: the data's own, else classification)."""
    model = model_lib.unwrapped(model)
    if unlabelled.is_unlabelled(data):
        data, task = unlabelled.labelled_by_model(model, data, tasks_lib.get(task), example_input)
    elif task is None and isinstance(data, str):
        data = data_lib.resolve(data, root=data_dir)  # a data set spec may name its task (mnist-seg, mnist-det)
    task = tasks_lib.get(task, data)
    with tasks_lib.using(task):
        return _resolve(model, data_lib.resolve(data, root=data_dir), task, example_input, model_args)


def _resolve(model, data, task: tasks_lib.Task, example_input, model_args) -> Inputs:
    example = _example(data, example_input)
    if isinstance(model, str):
        check_model_args(model_args)
        model = model_lib.create(model, num_classes=data.num_classes or 10, in_channels=example.shape[1],
                                 image_size=example.shape[-1], **(model_args or {}))
    elif isinstance(model, torch.export.ExportedProgram):
        raise ModelError("model is a torch.export ExportedProgram: its graph is fixed (batch-norm and dropout as in eval "
                         "mode), so it cannot be fine-tuned; pass the Python nn.Module it was exported from")
    elif not isinstance(model, nn.Module):
        raise ConfigError(f"model must be a torch.nn.Module or a model spec string, got {type(model).__name__}")
    if isinstance(model, torch.jit.ScriptModule):
        raise ModelError(f"{type(model).__name__} is a TorchScript module (torch.jit.script or trace): its layers cannot "
                         "be changed; pass the Python nn.Module it was made from")
    model = model_lib.plain(model)
    params = list(model.parameters())
    if params and not any(p.requires_grad for p in params):  # frozen layers are fixed computation: none could go
        raise ModelError(f"every parameter of {type(model).__name__} has requires_grad=False (frozen for inference?): "
                         "edgeprune prunes and fine-tunes trainable layers; call model.requires_grad_(True) first "
                         "(layers frozen on purpose may stay frozen)")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(example)
    except Exception as exc:  # noqa: BLE001  any failure of the user's forward is a shape/type mismatch here
        first = " ".join(str(exc).split())[:200]
        conv = first_conv(model)
        if conv is not None and example.dim() == conv.weight.dim() - 1:  # [B, H, W] images for a Conv2d
            raise ModelError(f"{type(model).__name__} rejects an input of shape {tuple(example.shape)} taken from the "
                             f"data ({type(exc).__name__}: {first}); its images have no channel dimension: yield x as "
                             f"[B, {conv.in_channels}, ...] (x.unsqueeze(1))") from None
        raise ModelError(f"{type(model).__name__} rejects an input of shape {tuple(example.shape)} taken from the "
                         f"data ({type(exc).__name__}: {first}); a model built for another data set? (from Python: pass "
                         "example_input= of the shape it expects)") from None
    finally:
        model.train(was_training)
    task.check_output(model, out, example, data)
    if isinstance(task, tasks_lib.Classification):
        outputs = int(model_lib.logits_of(out).shape[1])
        if data.num_classes is None:
            data.num_classes = outputs
        _check_splits_yield(data)
        if data.train is not None:
            x, y = first_batch(data.train, "training data")
            labels = y[y != IGNORED]
            if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= outputs):
                bad = int(labels.min()) if int(labels.min()) < 0 else int(labels.max())
                one = ("; a classifier here has one logit per class: a single sigmoid logit needs a head of 2 outputs"
                       if outputs == 1 else "")
                raise DataError(f"training data has the label {bad} but {type(model).__name__} has {outputs} outputs: "
                                f"class labels must be 0 to {outputs - 1}{one}")
            check_trains(model, x[:2], y[:2], task)
    else:
        check_task_fits(model, data, task)
    return Inputs(model, data, example, task)


def check_epoch_length(train, config: TrainConfig) -> None:
    """A fine-tune's epoch is the training data's length or ``max_batches``: data without a length needs the second."""
    if config.max_batches is not None or train is None:
        return
    try:
        len(train)
    except TypeError:  # a DataLoader of an IterableDataset
        raise DataError(f"the training data ({type(getattr(train, 'dataset', train)).__name__}) has no len(), so an "
                        "epoch has no end: pass finetune={'max_batches': N}, the batches of one epoch") from None


def check_task_fits(model: nn.Module, data, task: tasks_lib.Task) -> None:
    """Before any work: the first batch of every split has the task's targets, the loss on a training batch
    is a scalar (on a copy of the model, in train mode) and the metric on a validation batch is finite."""
    _check_splits_yield(data)
    x, y = first_batch(data.train, "training data")
    check_trains(model, x, y, task)
    task.evaluate(model, data.val, max_batches=1)


def _check_splits_yield(data) -> None:
    """Every split yields a first batch (a DataLoader with drop_last over fewer images than its batch yields none)."""
    for part, what in ((data.train, "training data"), (data.val, "validation data"), (data.test, "test data")):
        if part is not None:
            first_batch(part, what)


def check_trains(model: nn.Module, x, y, task: tasks_lib.Task) -> None:
    """The task's loss on one batch, from a copy of the model in training mode: some models take an input in
    eval mode and not in training (torchvision's Inception-v3: its auxiliary head needs about 299 px)."""
    try:
        with torch.no_grad():
            loss = task.train_loss(copy.deepcopy(model).train(), x, y)[0]
    except EdgepruneError:
        raise
    except Exception as exc:  # noqa: BLE001  any failure of the user's forward is a shape/type mismatch here
        dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), x.dtype)
        hint = (f"its x is {str(x.dtype).removeprefix('torch.')} and the model's parameters "
                f"{str(dtype).removeprefix('torch.')}: cast one to the other" if x.dtype != dtype else "a larger image size?")
        raise ModelError(f"{type(model).__name__} rejects a training batch of shape {tuple(x.shape)} in training mode "
                         f"({model_lib.first_line(exc)[:200]}); {hint}") from None
    task.check_loss(loss)


def checkpoint_model(spec: str, checkpoint, splits) -> nn.Module:
    """The model saved at ``checkpoint``, refused unless it is a ``spec`` model for the data's classes and channels
    (``splits`` None: data without labels, only the spec is checked)."""
    model = model_lib.load(checkpoint)
    build = model.edgeprune_build
    if build.get("spec") != spec:
        raise CheckpointError(f"checkpoint {str(checkpoint)!r} holds a {build.get('spec')!r} model, not --model {spec!r}")
    if splits is None:  # data without labels: the model decides the classes
        return model
    if (build.get("num_classes"), build.get("in_channels")) != (splits.num_classes, splits.in_channels):
        raise CheckpointError(
            f"checkpoint {str(checkpoint)!r} is for {build.get('num_classes')} classes / {build.get('in_channels')} "
            f"channels; data set {splits.name!r} has {splits.num_classes} / {splits.in_channels}")
    return model


SIZES = ("num_classes", "in_channels", "image_size")


def check_model_args(model_args: dict | None) -> None:
    """Model arguments may not set the sizes the data decides (classes, channels, image size)."""
    taken = [k for k in SIZES if k in (model_args or {})]
    if taken:
        raise ConfigError(f"model argument {taken[0]!r} is taken from the data set; allowed: the model's own "
                          f"options (not {', '.join(SIZES)})")


def budgets_of(method: Method, budgets) -> list[float]:
    if budgets is None:
        return [DefaultBudget(method.default_budget)]
    values = [budgets] if isinstance(budgets, (int, float, str)) else list(budgets)
    if not values:
        raise ConfigError("budgets must name at least one budget")
    checked = sorted({method.check_budget(b) for b in values})
    check_devices(checked)
    return checked


def check_devices(budgets) -> None:
    """Every device a budget names is known, reachable and has the budget's runtime, before any work."""
    for name, runtime in sorted({(b.device, b.runtime) for b in budgets if getattr(b, "device", None)}):
        check_device(name, runtime)


def check_device(name: str, runtime: str | None = None) -> None:
    """The device ``name`` is known, reachable and has its runtime (or ``runtime``): one line otherwise."""
    device = devices.get(name, runtime=runtime)
    try:
        device.check()
    finally:
        device.close()


def seeds_of(seeds) -> list[int]:
    """A seed count (0..count-1) or a list of seeds; at most MAX_SEEDS of them, each in [0, MAX_SEED]."""
    if isinstance(seeds, bool):
        raise ConfigError(f"seeds must be a count > 0 or a list of integers, got {seeds!r}")
    if isinstance(seeds, int):
        if seeds <= 0:
            raise ConfigError(f"seeds must be a count > 0 or a list of integers, got {seeds!r}")
        check_at_most("seeds", seeds, MAX_SEEDS)
        return list(range(seeds))
    values = list(seeds) if isinstance(seeds, (list, tuple)) else None
    if not values or not all(isinstance(s, int) and not isinstance(s, bool) for s in values):
        raise ConfigError(f"seeds must be a count > 0 or a list of integers, got {seeds!r}")
    bad = next((s for s in values if not 0 <= s <= MAX_SEED), None)
    if bad is not None:
        raise ConfigError(f"seed {bad!r} is not allowed; allowed: 0 to {MAX_SEED:,}")
    check_at_most("the number of seeds", len(set(values)), MAX_SEEDS)
    return sorted(set(values))


def _transformer(model: nn.Module) -> bool:
    spec = str(getattr(model, "edgeprune_build", {}).get("spec", ""))
    return spec.startswith(("vit", "hf")) or any(isinstance(m, (nn.MultiheadAttention, nn.LayerNorm)) for m in model.modules())


def train_config(method: Method, model: nn.Module, finetune) -> TrainConfig | None:
    """The fine-tune (or, for methods that start from scratch, training) settings; None for no training.

    ``finetune``: None (the method's default epochs), 0/False (none), an epoch count, a dict of TrainConfig
    fields, or a TrainConfig. Defaults follow the model family; a fine-tune starts at a fifth of the
    training learning rate, without warm-up, and stops after 3 epochs without validation gain.
    """
    if isinstance(finetune, TrainConfig):
        return finetune
    if finetune is False or (isinstance(finetune, int) and not isinstance(finetune, bool) and finetune == 0):
        return None
    if finetune is None or finetune is True:
        fields: dict = {"epochs": method.finetune_epochs}
    elif isinstance(finetune, int):
        if finetune < 0:
            raise ConfigError(f"finetune must be an epoch count >= 0, a dict of training settings or a TrainConfig, got {finetune!r}")
        fields = {"epochs": finetune}
    elif isinstance(finetune, dict):
        fields = {"epochs": method.finetune_epochs, **finetune}
    else:
        raise ConfigError(f"finetune must be an epoch count >= 0, a dict of training settings or a TrainConfig, got {finetune!r}")
    base = default_config("vit" if _transformer(model) else "cnn")
    if not method.from_scratch:
        base = base.replace(lr=base.lr * 0.2, patience=3, warmup_epochs=0.0)
    return TrainConfig.build({**base.model_dump(), **fields})  # a None in ``fields`` (patience) is kept


def scratch_config(model: nn.Module, epochs: int) -> TrainConfig:
    """Training from scratch as the model family's defaults say, for ``epochs`` (the scratch baseline)."""
    return default_config("vit" if _transformer(model) else "cnn").replace(epochs=epochs)


def fingerprint(model: nn.Module) -> dict:
    """Identity of the input model for a run directory: its class or spec and a hash of its weights."""
    digest = hashlib.sha256()
    for key, value in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    spec = getattr(model, "edgeprune_build", {}).get("spec")
    return {"name": spec or type(model).__name__, "class": f"{type(model).__module__}.{type(model).__qualname__}",
            "weights_sha256": digest.hexdigest()[:16]}


def describe_data(data) -> dict:
    def size(part):
        if part is None:
            return None
        dataset = getattr(part, "dataset", part)
        return len(dataset) if hasattr(dataset, "__len__") else None

    return {"name": getattr(data, "name", "data"), "num_classes": data.num_classes,
            **({"task": data.task} if getattr(data, "task", None) else {}),
            **({} if getattr(data, "labelled", True) else {"labels": "the input model's predictions"}),
            "train": size(data.train), "val": size(data.val), "test": size(data.test)}

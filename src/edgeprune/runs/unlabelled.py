"""Data without labels: a user with a trained model and a few hundred images from the device, or none at all.

``data`` may be a tensor of inputs, a Dataset or DataLoader yielding inputs only (or 1-tuples, as a
``TensorDataset(x)`` does), or None: then inputs are synthesised from the model's batch-norm statistics
(:mod:`edgeprune.data.inversion`, DeepInversion). The input model labels them (its predictions: the task's
:meth:`~edgeprune.tasks.Task.targets_from`); a held-out fifth selects and stops fine-tuning early on agreement with
it (:mod:`edgeprune.tasks.agreement`). There is no test split: no truth to test against. With a labelled validation
set of the user's (``data=(inputs, val_loader[, test_loader])``) every input trains and the metrics are the truth's.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import numpy
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from edgeprune import tasks as tasks_lib
from edgeprune.data import Data, inversion, make_loader
from edgeprune.data.loaders import collated
from edgeprune.errors import ConfigError, DataError

MAX_INPUTS = 10_000  # more are not needed to calibrate, and all of them are held in memory
MIN_INPUTS = 10
SYNTHESISED = 1024  # inputs made when data is None
VAL_FRACTION = 0.2
BATCH = 64
SPEC = "unlabelled:"  # the shell's form: unlabelled:<file.pt or file.npy holding a float tensor [N, ...]>
DATA_FREE = "data-free"  # the shell's data=None


def _inputs_only(item) -> torch.Tensor | None:
    if isinstance(item, torch.Tensor):
        return item
    if isinstance(item, (tuple, list)) and len(item) == 1 and isinstance(item[0], torch.Tensor):
        return item[0]
    return None


def is_unlabelled(data) -> bool:
    """Whether ``data`` holds inputs without targets (or is None: no data at all), possibly followed by labelled
    validation (and test) data: ``(inputs, val[, test])``."""
    if data is None or isinstance(data, torch.Tensor):
        return True
    if isinstance(data, (tuple, list)) and len(data) in (2, 3):
        return data[0] is not None and is_unlabelled(data[0]) and not is_unlabelled(data[1])
    if isinstance(data, str):
        return data == DATA_FREE or data.startswith(SPEC)
    if isinstance(data, DataLoader):
        return _inputs_only(next(collated(make_loader(data, 1), "the data"), None)) is not None
    if isinstance(data, Dataset) and not isinstance(data, Data):
        try:
            return _inputs_only(data[0]) is not None
        except (IndexError, KeyError, TypeError, NotImplementedError):
            return False
    return False


def _from_file(spec: str) -> torch.Tensor:
    path = Path(spec[len(SPEC):]).expanduser()
    if path.suffix not in (".pt", ".npy"):
        raise ConfigError(f"data spec {spec!r}: the file must be .pt (a saved tensor) or .npy, got {path.name!r}")
    if not path.is_file():
        raise ConfigError(f"data spec {spec!r}: no file {str(path)!r}")
    try:
        x = torch.load(path, weights_only=True) if path.suffix == ".pt" else torch.from_numpy(numpy.load(path))
    except (OSError, ValueError, RuntimeError, pickle.UnpicklingError) as exc:
        raise DataError(f"data spec {spec!r}: cannot read {path.name} ({' '.join(str(exc).split())[:120]})") from None
    if not isinstance(x, torch.Tensor):
        raise DataError(f"data spec {spec!r}: {path.name} holds a {type(x).__name__}; expected one tensor [N, ...]")
    return x.float() if x.dtype == torch.float64 else x


def _gathered(data) -> torch.Tensor:
    """At most MAX_INPUTS inputs of a tensor, a saved tensor's file, a Dataset or a DataLoader as one tensor."""
    if isinstance(data, str):
        data = _from_file(data)
    if isinstance(data, torch.Tensor):
        x = data
    else:
        loader = data if isinstance(data, DataLoader) else DataLoader(data, batch_size=BATCH)
        parts, n = [], 0
        for batch in loader:
            part = _inputs_only(batch)
            if part is None:
                raise DataError(f"data without labels must yield input tensors only, got {type(batch).__name__}")
            parts.append(part)
            n += len(part)
            if n >= MAX_INPUTS:
                break
        x = torch.cat(parts) if parts else torch.zeros(0)
    if len(x) > MAX_INPUTS:
        warnings.warn(f"{len(x):,} inputs without labels given; the first {MAX_INPUTS:,} are used", UserWarning,
                      stacklevel=3)
        x = x[:MAX_INPUTS]
    if x.ndim < 2 or len(x) < MIN_INPUTS or not x.is_floating_point():
        raise DataError(f"data without labels must be at least {MIN_INPUTS} float inputs [N, ...], got "
                        f"{tuple(x.shape)} {x.dtype}")
    return x.detach().cpu()


def _input_shape(model: nn.Module, example_input) -> tuple[int, ...]:
    if isinstance(example_input, torch.Tensor):
        return tuple(example_input.shape[1:] if example_input.ndim >= 2 else example_input.shape)
    build = getattr(model, "edgeprune_build", None) or {}
    if isinstance(build.get("in_channels"), int) and isinstance(build.get("image_size"), int):
        return (build["in_channels"], build["image_size"], build["image_size"])
    raise ConfigError("data=None (data-free) needs the input shape: pass example_input= (one input of the model)")


@torch.no_grad()
def _labels(model: nn.Module, x: torch.Tensor, task: tasks_lib.Task):
    was_training = model.training
    model.eval()
    try:
        parts = [task.targets_from(model(x[i:i + BATCH]), x[i:i + BATCH]) for i in range(0, len(x), BATCH)]
    finally:
        model.train(was_training)
    return torch.cat(parts)


def labelled_by_model(model, data, task: tasks_lib.Task, example_input=None) -> tuple[Data, tasks_lib.Task]:
    """``data`` without labels (or None) as train and validation splits labelled by ``model``, and the task that scores
    agreement with it; ``(inputs, val[, test])``: the inputs labelled by ``model`` for training, the user's labelled
    splits for selection and test, and ``task`` itself."""
    if not isinstance(model, nn.Module):
        raise ConfigError("data without labels needs a trained model to label it (from Python: a torch.nn.Module; "
                          "from the shell: --checkpoint); a model spec builds an untrained one")
    held_out = tuple(data[1:]) if isinstance(data, (tuple, list)) else None
    data = data[0] if held_out else data
    if data is None or data == DATA_FREE:
        shape = _input_shape(model, example_input)
        x, source = inversion.synthesize(model, SYNTHESISED, shape, progress=True), "synthesised from batch norm"
    else:
        x, source = _gathered(data), "without labels"
    y = _labels(model, x, task)
    if held_out:  # the user's own labelled validation (and test) data: scored against the truth
        return Data(TensorDataset(x, y), *held_out, input_shape=tuple(x.shape[1:]),
                    name=f"{len(x)} training inputs {source}, labelled by the input model; labelled validation data",
                    task=None if task.name == "classification" else task.name, labelled=False), task
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    n_val = max(1, round(VAL_FRACTION * len(x)))
    val, train = order[:n_val], order[n_val:]
    named = f"{len(x)} inputs {source}, labelled by the input model"
    return Data(TensorDataset(x[train], y[train]), TensorDataset(x[val], y[val]), None, input_shape=tuple(x.shape[1:]),
                name=named, task=None if task.name == "classification" else task.name,
                labelled=False), tasks_lib.agreement(task)

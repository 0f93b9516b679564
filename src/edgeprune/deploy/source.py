"""What :func:`edgeprune.export` exports and on which data: a model in memory, a checkpoint, a sparse artifact or a
candidate of a run directory; a data set spec, a data bundle or the checkpoint's own data set."""

from __future__ import annotations

import copy
import os
from pathlib import Path

from torch import nn

from edgeprune import data as data_lib
from edgeprune import models
from edgeprune import tasks as tasks_lib
from edgeprune.deploy import task_metrics
from edgeprune.errors import CheckpointError, ConfigError, DataError, EdgepruneError, ModelError
from edgeprune.export import sparse
from edgeprune.runs.lock import check_not_running
from edgeprune.runs.store import RunStore

SOURCES = "an nn.Module, a Pruned result, a checkpoint (.pt), a sparse artifact (.epz) or a run directory"


def module_of(source) -> nn.Module | None:
    """The module ``source`` holds (itself, or a ``Pruned`` result's ``.model``); None for a path."""
    if isinstance(source, nn.Module):
        return models.unwrapped(source)
    held = getattr(source, "model", None)
    if isinstance(held, nn.Module) and not isinstance(source, (str, os.PathLike)):
        return held
    if not isinstance(source, (str, os.PathLike)):
        raise ConfigError(f"export takes {SOURCES}; got {type(source).__name__}")
    return None


def with_input_shape(model: nn.Module, input_shape, data, data_dir) -> nn.Module:
    """``model`` as export needs it: built by edgeprune (its build says one input's shape), or a model of the user's own
    class as a shallow copy whose build takes that shape from ``data`` (a spec, a bundle or loaders), else
    ``input_shape``; a one-line ModelError when neither is given."""
    if isinstance(getattr(model, "edgeprune_build", None), dict):
        return model
    if data is not None:
        input_shape = (data_lib.load(data, root=data_dir) if isinstance(data, str) else data_lib.resolve(data)).input_shape
    shape = _shape(input_shape, type(model).__name__)
    own = copy.copy(model)  # the build on a copy: the user's module is left as it was
    own.edgeprune_build = {"spec": None, "class": f"{type(model).__module__}.{type(model).__qualname__}",
                           "in_channels": shape[0], "image_size": shape[-1], "input_shape": list(shape)}
    return own


def _shape(value, name: str) -> tuple[int, ...]:
    if value is None:
        raise ModelError(f"{name} is a model of your own class: pass data= (its data set gives one input's shape) or "
                         "input_shape=(C, H, W)")
    shape = tuple(value) if isinstance(value, (tuple, list)) else ()
    if not shape or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
        raise ConfigError(f"input_shape must be one input's shape, positive integers such as (3, 224, 224), got {value!r}")
    return shape


def resolve_checkpoint(source: Path, candidate: str | None = None) -> tuple[Path, str | None]:
    """The model file named by ``source`` (a checkpoint/.epz file or a run directory) and the candidate id.

    In a run directory (``results.jsonl`` records with ``id`` and ``checkpoint`` relative to it),
    ``candidate`` picks a record; without it ``chosen.pt``, else the record marked ``"chosen": true``,
    else a ``model.pt`` (a ``train`` output folder) is used.
    """
    source = Path(source)
    if not source.exists():
        raise ConfigError(f"{str(source)!r} does not exist; pass a checkpoint (.pt), a sparse artifact (.epz) or a run directory")
    if source.is_file():
        if candidate is not None:
            raise ConfigError(f"--candidate {candidate!r} needs a run directory, but {str(source)!r} is a file")
        return source, None
    check_not_running(source, "export from")  # a sweep still writing it: its chosen model is not decided yet
    records = RunStore(source).records(repair=False) if (source / "results.jsonl").exists() else []
    if candidate is not None:
        if not records:
            raise ConfigError(f"--candidate {candidate!r}: {str(source)!r} has no results.jsonl records")
        match = next((r for r in records if str(r.get("id")) == str(candidate)), None)
        if match is None:
            ids = [str(r.get("id")) for r in records if r.get("checkpoint")]
            shown = ", ".join(ids[:5]) + (f", ... ({len(ids)} in all)" if len(ids) > 5 else "")
            raise ConfigError(f"unknown candidate {candidate!r} in {str(source)!r}; candidates with checkpoints: {shown or 'none'}")
        return _record_checkpoint(source, match), str(candidate)
    if (source / "chosen.pt").is_file():
        return source / "chosen.pt", "chosen"
    chosen = next((r for r in records if r.get("chosen") is True and r.get("checkpoint")), None)
    if chosen is not None:
        return _record_checkpoint(source, chosen), str(chosen.get("id"))
    if (source / "model.pt").is_file():
        return source / "model.pt", None
    ids = [str(r.get("id")) for r in records if r.get("checkpoint")][:5]
    raise ConfigError(
        f"{str(source)!r} has no chosen.pt, no record marked chosen and no model.pt; pass --candidate ID"
        + (f" (e.g. {', '.join(ids)})" if ids else "")
    )


def _record_checkpoint(run_dir: Path, record: dict) -> Path:
    rel = record.get("checkpoint")
    if not rel:
        raise ConfigError(f"candidate {record.get('id')!r} in {str(run_dir)!r} has no checkpoint (it was not saved)")
    path = run_dir / rel
    if not path.is_file():
        raise ConfigError(f"checkpoint {rel!r} of candidate {record.get('id')!r} is missing from {str(run_dir)!r}")
    return path


def is_sparse_artifact(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(len(sparse.MAGIC)) == sparse.MAGIC


def load_model(path: Path):
    """A model from an edgeprune checkpoint or a sparse artifact (chosen by the file's magic bytes)."""
    return sparse.load(path) if is_sparse_artifact(path) else models.load(path)


def _class_without_spec(path: Path) -> str | None:
    """The class name of a checkpoint's model of the user's own class (no spec to rebuild it from), else None."""
    try:
        build = models.load_meta(path)["build"]
    except EdgepruneError:  # damaged or not a checkpoint: the loader's own error says more
        return None
    return str(build.get("class") or "custom") if build.get("spec") is None else None


def load_for_export(path: Path, user_model: str | None, options: dict, dataset: str | None, data_dir):
    """The model to export: ``load_model``, or with ``user_model`` the checkpoint's weights and pruned shapes on a
    fresh instance built by that spec (a checkpoint of the user's own class has no spec to rebuild it from)."""
    if user_model is not None:
        return _load_onto_fresh_instance(path, user_model, options, dataset, data_dir)
    if options:
        raise ConfigError("--arg passes arguments to the --model factory; give --model too")
    if is_sparse_artifact(path):
        return sparse.load(path)
    try:
        return models.load(path)
    except CheckpointError:
        own_class = _class_without_spec(path)
        if own_class is None:
            raise
        raise ConfigError(
            f"checkpoint {str(path)!r} holds a model of your own class {own_class}; pass --model "
            f"path/to/file.py:factory (the file.py:factory spec that builds a fresh {own_class}, "
            "with --arg key=value for its arguments; model_spec= and model_args= from Python)"
        ) from None


def _load_onto_fresh_instance(path: Path, user_model: str, options: dict, dataset: str | None, data_dir):
    """``user_model`` built for the data set's sizes (``dataset``, else the checkpoint's), the checkpoint loaded onto it."""
    if is_sparse_artifact(path):
        raise ConfigError(f"--model rebuilds an edgeprune checkpoint (.pt); {str(path)!r} is not one")
    name = dataset or models.load_meta(path).get("dataset")
    if not name:
        raise ConfigError(f"--model {user_model!r} needs the input size and classes of {str(path)!r}: pass --dataset "
                          "(the data set it was pruned on)")
    splits = data_lib.load(name, root=data_dir)
    fresh = models.create(user_model, num_classes=splits.num_classes, in_channels=splits.in_channels,
                          image_size=splits.image_size, **options)
    return models.load(path, model=fresh)


def dataset_for(model, data, data_dir, holder: str, wanted: tasks_lib.Task | None) -> tuple[object | None, str, tasks_lib.Task]:
    """(splits or None, note, task): ``data`` (a spec, a data bundle or loaders), else the checkpoint's own data set,
    else none (random inputs); the task ``wanted``, else the data's own; the data checked against the model for it."""
    recorded = (getattr(model, "edgeprune_meta", None) or {}).get("dataset")
    name = data if isinstance(data, str) else recorded
    if data is None and not recorded:
        return None, "random normal inputs (no --dataset and none recorded in the checkpoint)", tasks_lib.get(wanted)
    if data is None or isinstance(data, str):
        try:
            splits = data_lib.load(name, root=data_dir)
        except DataError as exc:
            if data is not None:
                raise
            return None, f"random normal inputs (the checkpoint's data set {name!r} could not be loaded: {exc})", \
                tasks_lib.get(wanted)
    else:
        splits = data_lib.resolve(data)
        name = splits.name
    if splits.test is None:
        raise ConfigError(f"data {splits.name!r} has no test split; export measures on it: pass (train, val, test)")
    task = tasks_lib.get(wanted, splits)
    task_metrics.check_fits(model, splits, name, holder, task)
    return splits, f"{splits.name} test split", task

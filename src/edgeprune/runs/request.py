"""One prune or sweep call with every input resolved and checked, once: the method and its options, the
budgets, the seeds, the schedule, the task, the data, the model (it takes the data), the fine-tune.

:func:`resolve_request` is the one place these checks run, for ``edgeprune.prune``, ``edgeprune.sweep`` and
the CLI (which hands its flags to the API as they are); what it returns is not checked again."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgeprune import data as data_lib
from edgeprune import tasks as tasks_lib
from edgeprune.data.splits import QUICK_LIMIT, QUICK_TEST_LIMIT
from edgeprune.methods.base import Method, get_method
from edgeprune.prune.gradual import Schedule, schedule_of
from edgeprune.runs import inputs as inputs_lib
from edgeprune.runs import unlabelled
from edgeprune.runs.sweep import quick_method
from edgeprune.train import TrainConfig, quick_config


@dataclass
class Request:
    """Everything a prune or a sweep needs, checked: what :func:`resolve_request` returns."""

    method: Method
    inputs: inputs_lib.Inputs
    budgets: list
    seeds: list[int]
    train: TrainConfig | None
    kd: bool
    schedule: Schedule
    quick: bool = False


def resolve_request(model, data, method: str, options: dict, *, budgets=None, seeds=1, task=None, finetune=None,
                    kd: bool | None = None, schedule=None, example_input=None, quick: bool = False,
                    model_args: dict | None = None, data_dir=None, checkpoint=None) -> Request:
    """Check every input before any work (one-line errors naming the value and what is allowed).

    ``quick``: the method's calibration capped, a data set spec cut to QUICK_LIMIT train+val and QUICK_TEST_LIMIT
    test images (stratified, seeded), the fine-tune to a few batches per epoch; data the caller built is used as
    it is. ``task``: a preset name, a Task or file.py:factory; None: the data's own, else classification.
    ``checkpoint``: a trained checkpoint of the spec ``model``, checked against it and the data and used instead."""
    plan = schedule_of(schedule)
    wanted = None if task is None else tasks_lib.get(task)  # a bad task is refused before any data is loaded
    m = get_method(method, **options)
    m = quick_method(m) if quick else m
    budget_list, seed_list = inputs_lib.budgets_of(m, budgets), inputs_lib.seeds_of(seeds)
    if quick and isinstance(data, str):
        data = data_lib.load(data, root=data_dir, limit=QUICK_LIMIT, test_limit=QUICK_TEST_LIMIT)
    if checkpoint is not None:
        splits = None if unlabelled.is_unlabelled(data) else data_lib.resolve(data, root=data_dir)
        model = inputs_lib.checkpoint_model(model, Path(checkpoint), splits)
        data = data if splits is None else splits
    inputs = inputs_lib.resolve(model, data, task=wanted, example_input=example_input, model_args=model_args,
                                data_dir=data_dir)
    with tasks_lib.using(inputs.task):
        m.check(inputs.model, inputs.example)
        train = inputs_lib.train_config(m, inputs.model, finetune)
    train = quick_config(train) if quick and train is not None else train
    if train is not None:
        inputs_lib.check_epoch_length(inputs.data.train, train)
    distil = (m.kd or not inputs.data.labelled) if kd is None else bool(kd)  # without labels: the teacher's outputs
    return Request(m, inputs, budget_list, seed_list, train, distil, plan, quick)

"""The zoo contract through the public API: what users call is what is tested.

    outcomes = check_api(model, torch.zeros(1, 3, 32, 32))       # [Outcome] of edgeprune.prune per method

One stage per registered method (:data:`API_STAGES`): ``edgeprune.prune(model, data, method=...)`` with
the method's default options and default budget, on a few batches of random images of the example's shape
(:func:`tiny_data`), each ending in pass, a one-line refusal or ``n/a`` as the stage-level contract of
:mod:`edgeprune.runs.contract` does. A pass means the call returned a model that runs, whose output has the
input model's logits shape, with a record of status ``ok``. A stage-level pass once hid a crash of the
default call on MobileNetV3: the optional parts the default call adds (baselines, every criterion) run here.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from edgeprune import api
from edgeprune import tasks as tasks_lib
from edgeprune.errors import EdgepruneError
from edgeprune.runs import contract

# stage -> (method, options other than its defaults)
API_METHODS = {
    "prune:mix_and_match": ("mix_and_match", {}),
    "prune:structured": ("structured", {}),
    # a latency budget: its latency table (one-layer files timed, fitted), ten strategies and latency_aware confirmed
    "prune:structured_latency": ("structured", {"budget": "latency<=85%", "finetune": 0, "deploy_metrics": False}),
    "prune:vbp": ("vbp", {}),
    "prune:reconvene": ("reconvene", {}),
    "prune:magnitude": ("magnitude", {}),
    "prune:snip": ("snip", {}),
    "prune:grasp": ("grasp", {}),
    "prune:random": ("random", {}),
}
API_STAGES = tuple(API_METHODS)
API_TIMEOUT = 240.0  # seconds of CPU time: the default call trains every candidate (33 for Mix-and-Match)
NOT_APPLICABLE = ("has no MLP block", "has no convolution layer")  # the method's one-line refusal of this kind of model


def _boxes(n: int, size: tuple, classes: int, gen: torch.Generator) -> list[dict]:
    """One random box per image, at least a quarter of the image wide and high, labels in 1..classes-1."""
    h, w = size
    lo = torch.rand(n, 2, generator=gen) * torch.tensor([w, h]) * 0.5
    hi = lo + (0.25 + 0.25 * torch.rand(n, 2, generator=gen)) * torch.tensor([w, h])
    labels = torch.randint(1, max(classes, 2), (n,), generator=gen)
    return [{"boxes": torch.cat([lo[i], hi[i]]).view(1, 4), "labels": labels[i:i + 1]} for i in range(n)]


def _stack(items):
    return torch.stack([x for x, _ in items]), [y for _, y in items]


def tiny_data(example: torch.Tensor, classes: int, *, task: tasks_lib.Task | None = None, batch: int = 8,
              seed: int = 0, target_shape: tuple | None = None) -> tuple[DataLoader, ...]:
    """(train, val, test) DataLoaders of random images of the example's shape (2, 1 and 1 batches) with random
    targets of the task (the current one by default): class labels, per-pixel masks, one box per image, or
    float targets of ``target_shape``."""
    task = task or tasks_lib.current()
    gen = torch.Generator().manual_seed(seed)

    def split(n: int):
        x = torch.randn(n, *example.shape[1:], generator=gen)
        if isinstance(task, tasks_lib.Segmentation):
            return TensorDataset(x, torch.randint(0, classes, (n, *example.shape[-2:]), generator=gen))
        if isinstance(task, tasks_lib.Regression):
            return TensorDataset(x, torch.randn(n, *(target_shape or (1,)), generator=gen))
        if task.name == "detection":
            return list(zip(x, _boxes(n, tuple(example.shape[-2:]), classes, gen)))
        return TensorDataset(x, torch.randint(0, classes, (n,), generator=gen))

    def loader(n: int, **options) -> DataLoader:
        data = split(n)
        return DataLoader(data, batch, collate_fn=_stack if isinstance(data, list) else None, **options)

    return (loader(2 * batch, shuffle=True, generator=torch.Generator().manual_seed(seed)), loader(batch), loader(batch))


def classes_of(model: nn.Module, shape: tuple) -> int:
    """The class count a stage's random targets use: a classifier's logits width, a segmenter's output
    channels, else the count the model was built with."""
    task = tasks_lib.current()
    if isinstance(task, tasks_lib.Classification):
        return int(shape[1])
    if isinstance(task, tasks_lib.Segmentation):
        return int(shape[0][1])
    return int(getattr(model, "edgeprune_build", {}).get("num_classes") or 2)


def _stage(method: str, options: dict):
    def run(model: nn.Module, example: torch.Tensor, shape: tuple) -> str:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # left-out parts warn; the note counts the candidates that ran
            try:
                task = tasks_lib.current()
                data = tiny_data(example, classes_of(model, shape), target_shape=shape[0][1:] if shape and isinstance(shape[0], tuple) else None)
                pruned = api.prune(model, data, method=method, task=task, **options)
            except EdgepruneError as exc:
                if any(s in str(exc) for s in NOT_APPLICABLE):
                    raise contract.NotApplicable(str(exc)) from None
                raise
        if pruned.record.get("status") != "ok":
            raise AssertionError(f"{method}: record status {pruned.record.get('status')!r}")
        contract.check_runs(pruned.model, example, shape, method)
        ok = sum(c.get("status") == "ok" for c in pruned.candidates)
        return (f"{ok}/{len(pruned.candidates)} candidates, params {pruned.dense['params']} -> "
                f"{pruned.record['params']}, budget {pruned.record.get('budget_achieved', float('nan')):.3g}")

    return run


for _name, (_method, _options) in API_METHODS.items():
    contract.register_stage(_name, _stage(_method, _options))


def check_api(model: nn.Module, example: torch.Tensor, stages=API_STAGES, *, timeout: float = API_TIMEOUT, task=None):
    """Every public-API stage of ``stages`` on ``model`` (never modified), under ``task`` (default: classification)."""
    with tasks_lib.using(tasks_lib.get(task)):
        return [contract.run_stage(s, model, example, timeout=timeout) for s in stages]


# the task contract: what every segmentation / detection / regression model goes through (stage level: roles,
# Mix-and-Match masks at 50 %, 30 % of the channels removed, VBP where there is an MLP, ONNX, ExecuTorch, OpenVINO and LiteRT parity);
# the public-API stages above take task= too (check_api(..., task=)), at a default call's cost
TASK_STAGES = ("roles", "mam50", "structured30", "vbp30", "onnx", "executorch", "openvino", "litert")

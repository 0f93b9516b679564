"""The zoo contract through the public API: what users call is what is tested.

    outcomes = check_api(model, torch.zeros(1, 3, 32, 32))       # [Outcome] of edgeprune.prune per method

One stage per method and granularity (:data:`API_STAGES`): ``edgeprune.prune(model, data, method=...)`` with
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
from edgeprune.errors import EdgepruneError
from edgeprune.runs import contract

# stage -> (method, options other than the defaults: only the granularity)
API_METHODS = {
    "prune:mix_and_match": ("mix_and_match", {}),
    "prune:mix_and_match:channel": ("mix_and_match", {"granularity": "channel"}),
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


def tiny_data(example: torch.Tensor, classes: int, *, batch: int = 8, seed: int = 0) -> tuple[DataLoader, ...]:
    """(train, val, test) DataLoaders of random images of the example's shape: 2, 1 and 1 batches."""
    gen = torch.Generator().manual_seed(seed)

    def split(n: int) -> TensorDataset:
        return TensorDataset(torch.randn(n, *example.shape[1:], generator=gen), torch.randint(0, classes, (n,), generator=gen))

    return (DataLoader(split(2 * batch), batch, shuffle=True, generator=torch.Generator().manual_seed(seed)),
            DataLoader(split(batch), batch), DataLoader(split(batch), batch))


def _stage(method: str, options: dict):
    def run(model: nn.Module, example: torch.Tensor, shape: tuple) -> str:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # left-out parts warn; the note counts the candidates that ran
            try:
                pruned = api.prune(model, tiny_data(example, shape[1]), method=method, **options)
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


def check_api(model: nn.Module, example: torch.Tensor, stages=API_STAGES, *, timeout: float = API_TIMEOUT):
    """Every public-API stage of ``stages`` on ``model`` (never modified)."""
    return [contract.run_stage(s, model, example, timeout=timeout) for s in stages]

"""A sweep: every candidate of a method over budgets × seeds in one run directory, resumable.

Layout of RUN_DIR: ``config.json`` (what made it: a different configuration is refused), ``plan.json``
(``edgeprune status``), ``results.jsonl`` (one record per finished candidate, the input model's first),
``candidates/ID.pt``, ``input.pt`` (the input model, unless `edgeprune prune` trained it into
``dense/model.pt``), and the report files of :mod:`edgeprune.runs.report`. The directory is locked while
a sweep writes it; running the same sweep again skips every finished candidate, also after ``kill -9``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from edgeprune import models as model_lib
from edgeprune.errors import ConfigError
from edgeprune.measure.budget import Budget
from edgeprune.methods.base import Method
from edgeprune.prune.gradual import Schedule
from edgeprune.runs import status
from edgeprune.runs.edge import INPUT
from edgeprune.runs.executor import make_executor
from edgeprune.runs.inputs import Inputs, describe_data, fingerprint
from edgeprune.runs.job import Job, dense_record
from edgeprune.runs.lock import RunLock, check_not_running
from edgeprune.runs.report import render
from edgeprune.runs.store import RunStore
from edgeprune.train import TrainConfig
from edgeprune.utils.io import read_json

FORMAT = "edgeprune-run"


@dataclass
class SweepResult:
    run_dir: Path
    records: list[dict]
    front: list[dict]
    chosen: dict | None  # the chosen candidate's record (its model: run_dir / "chosen.pt")
    summary: dict


def sweep_identity(method: Method, budgets, seeds, train: TrainConfig | None, kd: bool,
                   schedule: Schedule | None = None) -> dict:
    """What identifies a sweep apart from its model and data (known before the input model is trained)."""
    return {
        "format": FORMAT, "method": method.name, "options": json.loads(method.options.model_dump_json()),
        "budgets": [str(b) if isinstance(b, Budget) else b for b in budgets], "seeds": seeds,
        "finetune": train.model_dump() if train else None, "kd": kd, "schedule": (schedule or Schedule()).model_dump(),
    }


def run_config(method: Method, inputs: Inputs, budgets, seeds, train: TrainConfig | None, kd: bool,
               schedule: Schedule | None = None) -> dict:
    return {**sweep_identity(method, budgets, seeds, train, kd, schedule),
            "model": fingerprint(inputs.model), "data": describe_data(inputs.data)}


def check_run_dir(out: Path, config: dict) -> None:
    """Refuse, before anything is written, a folder that is a file or a run of another method/configuration."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is a file, not a run directory")
    # ... or below a file, or held by a live sweep; a damaged config.json is one line naming its line
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"--out {str(out)!r} cannot be created: {str(parent)!r} is a file")
            break
    check_not_running(out, "sweep into")
    path = out / "config.json"
    if not path.exists():
        return
    old = read_json(path, "run config")
    if old.get("format") != FORMAT:
        raise ConfigError(f"{str(out)!r} is a run directory of another command (edgeprune search/vbp/pai); use another --out")
    if old.get("method") != config["method"]:
        raise ConfigError(f"{str(out)!r} is a run directory of method {old.get('method')!r}, not "
                          f"{config['method']!r}; use another --out")
    for key in config:
        if old.get(key) != config[key]:
            raise ConfigError(f"run directory {str(out)!r} was made by a different configuration ({key}: "
                              f"{old.get(key)!r} there, {config[key]!r} now); use another --out or delete it")


def run_sweep(method: Method, inputs: Inputs, budgets: list[float], seeds: list[int], out, *,
              train: TrainConfig | None, kd: bool, executor="local", progress: bool = True,
              schedule: Schedule | None = None, edge_report: bool = False) -> SweepResult:
    out = Path(out)
    schedule = schedule or Schedule()
    config = run_config(method, inputs, budgets, seeds, train, kd, schedule)
    check_run_dir(out, config)
    runner = make_executor(executor) if isinstance(executor, str) else executor
    own = isinstance(executor, str)
    try:
        # the method's own refusals (a model it cannot prune, options that do not fit it) come before any write
        state = method.prepare(inputs.model, inputs.data, inputs.example)
        plan = method.candidates(state, budgets, seeds)
        with RunLock(out) as lock:
            lock.sweep_temp_files()
            store = RunStore(out).open(config)
            status.start_session(out, executor=getattr(runner, "name", type(runner).__name__))
            status.write_plan(out, "dense", ["dense"])
            if "dense" not in store.finished_ids():
                store.append(dense_record(inputs.model, inputs.data, inputs.example))
            if not (out / INPUT).is_file() and not (out / "dense" / "model.pt").is_file():
                model_lib.save(inputs.model, out / INPUT, meta={"record_id": "dense"})  # the report's --edge
            status.write_plan(out, "candidate", [c.id for c in plan])
            job = Job(method, state, inputs.model, inputs.data, train, kd, inputs.example, store, schedule)
            runner.run(job, plan, progress=progress, title=method.name)
            summary = render(out, edge=edge_report)
    finally:
        if own:
            runner.close()
    records = RunStore(out).records()
    return SweepResult(out, records, summary["front"], summary["chosen"], summary)


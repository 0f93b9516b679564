"""A sweep: every candidate of a method over budgets × seeds in one run directory, resumable.

Layout of RUN_DIR: ``config.json`` (what made it: a different configuration is refused), ``plan.json``
(``edgeprune status``), ``results.jsonl`` (one record per finished candidate, the input model's first),
``candidates/ID.pt``, ``input.pt`` (the input model, unless `edgeprune prune` trained it into
``dense/model.pt``), and the report files of :mod:`edgeprune.runs.report`. The directory is locked while
a sweep writes it; running the same sweep again skips every finished candidate, also after ``kill -9``.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from edgeprune import models as model_lib
from edgeprune import tasks as tasks_lib
from edgeprune.data.splits import QUICK_LIMIT, QUICK_TEST_LIMIT
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
from edgeprune.train import QUICK_MAX_BATCHES, TrainConfig, batches_per_epoch, duration_text, fit, log_line
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
                   schedule: Schedule | None = None, quick: bool = False) -> dict:
    """What identifies a sweep apart from its model and data (known before the input model is trained).
    ``quick`` is recorded only when set, so run directories of earlier releases keep their identity."""
    return {
        "format": FORMAT, "method": method.name, "options": json.loads(method.options.model_dump_json()),
        "budgets": [str(b) if isinstance(b, Budget) else b for b in budgets], "seeds": seeds,
        "finetune": train.model_dump() if train else None, "kd": kd, "schedule": (schedule or Schedule()).model_dump(),
        **({"quick": True} if quick else {}),
    }


def run_config(method: Method, inputs: Inputs, budgets, seeds, train: TrainConfig | None, kd: bool,
               schedule: Schedule | None = None, quick: bool = False) -> dict:
    return {**sweep_identity(method, budgets, seeds, train, kd, schedule, quick),
            "model": fingerprint(inputs.model), "data": describe_data(inputs.data),
            **({"task": inputs.task.name} if not isinstance(inputs.task, tasks_lib.Classification) else {})}


# -- quick runs ----------------------------------------------------------------------------------------
QUICK_CALIB_BATCHES = 2  # calibration batches of a method's scores / statistics in a quick run
QUICK_LATENCY_RUNS = 5  # ONNX Runtime runs per latency measurement in a quick run
QUICK_NOTE = (f"quick run: at most {QUICK_LIMIT:,} training and {QUICK_TEST_LIMIT:,} test images (stratified by "
              f"class, seeded), at most "
              f"{QUICK_MAX_BATCHES} batches per epoch, {QUICK_CALIB_BATCHES} calibration batches — to see a command "
              "through, not to measure: its figures are not the real ones")


def quick_method(method: Method) -> Method:
    """``method`` with its calibration batches and latency runs capped for a quick run (where it has them)."""
    options = method.options.model_dump()
    if "calib_batches" in options:  # 0 means "one full pass" for some methods
        options["calib_batches"] = min(options["calib_batches"] or QUICK_CALIB_BATCHES, QUICK_CALIB_BATCHES)
    if "latency_runs" in options:
        options["latency_runs"] = min(options["latency_runs"], QUICK_LATENCY_RUNS)
    return type(method)(**options)


# -- the plan printed (and kept in plan.json) before the first candidate is trained --------------------
def timed_stage(model: torch.nn.Module, data, train: TrainConfig | None, teacher=None) -> dict:
    """Seconds of one real training step (the mean of a 3-batch fit, its set-up included, so a loaded machine
    errs on the long side) and of one evaluation pass over the validation split, from ``model`` (a copy is
    trained; the global RNG is left as it was)."""
    started = time.perf_counter()
    tasks_lib.current().primary(model, data.val, train.eval_batch_size if train else 512)
    eval_seconds = time.perf_counter() - started
    if train is None:
        return {"step_seconds": 0.0, "eval_seconds": eval_seconds}
    with torch.random.fork_rng():
        started = time.perf_counter()
        fit(copy.deepcopy(model), data.train, data.val, train.replace(epochs=1, max_batches=3, patience=None),
            teacher=teacher, progress=False)
    return {"step_seconds": max(time.perf_counter() - started - eval_seconds, 0.0) / 3, "eval_seconds": eval_seconds}


def _size(part) -> int | None:
    dataset = getattr(part, "dataset", part)
    return len(dataset) if part is not None and hasattr(dataset, "__len__") else None


def stage_plan(model: torch.nn.Module, data, train: TrainConfig | None, teacher=None) -> dict | None:
    """Epochs, batches per epoch and the estimated seconds of one training run of ``model`` on ``data``
    (measuring it afterwards included); None for no training."""
    timing = timed_stage(model, data, train, teacher)
    val, test = _size(data.val) or 1, _size(data.test) or 0
    measure = timing["eval_seconds"] * (1 + test / val)  # the final validation and test passes
    if train is None:
        return {"epochs": 0, "batches_per_epoch": 0, "batch_size": None, **timing, "seconds": measure}
    batches = batches_per_epoch(data.train, train)
    seconds = train.epochs * (batches * timing["step_seconds"] + timing["eval_seconds"]) + measure
    return {"epochs": train.epochs, "batches_per_epoch": batches, "batch_size": train.batch_size, **timing,
            "seconds": seconds}


def settings_of(candidates) -> dict[str, list]:
    """The values each setting of the method takes over ``candidates`` (criterion, strategy, baseline...)."""
    values: dict[str, list] = {}
    for cand in candidates:
        for key, value in cand.setting.items():
            if isinstance(value, (str, int, float)) and value not in values.setdefault(key, []):
                values[key].append(value)
    return values


def make_plan(method: Method, inputs: Inputs, budgets, seeds, candidates, train: TrainConfig | None, kd: bool, *,
              dense: dict | None = None, quick: bool = False) -> dict:
    """What a sweep will do and about how long it will take (JSON-able; ``plan.json`` ``details``)."""
    finetune = stage_plan(inputs.model, inputs.data, train, inputs.model if kd else None)
    estimate = len(candidates) * finetune["seconds"] + (dense["seconds"] if dense else 0.0)
    name = getattr(inputs.model, "edgeprune_build", {}).get("spec") or type(inputs.model).__name__
    return {"method": method.name, "model": name,
            "data": getattr(inputs.data, "name", "data"), "candidates": len(candidates),
            # a default budget the model cannot reach was lowered by the method: its candidates say to what
            "budgets": list(dict.fromkeys(str(c.budget) for c in candidates)) or [str(b) for b in budgets],
            "seeds": list(seeds),
            "settings": settings_of(candidates), "from_scratch": method.from_scratch,
            "finetune": finetune if train is not None else None, "dense": dense,
            "estimate_seconds": estimate, "quick": quick, "made": time.time()}


def _count(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _stage_text(stage: dict) -> str:
    return (f"{_count(stage['epochs'], 'epoch')} × {_count(stage['batches_per_epoch'], 'batch')}"
            .replace("batchs", "batches") + f" of {stage['batch_size']}")


def plan_lines(plan: dict) -> list[str]:
    """The plan as a few plain lines (``edgeprune prune``, ``--dry-run``, ``edgeprune status``)."""
    budgets, seeds, n = len(plan["budgets"]), len(plan["seeds"]), plan["candidates"]
    per = n // max(budgets * seeds, 1)
    lines = [f"plan: {plan['method']} — {plan['model']} on {plan['data']}: {_count(n, 'candidate')} "
             f"({_count(budgets, 'budget')} × {_count(seeds, 'seed')} × {_count(per, 'setting')})"]
    if plan["settings"]:
        lines.append("  settings: " + "; ".join(f"{k}: {', '.join(map(str, v))}" for k, v in plan["settings"].items()))
    if plan.get("dense"):
        lines.append(f"  dense training: {_stage_text(plan['dense'])} (the input model, first)")
    what = "training from scratch" if plan.get("from_scratch") else "fine-tune"
    lines.append(f"  {what}: {_stage_text(plan['finetune'])} per candidate" if plan.get("finetune")
                 else f"  {what}: none")
    lines.append(estimate_line(plan))
    if plan.get("quick"):
        lines.append(f"  {QUICK_NOTE}")
    return lines


def estimate_line(plan: dict) -> str:
    stage = plan.get("finetune") or plan.get("dense") or {}
    return (f"  estimate: about {duration_text(plan['estimate_seconds'])} in total — an estimate, extrapolated from "
            f"one timed training batch ({1000 * stage.get('step_seconds', 0):.0f} ms) and one evaluation pass "
            f"({1000 * stage.get('eval_seconds', 0):.0f} ms) on this machine")


def print_plan(plan: dict) -> None:
    for line in plan_lines(plan):
        log_line(line)


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
    if bool(old.get("quick")) != bool(config.get("quick")):
        made, now = ("a quick run", "a full one") if old.get("quick") else ("a full run", "a quick one")
        raise ConfigError(f"run directory {str(out)!r} holds {made}, this is {now} (--quick); their figures must "
                          "not mix: use another --out")
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
              schedule: Schedule | None = None, edge_report: bool | str = False, quick: bool = False,
              dry_run: bool = False) -> SweepResult | dict:
    """Run (or resume) the sweep; print its plan first when ``progress``. ``dry_run``: print the plan and
    return it (a dict) without training or writing anything."""
    out = Path(out)
    schedule = schedule or Schedule()
    config = run_config(method, inputs, budgets, seeds, train, kd, schedule, quick)
    check_run_dir(out, config)
    runner = make_executor(executor) if isinstance(executor, str) else executor
    own = isinstance(executor, str)
    try:
        # the method's own refusals (a model it cannot prune, options that do not fit it) come before any write
        state = method.prepare(inputs.model, inputs.data, inputs.example)
        plan = method.candidates(state, budgets, seeds)
        details = make_plan(method, inputs, budgets, seeds, plan, train, kd, quick=quick)
        if progress or dry_run:
            print_plan(details)
        if dry_run:
            return {**details, "dry_run": True}
        with RunLock(out) as lock:
            lock.sweep_temp_files()
            store = RunStore(out).open(config)
            status.start_session(out, executor=getattr(runner, "name", type(runner).__name__), details=details)
            status.write_plan(out, "dense", ["dense"])
            if "dense" not in store.finished_ids():
                store.append(dense_record(inputs.model, inputs.data, inputs.example, inputs.task))
            if not (out / INPUT).is_file() and not (out / "dense" / "model.pt").is_file():
                model_lib.save(inputs.model, out / INPUT, meta={"record_id": "dense"})  # the report's --edge
            status.write_plan(out, "candidate", [c.id for c in plan])
            job = Job(method, state, inputs.model, inputs.data, train, kd, inputs.example, store, schedule, inputs.task)
            runner.run(job, plan, progress=progress, title=method.name)
            device = edge_report if isinstance(edge_report, str) and edge_report != "host" else None
            summary = render(out, edge=bool(edge_report), device=device)
    finally:
        if own:
            runner.close()
    records = RunStore(out).records()
    return SweepResult(out, records, summary["front"], summary["chosen"], summary)


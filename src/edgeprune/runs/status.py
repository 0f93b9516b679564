"""Progress of a run directory: planned vs finished vs failed per kind, elapsed time, who holds the lock.

RUN_DIR/plan.json is written (atomically) whenever a plan is made::

    {"created": <first start, unix s>, "session_started": <latest start>, "executor": "ray",
     "kinds": {"dense": {"ids": ["dense"]},
               "mam": {"ids": [...]},
               "baseline": {"ids": null, "expected": 4}}}   # planned once Mix-and-Match has finished

``expected`` is what a kind will plan before its ids are known. ``details`` (optional; absent in run
directories of earlier releases) is the plan printed before the first candidate: method, candidate count,
settings, epochs and batches per epoch, and the estimated seconds (:func:`edgeprune.runs.sweep.make_plan`).
:func:`run_status` combines plan.json, results.jsonl and the lock; ``edgeprune status RUN_DIR`` prints it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from edgeprune.errors import DamagedFileError
from edgeprune.runs.lock import lock_state
from edgeprune.runs.store import RunStore
from edgeprune.utils.io import read_json, write_json

PLAN_NAME = "plan.json"
KINDS = ("dense", "mam", "baseline")


def read_plan(run_dir: str | os.PathLike) -> dict:
    path = Path(run_dir) / PLAN_NAME
    if not path.exists():
        return {"kinds": {}}
    plan = read_json(path, "run plan")
    if not isinstance(plan.setdefault("kinds", {}), dict) or not all(_plan_entry_ok(k) for k in plan["kinds"].values()):
        raise DamagedFileError(f"run plan {str(path)!r} is damaged: 'kinds' must map each kind to "
                               "{'ids': [names] or null, 'expected': a count or null} (was it edited?)")
    if plan.get("details") is not None and not isinstance(plan["details"], dict):
        raise DamagedFileError(f"run plan {str(path)!r} is damaged: 'details' must be a mapping (was it edited?)")
    for key in ("created", "session_started"):
        if plan.get(key) is not None and (not isinstance(plan[key], (int, float)) or isinstance(plan[key], bool)):
            raise DamagedFileError(f"run plan {str(path)!r} is damaged: {key}={plan[key]!r} is not a time in seconds")
    return plan


def _plan_entry_ok(entry) -> bool:
    if not isinstance(entry, dict):
        return False
    ids, expected = entry.get("ids"), entry.get("expected")
    return (ids is None or (isinstance(ids, list) and all(isinstance(i, str) for i in ids))) and (
        expected is None or (isinstance(expected, int) and not isinstance(expected, bool)))


def start_session(run_dir: str | os.PathLike, **facts) -> dict:
    """Record that a search (re)starts now; keeps the first start time across resumes."""
    plan = read_plan(run_dir)
    now = time.time()
    plan.setdefault("created", now)
    plan.update(session_started=now, **facts)
    write_json(Path(run_dir) / PLAN_NAME, plan, sealed=True)
    return plan


def write_plan(run_dir: str | os.PathLike, kind: str, ids: list[str] | None, expected: int | None = None) -> dict:
    """Record the candidate ids planned for ``kind`` (or only how many are expected, with ids=None)."""
    plan = read_plan(run_dir)
    plan.setdefault("created", time.time())
    entry = {"ids": list(ids) if ids is not None else None}
    entry["expected"] = len(ids) if ids is not None else expected
    plan["kinds"][kind] = entry
    write_json(Path(run_dir) / PLAN_NAME, plan, sealed=True)
    return plan


def run_status(run_dir: str | os.PathLike) -> dict:
    """Counts per kind (planned, finished, ok, failed, pending), elapsed seconds and the lock state."""
    store = RunStore(run_dir)
    store.config()  # ConfigError if this is not a run directory
    plan = read_plan(run_dir)
    records = store.records(repair=False)
    by_id = {r["id"]: r for r in records}
    kinds = {}
    for kind in sorted(set(KINDS) | set(plan["kinds"]) | {r.get("kind", "?") for r in records}, key=_kind_order):
        entry = plan["kinds"].get(kind)
        done = [r for r in records if r.get("kind") == kind]
        ids = entry.get("ids") if entry else None
        planned = len(ids) if ids is not None else (entry or {}).get("expected")
        if planned is None and not done:
            continue
        finished = [by_id[i] for i in ids if i in by_id] if ids is not None else done
        failed = sum(r.get("status") == "failed" for r in finished)
        kinds[kind] = {
            "planned": planned,
            "planned_known": ids is not None,
            "finished": len(finished),
            "ok": len(finished) - failed,
            "failed": failed,
            "pending": None if planned is None else max(planned - len(finished), 0),
        }
    state, info = lock_state(run_dir)
    last = store.results_path.stat().st_mtime if store.results_path.exists() else None
    created = plan.get("created")
    end = time.time() if state == "live" else (last or created)
    return {
        "run_dir": str(run_dir),
        "kinds": kinds,
        "lock": {"state": state, "pid": info.pid if info else None, "host": info.host if info else None,
                 "command": info.command if info else None},
        "created": created,
        "session_started": plan.get("session_started"),
        "elapsed_seconds": (end - created) if created and end else None,
        "last_record_age_seconds": (time.time() - last) if last else None,
        "candidate_seconds": sum(float(r["seconds"]) for r in records
                                 if isinstance(r.get("seconds"), (int, float)) and not isinstance(r["seconds"], bool)),
        "executor": plan.get("executor"),
        "complete": bool(kinds) and all(k["planned_known"] and k["pending"] == 0 for k in kinds.values()),
        "plan": plan.get("details"),
        **progress_of(kinds, records, plan, state),
    }


def progress_of(kinds: dict, records: list[dict], plan: dict, lock: str) -> dict:
    """Candidates done / planned and the ETA: the pending ones at the mean time of the finished ones (before
    any has finished: what is left of the plan's estimate for this session)."""
    planned = [k for name, k in kinds.items() if name != "dense" and k["planned"] is not None]
    total = sum(k["planned"] for k in planned) if planned else None
    done = sum(k["finished"] for name, k in kinds.items() if name != "dense")
    spent = [float(r["seconds"]) for r in records if r.get("kind") != "dense"
             and isinstance(r.get("seconds"), (int, float)) and not isinstance(r["seconds"], bool)]
    pending = None if total is None else max(total - done, 0)
    eta = None
    if pending == 0:
        eta = 0.0
    elif pending and spent:
        eta = pending * sum(spent) / len(spent)
    elif pending and lock == "live" and isinstance((plan.get("details") or {}).get("estimate_seconds"), (int, float)):
        eta = max(plan["details"]["estimate_seconds"] - (time.time() - (plan.get("session_started") or time.time())), 0.0)
    return {"done": done, "total": total, "eta_seconds": eta}


def _kind_order(kind: str) -> tuple[int, str]:
    return (KINDS.index(kind) if kind in KINDS else len(KINDS), kind)

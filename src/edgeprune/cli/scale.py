"""``edgeprune status RUN_DIR``: how far a search has come, and whether a live process is still on it."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from edgeprune.cli import app
from edgeprune.cli.common import console, table
from edgeprune.runs.status import run_status
from edgeprune.runs.sweep import plan_lines
from edgeprune.train import duration_text as _duration


@app.command()
def status(
    run_dir: Path = typer.Argument(..., help="A search run directory."),
    as_json: bool = typer.Option(False, "--json", help="Print the status as JSON."),
):
    """Progress of a run directory: planned / finished / failed per kind, elapsed time, lock holder."""
    info = run_status(run_dir)
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    rows = []
    for kind, k in info["kinds"].items():
        planned = "–" if k["planned"] is None else (str(k["planned"]) if k["planned_known"] else f"≤ {k['planned']} (not planned yet)")
        pending = "–" if k["pending"] is None else k["pending"]
        rows.append([kind, planned, k["finished"], k["ok"], k["failed"], pending])
    console.print(table(f"run {run_dir}", ["kind", "planned", "finished", "ok", "failed", "pending"], rows))
    lock = info["lock"]
    holder = {
        "live": f"running (pid {lock['pid']} on {lock['host']})",
        "stale": f"not running — stale lock of pid {lock['pid']} (the next run takes it over)" if lock["pid"] else "not running — unreadable lock",
        "foreign": f"locked by pid {lock['pid']} on {lock['host']} (cannot check from here)",
        "none": "not running",
    }[lock["state"]]
    console.print(f"state: {'complete' if info['complete'] else 'incomplete'}")
    console.print(f"process: {holder}")
    console.print(f"elapsed: {_duration(info['elapsed_seconds'])} since the first start "
                  f"(candidate compute {_duration(info['candidate_seconds'])})")
    console.print(f"last record: {_duration(info['last_record_age_seconds'])} ago; executor: {info['executor'] or '–'}")
    total = "?" if info["total"] is None else info["total"]
    console.print(f"done: {info['done']}/{total} candidates; elapsed {_duration(info['elapsed_seconds'])}; "
                  f"ETA {_duration(info['eta_seconds'])}")
    if info["plan"]:
        for line in plan_lines(info["plan"]):
            typer.echo(line)  # as printed before the run, unwrapped

"""The zoo contract through the public API: ``edgeprune.prune(model, data, method=...)`` with default options
(edgeprune.api_contract) on every model of benchmarks/zoo.py's list, each in its own process.

    python benchmarks/zoo_api.py --only torchvision --deadline 2026-12-03T12:40      # resumable
    python benchmarks/zoo_api.py --stages prune:structured --only torchvision --results zoo_api_channel
    python benchmarks/zoo_api.py --only torchvision --rerun torchvision:googlenet   # after a fix

Rows go to results/NAME.jsonl as they finish; results/NAME.json and sections/NAME.md (counts per stage, and
every failure) are rebuilt from them at the end (``--report-only`` rebuilds them alone).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, save  # noqa: E402
from edgeprune.api_contract import API_STAGES, API_TIMEOUT  # noqa: E402
from zoo import all_specs, done_specs, run_one  # noqa: E402

CHANNEL = ("prune:structured", "prune:structured_latency")
DEFAULT_STAGES = tuple(s for s in API_STAGES if s not in CHANNEL)  # the channel stages: minutes a model, run by name


def params_of(spec: str, known: dict[str, float] | None = None) -> float:
    """A model's parameter count: as an earlier run of the contract recorded it (``known``), else a torchvision
    model's from its weights' metadata (no download); inf if unknown."""
    if known and spec in known:
        return known[spec]
    kind, _, name = spec.partition(":")
    if kind == "torchvision":
        try:
            import torchvision.models as tv  # noqa: PLC0415  (optional: the zoo extra)

            return float(tv.get_model_weights(name).DEFAULT.meta["num_params"])
        except Exception:  # noqa: BLE001  (a builder without registered weights)
            pass
    return float("inf")


def report(name: str, rows: dict[str, dict], stages: tuple[str, ...], planned: int, *, script: str = "zoo_api.py",
           title: str = "Zoo contract through the public API",
           how: str = "`edgeprune.prune` with default options, one process per model, one thread.") -> None:
    counts = {s: Counter() for s in stages}
    problems = []
    for spec, row in sorted(rows.items()):
        if row.get("build") != "ok":
            problems.append({"spec": spec, "stage": "build", "status": row.get("build"), "note": row.get("note", "")})
            continue
        for stage in stages:
            outcome = row["stages"].get(stage)
            if outcome is None:
                continue
            status = outcome["status"]
            if status == "fail" and outcome.get("note", "").startswith("did not finish within"):
                status = "timeout"  # not a crash: the CPU box ran out first
            counts[stage][status] += 1
            if status in ("fail", "refused", "timeout"):
                problems.append({"spec": spec, "stage": stage, **outcome, "status": status})
    slow = [f"{spec} {stage} ({o['seconds']:.0f} s of a {o['box']:.0f} s box)" for spec, row in sorted(rows.items())
            for stage, o in row.get("stages", {}).items()
            if stage in stages and o["status"] == "pass" and min(o.get("box", API_TIMEOUT), o.get("seconds") or 0) > API_TIMEOUT]
    built = sum(r.get("build") == "ok" for r in rows.values())
    lines = [f"### {title}: `{name}` (`benchmarks/{script}`, stages {', '.join(stages)})", "",
             f"{len(rows)} of {planned} models run ({built} built); {how}", "", "| stage | pass | n/a | refused | over the time box | fail |", "|---|---:|---:|---:|---:|---:|"]
    for stage, c in counts.items():
        lines.append(f"| `{stage}` | {c['pass']} | {c['n/a']} | {c['refused']} | {c['timeout']} | {c['fail']} |")
    if slow:
        lines += ["", f"Passed only in a box larger than {API_TIMEOUT:.0f} s of CPU time: {'; '.join(slow)}."]
    if problems:
        lines += ["", "| model | stage | status | note |", "|---|---|---|---|"]
        lines += [f"| {p['spec']} | {p['stage']} | {p['status']} | {str(p.get('note', ''))[:160].replace('|', '/')} |"
                  for p in problems]
    save(name, {"stages": list(stages), "models_planned": planned, "models_run": len(rows),
                "counts": {s: dict(c) for s, c in counts.items()}, "problems": problems}, "\n".join(lines))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["torchvision", "timm", "hf"])
    parser.add_argument("--stages", default=",".join(DEFAULT_STAGES), help=f"allowed: {', '.join(API_STAGES)}")
    parser.add_argument("--results", default="zoo_api", help="name of the results files")
    parser.add_argument("--time-box", type=float, default=900.0, help="seconds a model may take in all")
    parser.add_argument("--stage-box", type=float, default=API_TIMEOUT,
                        help="CPU seconds each stage may take (a larger box re-runs the stages over the default one)")
    parser.add_argument("--deadline", help="UTC time (ISO) after which no new model starts")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--rerun", default="", help="models to run again (comma-separated specs; their new stage outcomes win)")
    parser.add_argument("--smallest-first", action="store_true", help="models by parameter count (recorded by an earlier run, or torchvision's metadata)")
    args = parser.parse_args(argv)
    stages = tuple(args.stages.split(","))
    unknown = set(stages) - set(API_STAGES)
    if unknown:
        parser.error(f"--stages: unknown {sorted(unknown)}; allowed: {', '.join(API_STAGES)}")
    specs = all_specs(args.only)
    if args.smallest_first:
        known = {spec: float(row["params"]) for path in RESULTS.glob("zoo_api*.jsonl")
                 for spec, row in done_specs(path).items() if row.get("params")}
        specs = sorted(specs, key=lambda spec: params_of(spec, known))
    path = RESULTS / f"{args.results}.jsonl"
    rows = done_specs(path)
    deadline = datetime.fromisoformat(args.deadline).replace(tzinfo=timezone.utc) if args.deadline else None
    rerun = [s for s in args.rerun.split(",") if s]
    if set(rerun) - set(specs):
        parser.error(f"--rerun: not in the zoo list: {sorted(set(rerun) - set(specs))}")
    todo = [] if args.report_only else rerun or [s for s in specs if s not in rows]
    print(f"{len(specs)} models, {len(rows)} done, {len(todo)} to run", flush=True)
    for i, spec in enumerate(todo, 1):
        if deadline and datetime.now(timezone.utc) >= deadline:
            print("deadline reached", flush=True)
            break
        row = run_one(spec, args.time_box, stages, args.stage_box)
        for outcome in row.get("stages", {}).values():
            outcome["box"] = args.stage_box
        if "stages" in row and "stages" in rows.get(spec, {}):  # a rerun of some stages keeps the others' outcomes
            row["stages"] = {**rows[spec]["stages"], **row["stages"]}
        with path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        rows[spec] = row
        brief = " ".join(f"{k.removeprefix('prune:')}={v['status']}" for k, v in row.get("stages", {}).items())
        print(f"[{i}/{len(todo)}] {spec}: {brief or row.get('build')} ({row.get('seconds') or 0:.0f} s)", flush=True)
    report(args.results, {s: r for s, r in rows.items() if s in specs}, stages, len(specs))


if __name__ == "__main__":
    main()

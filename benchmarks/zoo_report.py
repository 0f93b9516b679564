"""results/zoo.json and sections/zoo.md from results/zoo.jsonl (the rows benchmarks/zoo.py wrote).

    python benchmarks/zoo_report.py          # rebuild the table from the rows so far
"""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import save  # noqa: E402
from zoo import JSONL, STAGES, done_specs  # noqa: E402

STATUSES = ("pass", "none", "refused", "n/a", "fail")
LIBRARIES = {"torchvision": "torchvision", "timm": "timm", "hf-config": "transformers"}
CODE = {"pass": "✓", "none": "∅", "refused": "R", "n/a": "·", "fail": "✗", "timeout": "T"}


def status_of(outcome: dict) -> str:
    """A stage's status, with hangs (the 60 s time box) told apart from other failures."""
    if outcome["status"] == "fail" and outcome["note"].startswith("did not finish within"):
        return "timeout"
    return outcome["status"]


def summarize(rows: dict[str, dict], specs: list[str]) -> dict:
    by_stage: dict[str, Counter] = {s: Counter() for s in STAGES}
    by_library: dict[str, dict[str, Counter]] = defaultdict(lambda: {s: Counter() for s in STAGES})
    builds: Counter = Counter()
    problems = []
    for spec, row in rows.items():
        library = LIBRARIES.get(spec.split(":")[0], "other")
        builds[row["build"]] += 1
        if row["build"] != "ok":
            problems.append({"spec": spec, "stage": "build", "status": row["build"], "note": row.get("note", "")})
            continue
        for stage in STAGES:
            outcome = row["stages"].get(stage)
            if outcome is None:
                continue
            status = status_of(outcome)
            by_stage[stage][status] += 1
            by_library[library][stage][status] += 1
            if status in ("refused", "fail", "timeout", "none"):
                problems.append({"spec": spec, "stage": stage, "status": status, "note": outcome["note"]})
    applicable = sum(n for c in by_stage.values() for s, n in c.items() if s != "n/a")
    passed = sum(c["pass"] for c in by_stage.values())
    said_none = sum(c["none"] for c in by_stage.values())
    failed = sum(c["fail"] + c["timeout"] for c in by_stage.values())
    return {
        "models_listed": len(specs),
        "models_run": len(rows),
        "not_run": [s for s in specs if s not in rows],
        "builds": dict(builds),
        "by_stage": {s: dict(c) for s, c in by_stage.items()},
        "by_library": {lib: {s: dict(c) for s, c in stages.items()} for lib, stages in by_library.items()},
        "applicable_pairs": applicable,
        "pass": passed,
        "none_said_so": said_none,
        "fail_or_timeout": failed,
        "pass_rate": passed / applicable if applicable else None,
        "pass_or_none_rate": (passed + said_none) / applicable if applicable else None,
        "problems": problems,
        # Torch-Pruning publishes 77 torchvision models pruned structurally (issue 14's bar)
        "torchvision_structured": sum(1 for spec, row in rows.items() if spec.startswith("torchvision:")
                                      and row.get("stages", {}).get("structured30", {}).get("status") == "pass"),
        "torchvision_listed": sum(1 for spec in specs if spec.startswith("torchvision:")),
    }


def edge_summary(rows: dict[str, dict]) -> dict[str, dict]:
    """{edge stage: status counts over the models whose ONNX export passed} for every edge stage run on any model
    (the issue's bar: parity in the runtime on >= 90 % of the models where ONNX passes)."""
    from edgeprune.runs.contract import EDGE_STAGES  # noqa: PLC0415

    out = {}
    for stage in EDGE_STAGES:
        counts: Counter = Counter()
        for row in rows.values():
            if row.get("build") == "ok" and row["stages"].get("onnx", {}).get("status") == "pass":
                outcome = row["stages"].get(stage)
                counts[status_of(outcome) if outcome else "not run"] += 1
        if sum(n for k, n in counts.items() if k != "not run"):
            out[stage] = dict(counts)
    return out


def _edge_lines(edge: dict[str, dict], rows: dict[str, dict]) -> list[str]:
    if not edge:
        return []
    lines = ["", "Edge stages (run by name, `--redo STAGE`): conversion with parity in the runtime, over the models whose "
             "ONNX export passes, 300 s of CPU time each:", "",
             "| stage | ONNX passes | run | pass | refused | fail | over 300 s | not run | pass rate of those run |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for stage, c in edge.items():
        run = sum(n for k, n in c.items() if k != "not run")
        lines.append(f"| {stage} | {sum(c.values())} | {run} | {c.get('pass', 0)} | {c.get('refused', 0)} | "
                     f"{c.get('fail', 0)} | {c.get('timeout', 0)} | {c.get('not run', 0)} | "
                     f"{100 * c.get('pass', 0) / run:.1f} % |")
    problems = [f"- `{spec}` {stage}: **{status_of(outcome)}** — {outcome['note'][:220]}"
                for stage in edge for spec, row in rows.items()
                if (outcome := row.get("stages", {}).get(stage)) and status_of(outcome) != "pass"]
    return lines + ([""] + problems if problems else [])


def _counts(c: dict) -> str:
    return " / ".join(str(c.get(s, 0)) for s in ("pass", "none", "refused", "fail", "timeout", "n/a"))


def section(summary: dict, rows: dict[str, dict]) -> str:
    s = summary
    lines = [
        "### Zoo contract: torchvision, timm and transformers models (`benchmarks/zoo.py`)",
        "",
        "Every stage on every model (random weights, 10 classes, 64 px inputs unless a model needs more; one process "
        "and one thread per model, every stage time-boxed at 60 s of CPU time): roles, Mix-and-Match masks at 50 %, "
        "structured channels at 30 % (`structured30`, physically through torch-pruning; what it keeps whole is in the "
        "note), VBP at 30 % (models with an MLP), Reconvene at p = 0.9 (≥ 2 convs), ONNX export with parity in ONNX "
        "Runtime. Rows were re-run stage by stage (`--redo`) as the stages changed during the session; each row "
        "holds its latest result.",
        "",
        f"{s['models_run']} of {s['models_listed']} listed models ran; builds: "
        + ", ".join(f"{k} {v}" for k, v in sorted(s["builds"].items())) + ". "
        f"Applicable (model, stage) pairs: {s['applicable_pairs']}; pass {s['pass']} "
        f"({100 * (s['pass_rate'] or 0):.1f} %), removed nothing and said so {s['none_said_so']}, "
        f"fail or over 60 s {s['fail_or_timeout']}. Torchvision classification models pruned structurally "
        f"(`structured30` pass): {s['torchvision_structured']} of {s['torchvision_listed']} (Torch-Pruning publishes "
        "77 torchvision models, of every task).",
        "",
        "| stage | pass / none / refused / fail / over 60 s / n/a |",
        "|---|---|",
    ]
    lines += [f"| {stage} | {_counts(s['by_stage'][stage])} |" for stage in STAGES]
    lines += ["", "| library | " + " | ".join(STAGES) + " |", "|---|" + "---|" * len(STAGES)]
    for library, stages in sorted(s["by_library"].items()):
        lines.append(f"| {library} | " + " | ".join(_counts(stages[st]) for st in STAGES) + " |")
    lines += ["", f"Per model ({', '.join(f'{v} {k}' for k, v in CODE.items())}):", "",
              "| model | params | px | " + " | ".join(STAGES) + " |", "|---|---:|---:|" + "---|" * len(STAGES)]
    for spec, row in rows.items():
        if row["build"] != "ok":
            lines.append(f"| {spec} | | | build {row['build']}: {row.get('note', '')[:90]} |" + " |" * (len(STAGES) - 1))
            continue
        marks = [CODE[status_of(row["stages"][st])] if st in row["stages"] else "" for st in STAGES]
        lines.append(f"| {spec} | {row['params']:,} | {row['image_size']} | " + " | ".join(marks) + " |")
    lines += _edge_lines(s.get("edge", {}), rows)
    lines += ["", "Refusals, failures and stages that removed nothing:", ""]
    for p in s["problems"]:
        lines.append(f"- `{p['spec']}` {p['stage']}: **{p['status']}** — {p['note'][:220]}")
    if s["not_run"]:
        lines += ["", f"Not run before the deadline ({len(s['not_run'])}): " + ", ".join(f"`{n}`" for n in s["not_run"])]
    return "\n".join(lines)


def write(specs: list[str]) -> None:
    rows = done_specs()
    summary = {**summarize(rows, specs), "edge": edge_summary(rows)}
    save("zoo", {"summary": summary, "rows": list(rows.values())}, section(summary, rows))
    print(f"{len(rows)} rows from {JSONL.name}: pass {summary['pass']} of {summary['applicable_pairs']} applicable")


if __name__ == "__main__":
    from zoo import all_specs  # noqa: PLC0415

    write(all_specs(None))
    print(json.dumps({k: v for k, v in summarize(done_specs(), all_specs(None)).items() if k != "problems"})[:800])

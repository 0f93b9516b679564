"""One of the contract's edge stages on every model of the zoo contract's CI subset, built exactly as
``tests/test_zoo_contract.py`` builds them: ``executorch`` (FP32 ``.pte`` lowered to XNNPACK, parity in the
ExecuTorch runtime), ``openvino`` (FP32 IR from the ONNX export, parity in OpenVINO) or ``litert`` (FP32
batch-1 ``.tflite``, parity in LiteRT's interpreter).

    python benchmarks/edge_zoo.py --stage executorch     # every model of the CI subset: results/executorch_zoo.json
    python benchmarks/edge_zoo.py --stage litert --only lenet5,vit      # run again: their rows replaced

Before the stage, ``edgeprune.runs.contract.informative`` gives an untrained model whose outputs are near zero
(zero-initialised heads) informative ones, so the parity check compares real numbers (the row's ``informative``).
One torch thread. The models run in a worker process, one after the other; if the worker dies on a model
(a crash in native code), that model is recorded as ``crash`` and a new worker goes on with the rest.
Writes results/STAGE_zoo.json and sections/STAGE_zoo.md (run make_readme.py afterwards).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
SUBSET = ROOT.parent / "tests" / "test_zoo_contract.py"
RUNTIMES = {"executorch": "ExecuTorch", "openvino": "OpenVINO", "litert": "LiteRT"}
HOW = {"executorch": "FP32 `.pte` at batch 1 lowered to XNNPACK, parity against PyTorch in the ExecuTorch runtime",
       "openvino": "FP32 IR converted from the ONNX export, parity against PyTorch in OpenVINO (CPU plugin)",
       "litert": "FP32 `.tflite` at batch 1 (litert-torch), parity against PyTorch in LiteRT's interpreter"}
TIMEOUT = 300.0  # CPU seconds per model (the contract's default, 60, is for the CI stages)
TINY_LOGITS = 1e-3  # as edgeprune.runs.contract.TINY_OUTPUT: rows timed before informative() are flagged in the summary


def subset():
    """tests/test_zoo_contract.py as a module: CASES, build(case), SIZE (the CI subset's one definition)."""
    if str(SUBSET.parent) not in sys.path:
        sys.path.insert(0, str(SUBSET.parent))  # its hand-written models (byom/) import as pytest imports them
    spec = importlib.util.spec_from_file_location("zoo_contract_subset", SUBSET)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------------------------- worker


def worker(stage: str, cases: list[str], timeout: float) -> None:
    """One JSON row per case on stdout, as each finishes."""
    import torch  # noqa: PLC0415

    from edgeprune.measure import param_count  # noqa: PLC0415
    from edgeprune.runs.contract import informative, run_stage  # noqa: PLC0415

    torch.set_num_threads(1)
    zoo = subset()
    for case in cases:
        print(json.dumps({"case": case, "started": True}), flush=True)
        t0 = time.perf_counter()
        try:
            model = zoo.build(case)
        except Exception as exc:  # noqa: BLE001  (reported, the next model runs)
            row = {"case": case, "status": "build failed", "note": f"{type(exc).__name__}: {exc}"[:300],
                   "seconds": time.perf_counter() - t0}
        else:
            example = torch.zeros(1, 3, zoo.SIZE, zoo.SIZE)
            changed = informative(model, example)
            outcome = run_stage(stage, model, example, timeout=timeout)
            row = {"case": case, "params": param_count(model), **outcome.as_dict(), **parse_note(outcome.note),
                   **({"informative": "; ".join(changed)} if changed else {})}
            row.pop("stage")
        print(json.dumps(row), flush=True)


_NOTE = re.compile(r"max diff (\S+) \(max \|logit\| (\S+)\)(?:, (\d+) ops outside the delegate(?: \((.*)\))?)?$")


def parse_note(note: str) -> dict:
    """max diff and (ExecuTorch) ops outside the delegate from a passing stage's note (empty for other outcomes)."""
    match = _NOTE.match(note)
    if not match:
        return {}
    row = {"max_abs_diff": float(match.group(1)), "max_abs_logit": float(match.group(2))}
    if match.group(3) is not None:
        row.update(outside_delegate=int(match.group(3)), outside_top=match.group(4) or "")
    return row


# ----------------------------------------------------------------------------------------------- driver


def run_all(stage: str, cases: list[str], timeout: float) -> list[dict]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    rows: dict[str, dict] = {}
    todo = list(cases)
    while todo:
        err = tempfile.TemporaryFile("w+")  # not a pipe: the worker's log lines must never block it
        proc = subprocess.Popen([sys.executable, __file__, "--worker", ",".join(todo), "--stage", stage,
                                 "--timeout", str(timeout)],
                                stdout=subprocess.PIPE, stderr=err, text=True, env=env, cwd=ROOT.parent)
        current, started = None, 0.0
        for line in proc.stdout:
            if not line.startswith("{"):
                continue
            row = json.loads(line)
            if row.get("started"):
                current, started = row["case"], time.perf_counter()
                continue
            rows[row["case"]] = row
            current = None
            print(f"{row['case']}: {row['status']} ({row['seconds']:.1f} s) {row.get('note', '')}", flush=True)
        proc.wait()
        err.seek(0)
        stderr = err.read()
        err.close()
        if current is not None:  # the worker died on this model
            tail = (stderr.strip().splitlines() or ["?"])[-1][:300]
            rows[current] = {"case": current, "status": "crash", "note": f"worker exit {proc.returncode}: {tail}",
                             "seconds": time.perf_counter() - started}
            print(f"{current}: crash {tail}", flush=True)
        todo = [c for c in todo if c not in rows]
        if todo and current is None:  # exited without starting the next model
            tail = (stderr.strip().splitlines() or ["?"])[-1][:300]
            raise SystemExit(f"worker exited (code {proc.returncode}) before {todo[0]}: {tail}")
    return [rows[c] for c in cases]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def summary(rows: list[dict], stage: str = "executorch") -> str:
    passed = [r for r in rows if r["status"] == "pass"]
    refused = [r for r in rows if r["status"] == "refused"]
    other = [r for r in rows if r["status"] not in ("pass", "refused")]
    line = f"{len(passed)} of {len(rows)} exported with parity; {len(refused)} refused"
    if refused:
        line += ": " + "; ".join(f"{r['case']} ({_why(r['note'], stage)})" for r in refused)
    if other:
        line += f"; {len(other)} other: " + "; ".join(f"{r['case']} {r['status']}" for r in other)
    tiny = [r["case"] for r in passed if r.get("max_abs_logit", 1.0) < TINY_LOGITS]
    if tiny:
        line += (f". Of those passing, {len(tiny)} have untrained logits below {TINY_LOGITS:g} in magnitude, so their "
                 f"parity says little: {', '.join(tiny)}")
    return line + "."


def _why(note: str, stage: str) -> str:
    """The part of a refusal after 'cannot be lowered/exported/converted to <runtime>: '."""
    return note.split(f"{RUNTIMES[stage]}: ", 1)[-1]


def section(rows: list[dict], timeout: float, stage: str = "executorch") -> str:
    diffs = [r["max_abs_diff"] for r in rows if "max_abs_diff" in r]
    delegated = stage == "executorch"
    full = sum(1 for r in rows if r.get("outside_delegate") == 0)
    lines = [
        f"## {RUNTIMES[stage]} export of the zoo contract's CI subset",
        "",
        f"`benchmarks/edge_zoo.py --stage {stage}`: the contract stage `{stage}` (`edgeprune.runs.contract`) on every "
        "model of the CI subset of `tests/test_zoo_contract.py`, built as that test builds them (untrained, "
        f"5 classes, 3×32×32 inputs): {HOW[stage]} on 2 random inputs (tolerance 1e-4, relative above logit "
        f"magnitude 1), one thread, {timeout:g} s of CPU time per model."
        + (" Ops outside the delegate run on ExecuTorch's portable kernels (the three most frequent named)."
           if delegated else ""),
        "",
        f"**{summary(rows, stage)}**" + (f" Max diff {min(diffs):.1g} … {max(diffs):.1g}" if diffs else "")
        + (f"; {full} models fully delegated." if delegated and diffs else "." if diffs else ""),
        "",
        "| model | status | max diff | max \\|logit\\| |" + (" ops outside delegate |" if delegated else " note |")
        + " seconds |",
        "|---|---|---:|---:|---|---:|",
    ]
    for r in rows:
        if r["status"] == "pass":
            diff = f"{r['max_abs_diff']:.1e} | {r['max_abs_logit']:.2g}"
            ops = (str(r["outside_delegate"]) + (f" ({r['outside_top']})" if r["outside_top"] else "")) if delegated else ""
        else:
            diff, ops = " | ", r.get("note", "")
        seconds = f"{r['seconds']:.1f}" if r.get("seconds") is not None else ""
        lines.append(f"| {r['case']} | {r['status']} | {diff} | {_cell(ops)} | {seconds} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--stage", choices=list(RUNTIMES), default="executorch")
    parser.add_argument("--only", help="comma-separated cases (default: the whole CI subset); their rows replace "
                        "theirs in an existing results file")
    parser.add_argument("--timeout", type=float, default=TIMEOUT, help="CPU seconds per model")
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.stage, args.worker.split(","), args.timeout)
        return
    everything = list(subset().CASES)
    cases = everything
    if args.only:
        wanted = args.only.split(",")
        unknown = sorted(set(wanted) - set(cases))
        if unknown:
            parser.error(f"--only: not in the CI subset: {unknown}")
        cases = [c for c in cases if c in wanted]
    t0 = time.perf_counter()
    rows = run_all(args.stage, cases, args.timeout)
    seconds = time.perf_counter() - t0
    from common import RESULTS, save  # noqa: PLC0415

    name = f"{args.stage}_zoo"
    if args.only:  # the named models' rows replace theirs in the full run's results, if there is one
        path = RESULTS / f"{name}.json"
        if not path.exists():
            print(section(rows, args.timeout, args.stage))
            return
        saved = json.loads(path.read_text())
        new = {r["case"]: r for r in rows}
        rows = [new.get(r["case"], r) for r in saved["rows"] if r["case"] in everything]
        rows += [r for c, r in new.items() if c not in {s["case"] for s in saved["rows"]}]
        seconds = saved.get("seconds", 0.0)
    result = {"stage": args.stage, "timeout_cpu_seconds": args.timeout, "summary": summary(rows, args.stage),
              "rows": rows, "seconds": seconds, "rerun": cases if args.only else []}
    path = save(name, result, section(rows, args.timeout, args.stage))
    print(f"wrote {path.relative_to(ROOT.parent)}: {summary(rows, args.stage)}")

if __name__ == "__main__":
    main()

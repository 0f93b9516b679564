"""What a user waits for before edgeprune does anything: ``import edgeprune``, the API on first use and the CLI's
``--help``, each against ``import torch`` alone, interleaved round by round in fresh interpreters (so a busy
moment slows every row of that round alike) and compared as ratios of medians.

    python benchmarks/startup.py --rounds 15
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import save  # noqa: E402

PY = sys.executable
CLI = str(Path(PY).with_name("edgeprune"))
ROWS = {
    "import torch": [PY, "-c", "import torch"],
    "import edgeprune": [PY, "-c", "import edgeprune"],
    "edgeprune --help": [CLI, "--help"],
    "the API on first use": [PY, "-c", "import edgeprune; edgeprune.prune"],
    "edgeprune methods": [CLI, "methods"],
}
GOALS = {"import edgeprune": 1.25, "edgeprune --help": 1.4}  # issue 28: at most these multiples of `import torch`


def seconds(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    for argv in ROWS.values():  # warm the file cache once
        seconds(argv)
    times: dict[str, list[float]] = {name: [] for name in ROWS}
    for _ in range(args.rounds):
        for name, argv in ROWS.items():
            times[name].append(seconds(argv))
    torch_s = statistics.median(times["import torch"])
    rows = [{"what": name, "median_s": round(statistics.median(t), 3), "min_s": round(min(t), 3),
             "ratio_to_torch": round(statistics.median(t) / torch_s, 2), "goal": GOALS.get(name)}
            for name, t in times.items()]
    lines = ["## Startup: `import edgeprune` and the CLI against `import torch`", "",
             f"`benchmarks/startup.py`, {args.rounds} rounds, each a fresh interpreter, rows interleaved within a round.", "",
             "| what | median s | min s | × import torch | goal |", "|---|---:|---:|---:|---:|"]
    for r in rows:
        goal = f"≤ {r['goal']}×" if r["goal"] else ""
        lines.append(f"| `{r['what']}` | {r['median_s']} | {r['min_s']} | {r['ratio_to_torch']} | {goal} |")
    lines += ["", "`import edgeprune` and `--help` do not import torch; the API's first use (and any command that works) "
              "imports torch, torch-pruning and the pipeline; ONNX, ONNX Runtime's quantizer and pyplot load when a call exports or plots."]
    save("startup", {"rounds": args.rounds, "rows": rows, "times_s": times}, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

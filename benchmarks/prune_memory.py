"""Peak memory of the default call ``edgeprune.prune(model, data)`` (Mix-and-Match: every criterion and strategy
fine-tuned as a candidate; or ``--method``'s default call) on zoo models, each in a fresh process, as the zoo contract
calls it (its tiny random data).

    python benchmarks/prune_memory.py --models timm:vit_small_patch16_224
    python benchmarks/prune_memory.py --models torchvision:resnet50 --method structured --name prune_memory_structured
    python benchmarks/prune_memory.py --models timm:vit_small_patch16_224 --src ../old/src --name prune_memory_old

``--src`` runs another checkout's ``src`` (e.g. a worktree at an older commit), so a change is measured side by side
with what it replaced. Peak resident memory is the process's ``ru_maxrss``; the model's own weights are shown beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

CHILD = """
import json, resource, sys, time, warnings
import torch
sys.path.insert(0, {bench!r})
warnings.simplefilter("ignore")
from zoo import build
from edgeprune import api
from edgeprune.api_contract import classes_of, tiny_data
torch.set_num_threads(1)
model, size, _ = build({spec!r})
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
pruned = api.prune(model, tiny_data(torch.zeros(1, 3, size, size), classes_of(model, (1, 10))), method={method!r})
print(json.dumps({{"spec": {spec!r}, "image_size": size, "params": sum(p.numel() for p in model.parameters()),
                  "candidates": len(pruned.candidates), "peak_rss_gb_before_prune": before / 1e6,
                  "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
                  "seconds": time.perf_counter() - started}}))
"""


def measure(spec: str, src: Path, method: str = "mix_and_match") -> dict:
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    child = CHILD.format(bench=str(ROOT), spec=spec, method=method)
    done = subprocess.run([sys.executable, "-c", child], env=env, text=True, capture_output=True, check=False)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["?"])[-1]
        return {"spec": spec, "error": f"exit code {done.returncode}: {tail[:200]}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def revision_of(src: Path) -> str:
    done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=src, capture_output=True, text=True, check=False)
    return done.stdout.strip() or "unknown"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="timm:vit_small_patch16_224", help="comma-separated zoo specs")
    parser.add_argument("--src", type=Path, default=ROOT.parent / "src", help="the edgeprune source to measure")
    parser.add_argument("--method", default="mix_and_match", help="the method the default call runs")
    parser.add_argument("--name", default="prune_memory")
    args = parser.parse_args(argv)
    if not (args.src / "edgeprune").is_dir():
        parser.error(f"--src: no edgeprune package in {args.src}")
    rows = []
    for spec in args.models.split(","):
        rows.append(measure(spec, args.src.resolve(), args.method))
        print(rows[-1], flush=True)
    from common import save  # noqa: PLC0415

    source = revision_of(args.src.resolve())
    lines = [f"### Peak memory of the default call, method {args.method} (`benchmarks/prune_memory.py`, edgeprune at "
             f"`{source[:10]}`)", "",
             "| model | parameters | weights (GB) | candidates | peak RSS (GB) | seconds |", "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['spec']} | | | | {r['error']} | |")
        else:
            lines.append(f"| {r['spec']} | {r['params']:,} | {r['params'] * 4 / 1e9:.2f} | {r['candidates']} | "
                         f"{r['peak_rss_gb']:.2f} | {r['seconds']:.0f} |")
    save(args.name, {"source_revision": source, "method": args.method, "rows": rows}, "\n".join(lines))


if __name__ == "__main__":
    main()

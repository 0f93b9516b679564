"""The same 12-candidate Mix-and-Match search run sequentially and on 2 local Ray workers.

    python benchmarks/scale.py [--model lenet5] [--limit 6000] [--epochs 1] [--workers 2]

Both runs start from one dense checkpoint (trained first, not timed), use one torch thread per candidate
and write their own run directory. Reported: wall time of each search (the Ray one with and without
starting Ray), their ratio (goal <= 0.6), and the per-candidate overhead of the Ray path:

* scheduling + transfer: time from submitting a task to its result reaching the driver, minus the time
  the task itself ran (mean over candidates; the first task of each worker also pays the worker start);
* fetch: the task getting the shared context from the object store (once per worker process);
* aggregate: (Ray wall without start-up x workers - sum of sequential candidate times) / candidates, i.e.
  everything the parallel run spends beyond the sequential work, contention of the shared cores included.

The machine is shared with other engineers: the load average at start and end is stored in the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch  # noqa: E402

import edgeprune  # noqa: E402
from common import save, shared_data_dir  # noqa: E402
from edgeprune import data  # noqa: E402
from edgeprune.methods.dense import train_dense  # noqa: E402
from edgeprune.runs.executor import LocalExecutor  # noqa: E402
from edgeprune.runs.ray_executor import RayExecutor  # noqa: E402
from edgeprune.train import default_config  # noqa: E402

CRITERIA = ["magnitude", "gradient", "product"]
STRATEGIES = ["min", "p30", "p70", "max"]  # four distinct per-layer vectors -> 3 x 4 = 12 candidates


def records(run: Path) -> dict[str, dict]:
    return {r["id"]: r for r in map(json.loads, (run / "results.jsonl").read_text().splitlines()) if r["kind"] == "candidate"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="lenet5")
    ap.add_argument("--limit", type=int, default=6000, help="training examples (MNIST)")
    ap.add_argument("--epochs", type=int, default=1, help="fine-tuning epochs per candidate")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    load_start = os.getloadavg()
    root = shared_data_dir()
    dataset = "mnist" if root else "digits"
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        splits = data.load(dataset, root=root, limit=args.limit)
        dense, _ = train_dense(args.model, splits, default_config(args.model, epochs=2, batch_size=64, lr=0.02),
                               tmp / "dense", progress=False)
        settings = dict(model=args.model, dataset=dataset, limit=args.limit, method="mix_and_match", budgets=[0.9],
                        criteria=CRITERIA, strategies=STRATEGIES, calib_batches=4,
                        finetune={"epochs": args.epochs, "batch_size": 64})

        def sweep(out, executor):
            return edgeprune.sweep(dense, splits, method="mix_and_match", budgets=[0.9], out=out, executor=executor,
                                   finetune=settings["finetune"], criteria=CRITERIA, strategies=STRATEGIES,
                                   calib_batches=4, progress=False)

        t0, c0 = time.perf_counter(), time.process_time()
        sweep(tmp / "local", LocalExecutor(threads=1))
        local_wall, local_cpu = time.perf_counter() - t0, time.process_time() - c0
        print(f"sequential: {local_wall:.1f} s", flush=True)

        t0 = time.perf_counter()
        with RayExecutor(workers=args.workers, cpus_per_candidate=1) as executor:
            sweep(tmp / "ray", executor)
            ray_wall = time.perf_counter() - t0
            stats = list(executor.stats)
            startup = executor.startup_seconds
        print(f"ray x{args.workers}: {ray_wall:.1f} s (Ray start {startup:.1f} s)", flush=True)

        local, remote = records(tmp / "local"), records(tmp / "ray")
    load_end = os.getloadavg()

    assert sorted(local) == sorted(remote) and len(local) == 12, (sorted(local), sorted(remote))
    same_sparsity = all(local[i]["sparsity"] == remote[i]["sparsity"] for i in local)
    acc_keys = ("val_acc_pruned", "val_acc", "test_acc")
    max_acc_diff = max(abs(local[i][k] - remote[i][k]) for i in local for k in acc_keys)
    differing = {i: {k: [local[i][k], remote[i][k]] for k in acc_keys if local[i][k] != remote[i][k]} for i in local}
    differing = {i: d for i, d in differing.items() if d}
    n = len(local)
    seq_candidate_seconds = sum(r["seconds"] for r in local.values())
    ray_candidate_seconds = sum(r["seconds"] for r in remote.values())
    ray_wall_no_start = ray_wall - startup
    sched = [s["driver_seconds"] - s["task_seconds"] for s in stats]
    ray_task_cpu = sum(s["cpu_seconds"] for s in stats)
    # how many candidates ran at once on average while the Ray search was training
    span = max(s["started_unix"] + s["task_seconds"] for s in stats) - min(s["started_unix"] for s in stats)
    concurrency = sum(s["task_seconds"] for s in stats) / span
    result = {
        "settings": {**settings, "checkpoint": "(trained by the script: 2 epochs, SGD lr 0.02, batch 64)", "workers": args.workers,
                     "cpus_per_candidate": 1, "candidates": n},
        "load_average_start": list(load_start),
        "load_average_end": list(load_end),
        "cpu_count": os.cpu_count(),
        "note": "shared machine: other engineers' jobs ran at the same time (see load averages); wall times include that contention",
        "sequential_wall_seconds": local_wall,
        "ray_wall_seconds": ray_wall,
        "ray_startup_seconds": startup,
        "ray_wall_without_startup_seconds": ray_wall_no_start,
        "wall_ratio": ray_wall / local_wall,
        "wall_ratio_without_startup": ray_wall_no_start / local_wall,
        "goal_wall_ratio": 0.6,
        "sequential_candidate_seconds_sum": seq_candidate_seconds,
        "ray_candidate_seconds_sum": ray_candidate_seconds,
        "sequential_search_cpu_seconds": local_cpu,
        "ray_tasks_cpu_seconds": ray_task_cpu,
        "ray_mean_concurrency": concurrency,
        "ray_overhead_per_candidate": {
            "scheduling_transfer_mean_seconds": statistics.fmean(sched),
            "scheduling_transfer_median_seconds": statistics.median(sched),
            "scheduling_transfer_max_seconds": max(sched),
            "context_fetch_mean_seconds": statistics.fmean(s.get("fetch_seconds", 0.0) for s in stats),
            "aggregate_seconds": (ray_wall_no_start * args.workers - seq_candidate_seconds) / n,
        },
        "tasks": stats,
        "records_match": {"ids": True, "sparsity_exact": same_sparsity, "max_accuracy_difference": max_acc_diff,
                          "differing": differing},
    }
    over = result["ray_overhead_per_candidate"]
    cpu_verdict = (", so the longer candidate times under Ray were spent waiting for a core, not on extra work"
                   if ray_task_cpu <= 1.15 * local_cpu and ray_candidate_seconds > 1.15 * seq_candidate_seconds else "")
    lines = [
        "### Search scale-out: sequential vs Ray (issue 7)",
        "",
        f"{n} Mix-and-Match candidates ({args.model} on {dataset}, {args.limit} training examples, {args.epochs} fine-tuning "
        f"epoch each, one torch thread per candidate), same dense checkpoint. **Shared machine**: load average at start "
        f"{load_start[0]:.1f} / {load_start[1]:.1f} / {load_start[2]:.1f} (1/5/15 min) on {os.cpu_count()} cores, so the "
        f"parallel run competed with other jobs.",
        "",
        "| run | wall s | ratio to sequential | sum of candidate s |",
        "|---|---:|---:|---:|",
        f"| sequential (local executor) | {local_wall:.1f} | 1.00 | {seq_candidate_seconds:.1f} |",
        f"| Ray, {args.workers} local workers, incl. Ray start ({startup:.1f} s) | {ray_wall:.1f} | {ray_wall / local_wall:.2f} | {ray_candidate_seconds:.1f} |",
        f"| Ray, {args.workers} local workers, without Ray start | {ray_wall_no_start:.1f} | {ray_wall_no_start / local_wall:.2f} | |",
        "",
        f"Goal: ratio <= 0.6. Ray per-candidate overhead: scheduling + transfer {over['scheduling_transfer_median_seconds']:.3f} s "
        f"median ({over['scheduling_transfer_mean_seconds']:.2f} s mean, first task per worker includes the worker start), "
        f"context fetch {over['context_fetch_mean_seconds']:.3f} s mean, aggregate {over['aggregate_seconds']:.2f} s "
        f"(all parallel time beyond the sequential work, contention included). CPU seconds: sequential search "
        f"{local_cpu:.1f}, Ray tasks {ray_task_cpu:.1f}; {concurrency:.2f} candidates ran at once on average{cpu_verdict}. "
        f"Records equal: ids yes, sparsities "
        f"{'exactly' if same_sparsity else 'NOT'} equal, accuracies differ by at most {max_acc_diff:.2g}.",
    ]
    save("scale", result, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

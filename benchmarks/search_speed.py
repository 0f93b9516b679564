"""torch-pruning's dependency search with and without our faster index mappings, side by side: CPU seconds of the
structured plan and of one pruned copy (every MLP's hidden width halved), per model, one thread.

    python benchmarks/search_speed.py --core 0 --repeats 2

"plain" turns off the three speed-ups of ``edgeprune.surgery.search`` (widths asked once per mapping update, flatten
mappings built without a Python call per index, the cycle collector paused during a search) and keeps the rest; the
pruned widths must agree.
"""

from __future__ import annotations

import contextlib
import copy
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import pin_to_core, save, timing_parser  # noqa: E402
from edgeprune import models  # noqa: E402
from edgeprune.surgery import search  # noqa: E402
from edgeprune.surgery.lazy import tp  # noqa: E402
from edgeprune.surgery.ratios import prune_channels  # noqa: E402
from edgeprune.surgery.structure import plan as plan_structure  # noqa: E402

MODELS = {"torchvision:swin_t": 64, "timm:sam2_hiera_tiny": 64}
MLP_INPUTS = ("mlp.fc1", "mlp.0", "mlp.layers.0")


@contextlib.contextmanager
def plain():
    """The search without the three speed-ups."""
    saved = search._widths_cached, search._collector_paused, search._flatten
    flatten = tp.dependency.index_mapping._FlattenIndexMapping.__call__
    search._widths_cached = search._collector_paused = lambda *args: contextlib.nullcontext()
    search._flatten = flatten
    try:
        yield
    finally:
        search._widths_cached, search._collector_paused, search._flatten = saved


def timed(spec: str, size: int, fast: bool) -> tuple[float, float, dict]:
    model = models.create(spec, num_classes=10, in_channels=3, image_size=size).eval()
    x = torch.randn(1, 3, size, size)
    ratios = {n: 0.5 for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and n.endswith(MLP_INPUTS)}
    with contextlib.nullcontext() if fast else plain(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.process_time()
        structure = plan_structure(model, x)
        planned = time.process_time()
        widths = prune_channels(copy.deepcopy(model), x, structure, ratios)
        done = time.process_time()
    return planned - start, done - planned, dict(widths)


def main() -> None:
    parser = timing_parser(__doc__.splitlines()[0], "search_speed", 2)
    args = parser.parse_args()
    pin_to_core(parser, args)
    torch.set_num_threads(1)
    rows = []
    for spec, size in MODELS.items():
        runs = {"plain": [], "ours": []}
        for _ in range(args.repeats):
            for kind in runs:  # interleaved: a busy moment slows both alike
                runs[kind].append(timed(spec, size, kind == "ours"))
        assert all(r[2] == runs["plain"][0][2] for rs in runs.values() for r in rs), f"{spec}: widths differ"
        row = {"model": spec, "image_size": size}
        for kind, rs in runs.items():
            row[f"plan_s_{kind}"] = statistics.median(r[0] for r in rs)
            row[f"copy_s_{kind}"] = statistics.median(r[1] for r in rs)
        rows.append(row)
        print(row, flush=True)
    lines = ["### torch-pruning's dependency search, plain vs ours: `search_speed` (`benchmarks/search_speed.py`)", "",
             f"CPU seconds, median of {args.repeats}, one thread, plain and ours interleaved; the same widths in both.", "",
             "| model | px | plan, plain | plan, ours | | one pruned copy, plain | copy, ours | |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['model']} | {r['image_size']} | {r['plan_s_plain']:.1f} | {r['plan_s_ours']:.1f} | "
              f"{r['plan_s_plain'] / r['plan_s_ours']:.1f}x | {r['copy_s_plain']:.1f} | {r['copy_s_ours']:.1f} | "
              f"{r['copy_s_plain'] / r['copy_s_ours']:.1f}x |" for r in rows]
    save(args.name, {"command": " ".join(["python", "benchmarks/search_speed.py", *sys.argv[1:]]), "repeats": args.repeats,
                     "rows": rows}, "\n".join(lines))


if __name__ == "__main__":
    main()

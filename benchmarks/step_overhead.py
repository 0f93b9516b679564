"""What the training loop adds to a masked fine-tune's step on CPU, before and after 2026-12-06: masking the
gradients and the weights with bool masks (converted on every call) vs masks of the weights' dtype
(``prune.masks.mask_factors``), and the end-of-epoch check that the weights are finite, ``isfinite(p).all()``
per tensor vs one sum per tensor (``train.loop._finite``).

    python benchmarks/step_overhead.py [--models timm:vgg11,torchvision:resnet50] [--repeats 5]

One thread; the two forms alternate on the same model, so load on the machine hits both alike. Masks prune half
of every prunable weight at random; the gradients are random.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import save  # noqa: E402
from edgeprune.measure import prunable_weights  # noqa: E402
from edgeprune.prune.masks import apply_masks, mask_factors, mask_gradients  # noqa: E402
from edgeprune.train.loop import _finite  # noqa: E402
from zoo import build  # noqa: E402


def _masking(model, masks) -> None:  # what a step does: after backward, and after the optimizer's step
    mask_gradients(model, masks)
    apply_masks(model, masks)


def _isfinite_all(params) -> bool:  # the check before
    return all(bool(torch.isfinite(p).all()) for p in params)


def _ms(fn) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1e3


def measure(spec: str, repeats: int) -> dict:
    model, _, _ = build(spec)
    gen = torch.Generator().manual_seed(0)
    masks = {name: torch.rand(w.shape, generator=gen) < 0.5 for name, w in prunable_weights(model).items()}
    for p in model.parameters():
        p.grad = torch.randn(p.shape, generator=gen)
    factors = mask_factors(model, masks, "cpu")
    params = list(model.parameters())
    forms = {"mask_bool": lambda: _masking(model, masks), "mask_factors": lambda: _masking(model, factors),
             "check_isfinite_all": lambda: _isfinite_all(params), "check_sums": lambda: _finite(params)}
    times = {k: [] for k in forms}
    for _ in range(repeats):  # alternate: one round of every form, repeated
        for key, fn in forms.items():
            times[key].append(_ms(fn))
    ms = {k: statistics.median(v) for k, v in times.items()}
    return {"model": spec, "params": sum(p.numel() for p in params), "masked": sum(m.numel() for m in masks.values()),
            **{f"{k}_ms": v for k, v in ms.items()},
            "masking_speedup": ms["mask_bool"] / ms["mask_factors"],
            "check_speedup": ms["check_isfinite_all"] / ms["check_sums"]}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="timm:vgg11,torchvision:resnet50")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--name", default="step_overhead")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    torch.set_num_threads(1)
    rows = []
    for spec in args.models.split(","):
        rows.append(measure(spec, args.repeats))
        print(rows[-1], flush=True)
    lines = ["### A masked fine-tune's overhead per step and per epoch (`benchmarks/step_overhead.py`)", "",
             f"One thread, median of {args.repeats} alternating rounds. Masking: gradients and weights, once each "
             "(every step); check: whether every weight is finite (every epoch).", "",
             "| model | parameters | masking, bool masks ms | masking, factors ms | × | check, isfinite().all() ms | "
             "check, sums ms | × |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| `{r['model']}` | {r['params']:,} | {r['mask_bool_ms']:.0f} | {r['mask_factors_ms']:.0f} | "
              f"{r['masking_speedup']:.1f} | {r['check_isfinite_all_ms']:.0f} | {r['check_sums_ms']:.0f} | "
              f"{r['check_speedup']:.1f} |" for r in rows]
    save(args.name, {"rows": rows}, "\n".join(lines))


if __name__ == "__main__":
    main()

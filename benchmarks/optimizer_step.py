"""One optimizer step on CPU: torch's default (a Python loop over the parameters) vs its fused kernel, which the
training loop uses since 6de9fa9. Same updates (checked here: the parameters after three steps are compared).

    python benchmarks/optimizer_step.py [--models timm:vit_small_patch16_224,torchvision:resnet50] [--steps 10]

One thread; both variants alternate step by step on the same model, so load on the machine hits both alike.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import save  # noqa: E402
from zoo import build  # noqa: E402

OPTIMIZERS = {
    "adam": lambda params, **kw: torch.optim.Adam(params, lr=1e-3, **kw),
    "adamw": lambda params, **kw: torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01, **kw),
    "sgd": lambda params, **kw: torch.optim.SGD(params, lr=1e-2, momentum=0.9, nesterov=True, weight_decay=1e-4, **kw),
}


def _with_grads(model: torch.nn.Module) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(0)
    for p in model.parameters():
        p.grad = torch.randn(p.shape, generator=gen) * 1e-2
    return model


def measure(spec: str, name: str, steps: int) -> dict:
    model, _, _ = build(spec)
    default, fused = _with_grads(model), _with_grads(copy.deepcopy(model))
    opts = {"default": OPTIMIZERS[name](default.parameters(), foreach=False),
            "fused": OPTIMIZERS[name](fused.parameters(), fused=True)}
    for opt in opts.values():  # the state is created on the first step; three steps to compare updates
        for _ in range(3):
            opt.step()
    differ = max(float((a - b).detach().abs().max()) for a, b in zip(default.parameters(), fused.parameters()))
    times = {k: [] for k in opts}
    for _ in range(steps):
        for key, opt in opts.items():
            started = time.perf_counter()
            opt.step()
            times[key].append(time.perf_counter() - started)
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    return {"model": spec, "optimizer": name, "params": sum(p.numel() for p in model.parameters()),
            "default_ms": med["default"], "fused_ms": med["fused"], "speedup": med["default"] / med["fused"],
            "max_abs_difference_after_3_steps": differ}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="timm:vit_small_patch16_224,torchvision:resnet50")
    parser.add_argument("--optimizers", default="adam,adamw,sgd", help=f"of {', '.join(OPTIMIZERS)}")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--name", default="optimizer_step")
    args = parser.parse_args(argv)
    names = args.optimizers.split(",")
    bad = [n for n in names if n not in OPTIMIZERS]
    if bad or args.steps < 1:
        parser.error(f"--optimizers: unknown {bad}; allowed: {', '.join(OPTIMIZERS)}" if bad else "--steps must be >= 1")
    torch.set_num_threads(1)
    rows = []
    for spec in args.models.split(","):
        for name in names:
            rows.append(measure(spec, name, args.steps))
            print(rows[-1], flush=True)
    lines = ["### One optimizer step on CPU: default vs fused (`benchmarks/optimizer_step.py`)", "",
             f"One thread, median of {args.steps} alternating steps; the parameters after three steps of each compared.", "",
             "| model | parameters | optimizer | default ms | fused ms | speed-up | max difference |",
             "|---|---:|---|---:|---:|---:|---:|"]
    lines += [f"| `{r['model']}` | {r['params']:,} | {r['optimizer']} | {r['default_ms']:.1f} | {r['fused_ms']:.1f} | "
              f"{r['speedup']:.2f}x | {r['max_abs_difference_after_3_steps']:.1e} |" for r in rows]
    save(args.name, {"rows": rows}, "\n".join(lines))


if __name__ == "__main__":
    main()

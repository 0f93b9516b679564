"""Mask building at DeiT-B scale: 30 candidates' exact masks from one MaskBuilder, against torch.nn.utils.prune.

    python benchmarks/masks_deit_b.py [--candidates 30] [--torch-candidates 2] [--seed 0]

Model: edgeprune.models.create("hf-config:deit", num_classes=1000, in_channels=3, image_size=224), random
weights (86.3 M prunable weights in 74 Conv/Linear layers); magnitude scores.

* layerwise: ``--candidates`` per-layer sparsity vectors drawn uniformly from [0.3, 0.9] (stand-ins for
  10 strategies x 3 criteria), built with one ``MaskBuilder`` (a linear-time selection per layer; until 7c25c49, each layer sorted once).
* global: for each candidate, the global mask at the candidate's parameter-weighted sparsity (the matched
  single-criterion baseline of Mix-and-Match), from the same builder (one selection over all 86 M scores; until 7c25c49, one sort kept).
* torch: ``torch.nn.utils.prune.global_unstructured(..., L1Unstructured, amount=p)`` on the same layers at
  the same sparsities, timed per call including reading the masks back as bool. One call is a topk over
  86 M values, so only ``--torch-candidates`` calls are timed by default (to keep the run under 5 min);
  the 30-candidate torch time is that per-call mean x candidates and is labelled as extrapolated.

Every mask is checked for its exact pruned count (floor(s*n) per layer, round(p*N) global) and the global
masks are compared entry by entry with torch's. Peak RSS comes from resource.getrusage.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import save  # noqa: E402
from edgeprune import models, scores  # noqa: E402
from edgeprune.measure import prunable_weights  # noqa: E402
from edgeprune.prune.masks import MaskBuilder  # noqa: E402

NAME = "masks_deit_b"


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def torch_global(modules: dict, amount: float) -> dict[str, torch.Tensor]:
    """torch's global L1 pruning; returns the bool keep-masks and leaves the modules re-parametrised."""
    from torch.nn.utils import prune

    prune.global_unstructured([(m, "weight") for m in modules.values()], pruning_method=prune.L1Unstructured, amount=amount)
    return {name: m.weight_mask.bool() for name, m in modules.items()}


def undo_torch_prune(modules: dict) -> None:
    """Put the original weight Parameter back without copying (not timed)."""
    for m in modules.values():
        for key in [k for k, h in m._forward_pre_hooks.items() if hasattr(h, "_tensor_name")]:
            del m._forward_pre_hooks[key]
        orig = m._parameters.pop("weight_orig")
        del m._buffers["weight_mask"]
        delattr(m, "weight")
        m.register_parameter("weight", orig)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--candidates", type=int, default=30)
    ap.add_argument("--torch-candidates", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    start = time.perf_counter()
    load_start = os.getloadavg()[0]
    torch.manual_seed(args.seed)

    t = time.perf_counter()
    model = models.create("hf-config:deit", num_classes=1000, in_channels=3, image_size=224)
    build_s = time.perf_counter() - t
    weights = prunable_weights(model)
    sizes = {n: w.numel() for n, w in weights.items()}
    total = sum(sizes.values())
    module_of = dict(model.named_modules())
    modules = {n: module_of[n.rsplit(".", 1)[0]] for n in weights}
    print(f"model: {len(weights)} prunable layers, {total:,} weights, built in {build_s:.1f} s", flush=True)

    t = time.perf_counter()
    s = scores.compute("magnitude", model)
    scores_s = time.perf_counter() - t

    rng = np.random.default_rng(args.seed)
    candidates = [{n: float(v) for n, v in zip(weights, rng.uniform(0.3, 0.9, len(weights)))} for _ in range(args.candidates)]
    targets = [sum(math.floor(c[n] * sizes[n]) for n in sizes) / total for c in candidates]

    # -- ours, layerwise ---------------------------------------------------------------------------
    builder = MaskBuilder(s)
    layer_times = []
    layer_masks = []
    for c in candidates:
        t = time.perf_counter()
        layer_masks.append(builder.layerwise(c))
        layer_times.append(time.perf_counter() - t)
    layerwise_s = sum(layer_times)
    for c, masks in zip(candidates, layer_masks):
        for n, m in masks.items():
            assert int(m.numel() - m.count_nonzero()) == math.floor(c[n] * sizes[n]), n
    rss_layerwise = peak_rss_mib()
    print(f"layerwise: {args.candidates} candidates in {layerwise_s:.1f} s (first {layer_times[0]:.1f} s), "
          f"peak RSS {rss_layerwise:.0f} MiB", flush=True)
    del layer_masks

    # -- ours, global ------------------------------------------------------------------------------
    global_times = []
    global_masks = []
    for p in targets:
        t = time.perf_counter()
        global_masks.append(builder.global_(p))
        global_times.append(time.perf_counter() - t)
    global_s = sum(global_times)
    for p, masks in zip(targets, global_masks):
        assert sum(int(m.numel() - m.count_nonzero()) for m in masks.values()) == round(p * total)
    rss_global = peak_rss_mib()
    print(f"global: {args.candidates} candidates in {global_s:.1f} s (first {global_times[0]:.1f} s), "
          f"peak RSS {rss_global:.0f} MiB", flush=True)

    # -- torch.nn.utils.prune.global_unstructured --------------------------------------------------
    torch_times, mismatches, off_tie = [], [], []
    all_scores = torch.cat([s[n].reshape(-1) for n in weights])
    for i in range(min(args.torch_candidates, args.candidates)):
        t = time.perf_counter()
        ref = torch_global(modules, targets[i])
        torch_times.append(time.perf_counter() - t)
        undo_torch_prune(modules)
        # torch's topk breaks ties arbitrarily, ours by index: differences may only sit at the threshold value
        threshold = torch.kthvalue(all_scores, round(targets[i] * total)).values
        diff = {n: ref[n] != global_masks[i][n] for n in ref}
        mismatches.append(sum(int(d.sum()) for d in diff.values()))
        off_tie.append(sum(int((s[n][d] != threshold).sum()) for n, d in diff.items()))
        print(f"torch global_unstructured #{i + 1}: {torch_times[-1]:.1f} s, {mismatches[-1]} entries differ "
              f"({off_tie[-1]} not at a tie of the threshold)", flush=True)
    del global_masks
    torch_per_call = statistics.fmean(torch_times) if torch_times else float("nan")
    torch_total = torch_per_call * args.candidates
    ours_global_per_call = global_s / args.candidates

    result = {
        "settings": {"model": "hf-config:deit (default config, random weights)", "num_classes": 1000,
                     "image_size": 224, "criterion": "magnitude", "candidates": args.candidates,
                     "layer_sparsity_range": [0.3, 0.9], "torch_candidates_timed": len(torch_times),
                     "seed": args.seed},
        "prunable_layers": len(weights),
        "prunable_weights": total,
        "model_build_s": build_s,
        "magnitude_scores_s": scores_s,
        "layerwise": {"total_s": layerwise_s, "first_s": layer_times[0],
                      "rest_mean_s": statistics.fmean(layer_times[1:]) if len(layer_times) > 1 else None},
        "global": {"total_s": global_s, "first_s": global_times[0],
                   "rest_mean_s": statistics.fmean(global_times[1:]) if len(global_times) > 1 else None,
                   "targets": targets},
        "torch_global_unstructured": {"per_call_s": torch_times, "mean_per_call_s": torch_per_call,
                                      "extrapolated_total_s": torch_total, "mismatched_entries": mismatches,
                                      "mismatched_entries_not_at_threshold_tie": off_tie},
        "speedup_global_vs_torch": torch_per_call / ours_global_per_call,
        "peak_rss_mib": {"after_layerwise": rss_layerwise, "after_global": rss_global, "end": peak_rss_mib()},
        "wall_s": time.perf_counter() - start,
        "load_average_1min": {"start": load_start, "end": os.getloadavg()[0]},
    }
    n = args.candidates
    section = "\n".join([
        "### Exact masks at DeiT-B scale (`benchmarks/masks_deit_b.py`)",
        "",
        f"hf-config:deit (random weights), {len(weights)} prunable layers, {total:,} weights, magnitude scores; "
        f"{n} candidates (per-layer sparsities uniform in [0.3, 0.9]; global targets = each candidate's overall sparsity). "
        "Every mask is checked for its exact pruned count.",
        "",
        f"| what | {n} candidates (s) | first call (s) | later calls, mean (s) |",
        "|---|---:|---:|---:|",
        f"| MaskBuilder.layerwise (floor(s·n) per layer) | {layerwise_s:.1f} | {layer_times[0]:.1f} | "
        f"{result['layerwise']['rest_mean_s'] or 0:.2f} |",
        f"| MaskBuilder.global_ (round(p·N) overall) | {global_s:.1f} | {global_times[0]:.1f} | "
        f"{result['global']['rest_mean_s'] or 0:.2f} |",
        f"| torch.nn.utils.prune.global_unstructured (L1) | {torch_total:.1f} (extrapolated from {len(torch_times)} timed calls) | "
        f"{torch_times[0] if torch_times else float('nan'):.1f} | {torch_per_call:.2f} |",
        "",
        f"Global masks: {result['speedup_global_vs_torch']:.1f}x faster per candidate than torch "
        f"({ours_global_per_call:.2f} s vs {torch_per_call:.2f} s), "
        f"same pruned counts as torch; {sum(mismatches)} mask entries differ over {len(torch_times)} compared candidates, "
        f"{sum(off_tie)} of them away from a tie at the threshold (torch's topk breaks ties arbitrarily, ours by index). "
        f"Peak RSS {result['peak_rss_mib']['end']:.0f} MiB (model, scores and {n} candidates' masks "
        f"held at once). Whole run {result['wall_s']:.0f} s on a shared 2-core machine "
        f"(1-min load average {load_start:.1f} at start, {result['load_average_1min']['end']:.1f} at end: "
        "other jobs were running, so times are upper bounds).",
    ])
    save(NAME, result, section)
    print(section)


if __name__ == "__main__":
    main()

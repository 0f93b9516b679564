"""One call that measures everything a report shows for a model."""

from __future__ import annotations

import torch
from torch import nn

from edgeprune.measure.latency import latency
from edgeprune.measure.macs import macs
from edgeprune.measure.size import nonzeros, param_count, prunable_weights, sparse_bytes_bound, sparsity


def summarize(
    model: nn.Module,
    input_shape: tuple[int, int, int],
    *,
    latency_batches: tuple[int, ...] = (1,),
    latency_runs: int = 30,
    threads: int | None = None,
) -> dict:
    """Params, non-zeros, prunable weights, sparsity, dense/effective MACs per image, latency per batch."""
    report = macs(model, torch.zeros(1, *input_shape))
    prunable = sum(w.numel() for w in prunable_weights(model).values())
    out = {
        "params": param_count(model),
        "nonzeros": nonzeros(model),
        "prunable_weights": prunable,
        "sparsity": sparsity(model),
        **report.as_dict(),
    }
    for b in latency_batches:
        lat = latency(model, input_shape, batch_size=b, runs=latency_runs, threads=threads)
        out[f"latency_ms_b{b}"] = lat["median_ms"]
        out["threads"] = lat["threads"]
    return out


def size_metrics(model: nn.Module, example: torch.Tensor) -> dict:
    """What a run record holds of a model's size: sparsity, params, non-zeros, MACs per image, est. bytes."""
    report = macs(model, example[:1])
    return {
        "sparsity": sparsity(model),
        "params": param_count(model),
        "nonzeros": nonzeros(model),
        "macs": report.dense,
        "effective_macs": report.effective,
        "bytes_estimate": sparse_bytes_bound(model),
    }

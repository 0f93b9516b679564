"""Measurements: accuracy, size (params, non-zeros, sparsity, bytes), MACs and latency."""

from edgeprune.measure.accuracy import accuracy, predict_logits
from edgeprune.measure.latency import latency, machine_info
from edgeprune.measure.macs import MacsReport, macs
from edgeprune.measure.size import (
    checkpoint_bytes,
    nonzeros,
    param_count,
    prunable_weights,
    sparse_bytes_bound,
    sparsity,
)
from edgeprune.measure.summary import size_metrics, summarize

__all__ = [
    "accuracy",
    "predict_logits",
    "latency",
    "machine_info",
    "macs",
    "MacsReport",
    "checkpoint_bytes",
    "nonzeros",
    "param_count",
    "prunable_weights",
    "sparse_bytes_bound",
    "sparsity",
    "size_metrics",
    "summarize",
]

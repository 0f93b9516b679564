"""Variance-Based Pruning (Berisha et al., ICCV 2025): prune MLP hidden neurons of a trained network.

One pass of calibration data gives every MLP hidden neuron's post-activation mean and variance (the
input of ``mlp_out``); the lowest-variance neurons of the whole network are removed and their means are
folded into ``mlp_out``'s bias (mean-shift compensation). MLP blocks are found by layer roles, never by
names.

    pruned, stats = edgeprune.methods.vbp.prune(model, calib_loader, 0.5)

The pruning itself (blocks, statistics, :func:`prune`) is :mod:`edgeprune.methods.vbp_core`, re-exported
here. The whole method (budgets x seeds, KD fine-tune from the unpruned model, measurements, a resumable
run directory) is ``edgeprune.sweep(model, data, method="vbp", ...)`` (``edgeprune prune vbp``).
"""

from __future__ import annotations

from edgeprune.methods.vbp_core import (
    DEFAULT_MIN_KEEP,
    BlockStats,
    VbpStats,
    collect_statistics,
    example_input_for,
    find_mlp_blocks,
    prune,
    prune_with_statistics,
)

__all__ = [
    "DEFAULT_MIN_KEEP", "BlockStats", "VbpStats", "collect_statistics", "example_input_for", "find_mlp_blocks",
    "prune", "prune_with_statistics",
]

"""Deployment as one call: :func:`export` writes a model as ONNX and/or ExecuTorch (FP32, INT8, sparse), checks
every file in its runtime and records it all in ``export.json``; ``edgeprune export`` is this call.

* :mod:`~edgeprune.deploy.source`: what to export (a model, a checkpoint, an ``.epz``, a run directory) and on which data;
* :mod:`~edgeprune.deploy.pipeline`: the files, their parity, accuracies or task metrics, latency and ``export.json``;
* :mod:`~edgeprune.deploy.edge_parts`: the ExecuTorch, sparse-ONNX and side-by-side latency parts;
* :mod:`~edgeprune.deploy.task_metrics`: what a task other than classification reports (shared with ``measure``).
"""

from edgeprune.deploy.pipeline import Exported, export

__all__ = ["Exported", "export"]

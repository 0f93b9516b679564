"""Edge deployment: ONNX export checked in ONNX Runtime, INT8 quantization, compressed sparse artifacts.

* :func:`export_onnx` / :func:`export_verified` write ``model.onnx`` (dynamo exporter) and check it
  against PyTorch; :func:`ort_session`, :func:`ort_run`, :func:`ort_accuracy` run it in ONNX Runtime.
* :func:`quantize` makes a static (QDQ, calibrated) or dynamic INT8 model; :func:`evaluate_int8` is the
  one-call FP32-vs-INT8 accuracy (both in ONNX Runtime) and size comparison reports use.
* :mod:`edgeprune.export.sparse` writes/reads the ``.epz`` compressed sparse artifact.
"""

from edgeprune.export import sparse
from edgeprune.export.int8 import evaluate_int8, quantize
from edgeprune.export.onnx import (
    DEFAULT_OPSET,
    OPSET_RANGE,
    PARITY_TOLERANCE,
    export_onnx,
    export_verified,
    ort_accuracy,
    ort_run,
    ort_session,
    parity,
)

__all__ = [
    "DEFAULT_OPSET",
    "OPSET_RANGE",
    "PARITY_TOLERANCE",
    "export_onnx",
    "export_verified",
    "ort_accuracy",
    "ort_run",
    "ort_session",
    "parity",
    "quantize",
    "evaluate_int8",
    "sparse",
]

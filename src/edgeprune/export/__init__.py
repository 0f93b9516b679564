"""Edge deployment: ONNX export checked in ONNX Runtime, INT8 quantization, compressed sparse artifacts.

* :func:`export_onnx` / :func:`export_verified` write ``model.onnx`` (dynamo exporter) and check it
  against PyTorch; :func:`ort_session`, :func:`ort_run`, :func:`ort_accuracy` run it in ONNX Runtime.
* :func:`quantize` makes a static (QDQ, calibrated) or dynamic INT8 model; :func:`evaluate_int8` is the
  one-call FP32-vs-INT8 accuracy (both in ONNX Runtime) and size comparison reports use.
* :func:`export_executorch` writes an XNNPACK-lowered ``.pte`` (FP32 or PT2E INT8) checked in the
  ExecuTorch runtime (optional ``[edge]`` extra); :class:`Program` runs one, :func:`et_accuracy` scores it.
* :func:`export_openvino` writes OpenVINO IR (``model.xml`` + ``.bin``, FP32 or the static INT8 QDQ ONNX converted)
  checked in OpenVINO (optional ``[openvino]`` extra); :class:`Compiled` runs one, :func:`ov_accuracy` scores it.
* :func:`export_litert` writes a LiteRT ``.tflite`` (FP32 or ai-edge-quantizer static INT8) checked in LiteRT's
  interpreter (optional ``[litert]`` extra); :class:`Interpreter` runs one, :func:`lrt_accuracy` scores it.
* :func:`latency_ms` is one latency figure in ``"onnxruntime"``, ``"executorch"``, ``"openvino"`` or ``"litert"`` (what budgets such as
  ``latency<=2ms@executorch`` call); :func:`compare_latency` times artifacts side by side.
* :func:`sparse_onnx.write_sparse` rewrites an ONNX file with standard ``sparse_initializer``s (FP32/INT8).
* :mod:`edgeprune.export.sparse` writes/reads the ``.epz`` compressed sparse artifact.
"""

from edgeprune.export import sparse, sparse_onnx
from edgeprune.export.et_latency import RUNTIMES, check_runtime, et_latency, latency_ms
from edgeprune.export.et_latency import compare as compare_latency
from edgeprune.export.executorch import Program, et_accuracy, export_executorch
from edgeprune.export.int8 import evaluate_int8, quantize
from edgeprune.export.litert import Interpreter, export_litert, lrt_accuracy
from edgeprune.export.litert_latency import lrt_latency
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
from edgeprune.export.openvino import Compiled, export_openvino, ov_accuracy
from edgeprune.export.ov_latency import ov_latency

__all__ = [
    "RUNTIMES",
    "Compiled",
    "Interpreter",
    "Program",
    "check_runtime",
    "compare_latency",
    "et_accuracy",
    "et_latency",
    "export_executorch",
    "export_openvino",
    "export_litert",
    "lrt_accuracy",
    "lrt_latency",
    "ov_accuracy",
    "ov_latency",
    "latency_ms",
    "sparse_onnx",
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

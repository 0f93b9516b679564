"""Standard small files for unstructured models: ONNX with ``sparse_initializer``s (FP32 and INT8).

A weight initializer whose zeros make it worth it is replaced by a ``SparseTensorProto`` of the same
name: its non-zero values and their flat (linearised) ``int64`` indices, plus the dense shape. This is
plain ONNX (IR ≥ 6); stock ONNX Runtime densifies sparse initializers when it creates the session, so
every operator (Gemm, MatMul, Conv, DequantizeLinear of a QDQ INT8 model) sees the ordinary dense
weight: outputs equal the dense export's exactly, and the speed is the dense speed. Only the file shrinks.

Break-even: a tensor of ``n`` values of ``b`` bytes with ``nnz`` non-zeros costs ``nnz·(b + 8)`` bytes
sparse, so FP32 weights pay off below 1/3 density and INT8 weights below 1/9.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from edgeprune.errors import ModelError
from edgeprune.export.onnx import ort_run, ort_session
from edgeprune.utils.io import atomic_path
from edgeprune.utils.lazy import OnFirstUse

onnx = OnFirstUse("onnx")
helper = OnFirstUse("onnx.helper")
numpy_helper = OnFirstUse("onnx.numpy_helper")

INDEX_BYTES = 8  # ONNX sparse indices are int64
PARITY_TOLERANCE = 1e-5
# bytes per value of the initializer types worth storing sparse: onnx.TensorProto FLOAT, FLOAT16, INT8, UINT8
# (the ONNX standard's numbering, fixed)
_SPARSIFIABLE = {1: 4, 10: 2, 3: 1, 2: 1}


def _worth_it(array: np.ndarray, nnz: int, item: int) -> bool:
    return array.ndim >= 2 and nnz * (item + INDEX_BYTES) < array.size * item


def sparsify(source: str | Path, out: str | Path) -> dict:
    """Rewrite the ONNX file ``source`` to ``out`` (atomically) with sparse initializers where they are smaller.

    Weights (initializers of rank ≥ 2, FP32/FP16/INT8/UINT8) are converted; biases, scales, zero points and
    shape constants stay dense. The result must load in ONNX Runtime before it is written. Returns the
    bytes of both files and one entry per converted tensor (name, shape, nnz, density).
    """
    proto = onnx.load(str(source))
    graph = proto.graph
    kept, converted = [], []
    for init in graph.initializer:
        item = _SPARSIFIABLE.get(init.data_type)
        array = numpy_helper.to_array(init) if item else None
        nnz = int(np.count_nonzero(array)) if item else 0
        if not item or not _worth_it(array, nnz, item):
            kept.append(init)
            continue
        flat = array.reshape(-1)
        index = np.flatnonzero(flat)
        values = numpy_helper.from_array(flat[index], init.name)
        indices = numpy_helper.from_array(index.astype(np.int64), f"{init.name}.indices")
        graph.sparse_initializer.append(helper.make_sparse_tensor(values, indices, list(array.shape)))
        converted.append({"name": init.name, "shape": list(array.shape), "nnz": nnz, "density": nnz / array.size})
    del graph.initializer[:]
    graph.initializer.extend(kept)
    onnx.checker.check_model(proto)
    with atomic_path(out) as tmp:
        onnx.save(proto, str(tmp))
        ort_session(tmp)  # stock ONNX Runtime must load it before it replaces anything
    return {"path": str(out), "bytes": Path(out).stat().st_size, "dense_bytes": Path(source).stat().st_size,
            "sparse_tensors": converted, "index_dtype": "int64 (flat)"}


def check_same_outputs(dense: str | Path, sparse: str | Path, inputs: torch.Tensor,
                       tolerance: float = PARITY_TOLERANCE) -> float:
    """Max |ORT(sparse) - ORT(dense)| over ``inputs``; ModelError above ``tolerance``."""
    diff = float(np.abs(ort_run(ort_session(sparse), inputs) - ort_run(ort_session(dense), inputs)).max())
    if not diff <= tolerance:
        raise ModelError(f"sparse ONNX {str(sparse)!r} does not match its dense export {str(dense)!r}: max abs "
                         f"difference {diff:.3g} > {tolerance:g}")
    return diff


def write_sparse(dense: str | Path, out: str | Path, inputs: torch.Tensor, tolerance: float = PARITY_TOLERANCE) -> dict:
    """:func:`sparsify` ``dense`` to ``out`` and check in ONNX Runtime that both give the same outputs on ``inputs``;
    ``out`` is removed again when they do not."""
    start = time.perf_counter()
    info = sparsify(dense, out)
    try:
        info["max_abs_diff_to_dense"] = check_same_outputs(dense, out, inputs, tolerance)
    except ModelError:
        Path(out).unlink(missing_ok=True)
        raise
    info.update({"ratio_to_dense": info["dense_bytes"] / info["bytes"], "seconds": time.perf_counter() - start})
    return info

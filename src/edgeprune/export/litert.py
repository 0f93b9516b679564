"""LiteRT (formerly TensorFlow Lite) export: a ``.tflite`` flatbuffer converted from PyTorch, checked in LiteRT's interpreter.

``litert_torch.convert`` captures the model (eval mode) with ``torch.export`` at a fixed batch (1 by default, what a
device runs; a ViT's reshapes bake the batch in, so a LiteRT program keeps the batch it was converted at, as an
ExecuTorch one does) and lowers it to TFLite ops; inputs of another size run in padded chunks of that batch. The file
then runs in ``ai_edge_litert``'s interpreter (one thread, its default XNNPACK delegate) and must match PyTorch on
every output within the tolerance, on the whole parity batch and on batch 1, before it is written. An operator with no
LiteRT lowering is refused in one line naming it.

INT8: ``ai-edge-quantizer``'s static recipe (``static_wi8_ai8``: INT8 weights, INT8 activations calibrated on batches
of the training data) quantizes the FP32 file. The result is integer end to end, its input and output tensors too:
:class:`Interpreter` quantizes inputs and dequantizes outputs with the scales stored in the file, as a device would.

``litert-torch`` is the optional ``[litert]`` extra; without it every entry point raises DependencyError.
"""

from __future__ import annotations

import functools
import re
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from torch import nn

from edgeprune import tasks as tasks_lib
from edgeprune.errors import ConfigError, DependencyError, ModelError, check_positive
from edgeprune.export.executorch import FlatOutputs, batch_of, et_accuracy
from edgeprune.export.onnx import (
    PARITY_TOLERANCE,
    describe_export_failure,
    in_chunks,
    logit_scale,
    max_difference,
    model_name,
    parity_failure,
    parity_limit,
    quiet_exporters,
    runner_metrics,
)
from edgeprune.models import logits_only
from edgeprune.utils.io import atomic_path
from edgeprune.utils.native import native_output_hidden

SUFFIX = ".tflite"
COMPUTE_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "BATCH_MATMUL", "TRANSPOSE_CONV")  # the MAC ops
INSTALL_HINT = "pip install 'edgeprune[litert]'"


@functools.cache
def litert() -> SimpleNamespace:
    """The LiteRT entry points edgeprune uses; DependencyError (one line, how to install) without the extra."""
    try:
        # noqa reasons: litert-torch is the optional [litert] extra, imported only when LiteRT is asked for
        with native_output_hidden():  # absl's and oneDNN's start-up lines
            import litert_torch  # noqa: PLC0415
            from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415
            from ai_edge_quantizer import quantizer, recipe  # noqa: PLC0415
            from litert_torch import progress  # noqa: PLC0415
            from litert_torch.version import __version__  # noqa: PLC0415
    except ImportError as exc:
        raise DependencyError(f"LiteRT export needs the litert-torch package ({str(exc).splitlines()[0][:120]}); "
                              f"{INSTALL_HINT}") from None
    progress.console.quiet = True  # its rich console prints every conversion stage
    return SimpleNamespace(convert=litert_torch.convert, Interpreter=Interpreter, Quantizer=quantizer.Quantizer,
                           static_int8=recipe.static_wi8_ai8, version=__version__)


def describe_conversion_failure(exc: BaseException) -> str:
    """One line naming the operator LiteRT has no lowering for, else the export failure's own line."""
    match = re.search(r"Lowering not found: ([\w.]+?)(?:\.default|\.\w+)?$", str(exc), flags=re.MULTILINE)
    if match:
        return f"op {match.group(1)} has no LiteRT lowering"
    # a converter pass failing, often on a TFLite op: "<path>/linear.py:134:0: error: 'tfl.batch_matmul' op found ..."
    failed = re.search(r"([^\s:]+\.py):(\d+):\d+: error: (?:'([\w.]+)' op )?([^\n]+)", str(exc))
    if failed:
        where = f"{re.sub(r'.*(?:site|dist)-packages/', '', failed.group(1))}:{failed.group(2)}"
        reason = failed.group(4).strip()
        if failed.group(3):
            return f"LiteRT's converter rejects op {failed.group(3)} ({reason}) from {where}"
        return f"LiteRT's converter fails ({reason}) at {where}"
    return describe_export_failure(exc)


def convert(model: nn.Module, example: torch.Tensor, name: str = "the model") -> bytes:
    """The ``.tflite`` bytes of ``model`` (eval mode) captured at ``example``'s batch; ModelError (one line, naming the
    operator) when it cannot be converted."""
    lib = litert()
    was_training = model.training
    model.eval()
    try:
        with quiet_exporters(), native_output_hidden(), torch.no_grad():
            return bytes(lib.convert(model, (example,)).model_content())
    except Exception as exc:  # noqa: BLE001  (torch.export and the lowering raise many types; all mean "cannot convert")
        raise ModelError(f"model {name!r} cannot be converted to LiteRT: {describe_conversion_failure(exc)}") from None
    finally:
        model.train(was_training)


def quantize_int8(buffer: bytes, calibration, batch: int) -> tuple[bytes, int]:
    """(INT8 ``.tflite`` bytes, calibration images): ai-edge-quantizer's static INT8 recipe on ``buffer``, calibrated on
    ``calibration`` (input batches, split into the program's fixed ``batch``)."""
    lib = litert()
    name = Interpreter(buffer).input_name
    samples = [{name: chunk.numpy()} for x in calibration for chunk in x.split(batch) if len(chunk) == batch]
    if not samples:
        raise ConfigError("INT8 LiteRT export needs calibration batches; none were given")
    with quiet_exporters(), native_output_hidden():  # a progress bar, a warning that calibration keeps every tensor
        quantizer = lib.Quantizer(buffer, lib.static_int8())
        result = quantizer.quantize(quantizer.calibrate({"serving_default": samples}, num_threads=1),
                                    enable_progress_report=False)
    return bytes(result.quantized_model), len(samples) * batch


class Interpreter:
    """A ``.tflite`` file (or its bytes) loaded in LiteRT's interpreter with ``threads`` threads; ``run(x)`` takes a
    batch of any size (padded chunks of the program's fixed batch), float in and out even for an INT8 program."""

    def __init__(self, source: str | Path | bytes, threads: int = 1):
        check_positive("threads", threads)
        make = litert().Interpreter
        try:
            with native_output_hidden():  # "Created TensorFlow Lite XNNPACK delegate for CPU."
                self.interpreter = (make(model_content=source, num_threads=threads) if isinstance(source, bytes)
                                    else make(model_path=str(source), num_threads=threads))
                self.interpreter.allocate_tensors()
        except Exception as exc:  # noqa: BLE001  (ValueError / RuntimeError with the runtime's text)
            where = "program bytes" if isinstance(source, bytes) else repr(str(source))
            raise ModelError(f"LiteRT cannot load {where}: {str(exc).splitlines()[0][:200]}") from None
        signature = self.interpreter.get_signature_list()["serving_default"]
        self.input_name = signature["inputs"][0]
        self.output_names = sorted(signature["outputs"], key=lambda n: int(re.sub(r"\D", "", n) or 0))  # output_0, _1...
        self.runner = self.interpreter.get_signature_runner()
        details = self.runner.get_input_details()[self.input_name]
        self.max_batch = int(details["shape"][0])
        self.input_shape = tuple(int(d) for d in details["shape"][1:])
        self.input_dtype, self.input_quant = details["dtype"], details["quantization"]
        outputs = self.runner.get_output_details()
        self.output_quant = [outputs[n]["quantization"] if outputs[n]["dtype"] != np.float32 else None
                             for n in self.output_names]

    def feed(self, x: np.ndarray) -> np.ndarray:
        """``x`` as the program takes it: float, or quantized with the input's scale for an INT8 program."""
        if self.input_dtype == np.float32:
            return np.ascontiguousarray(x, dtype=np.float32)
        scale, zero = self.input_quant
        info = np.iinfo(self.input_dtype)
        return np.clip(np.round(x / scale) + zero, info.min, info.max).astype(self.input_dtype)

    def outputs(self, x: np.ndarray) -> list[np.ndarray]:
        """Every output of one call on exactly ``x`` (the program's batch), dequantized."""
        results = self.runner(**{self.input_name: self.feed(x)})
        return [results[n] if q is None else (results[n].astype(np.float32) - q[1]) * q[0]
                for n, q in zip(self.output_names, self.output_quant)]

    def run_all(self, x: torch.Tensor | np.ndarray) -> list[np.ndarray]:
        x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        return in_chunks(self.outputs, np.ascontiguousarray(x, dtype=np.float32), self.max_batch)

    def run(self, x: torch.Tensor | np.ndarray) -> np.ndarray:
        """The logits (the first output) for a batch of any size."""
        return self.run_all(x)[0]


def compute_dtypes(interpreter: Interpreter) -> dict[str, int]:
    """{dtype: count} of the inputs of the ops that do the MACs (``int8``: integer kernels; ``float32``): evidence that
    an INT8 program computes in INT8, not dequantized to FP32."""
    tensors = interpreter.interpreter.get_tensor_details()
    counts: dict[str, int] = {}
    for op in interpreter.interpreter._get_ops_details():  # the only listing of a program's ops and their tensors
        if op["op_name"] in COMPUTE_OPS:
            dtype = np.dtype(tensors[op["inputs"][0]]["dtype"]).name
            counts[dtype] = counts.get(dtype, 0) + 1
    return dict(sorted(counts.items()))


lrt_accuracy = et_accuracy  # (top-1, images) of a LiteRT program: ExecuTorch's count reads any runner with run(x) -> logits
lrt_metrics = runner_metrics("LiteRT program")  # the task's metrics of a LiteRT program; a detector's (its dense part) refused


def lrt_parity(model: nn.Module, interpreter: Interpreter, inputs: torch.Tensor) -> float:
    """Max |LiteRT - PyTorch| over ``inputs`` and every output of the model (eval mode)."""
    return max_difference(model, inputs, interpreter.run_all(inputs), "the LiteRT program")


def export_litert(model: nn.Module, path: str | Path, inputs: torch.Tensor, *, batch: int = 1, int8: bool = False,
                  calibration=None, tolerance: float = PARITY_TOLERANCE) -> dict:
    """Write ``model`` as a ``.tflite`` program of fixed ``batch`` at ``path``, checked in LiteRT's interpreter on
    ``inputs`` (the whole batch, in padded chunks, and batch 1).

    FP32: within ``tolerance`` of PyTorch on every output (relative above logits of 1), else ModelError and nothing is
    written. INT8 (``calibration``: an iterable of training batches): ``max_abs_diff_fp32`` recorded, not enforced
    (measure the accuracy with :func:`lrt_accuracy`); ``compute_dtypes`` shows the MAC ops run on int8 tensors.
    """
    litert()  # the install hint before any export
    check_positive("batch", batch)
    if int8 and calibration is None:
        raise ConfigError("INT8 LiteRT export needs calibration data; pass --dataset (its training split is used)")
    path, name = Path(path), model_name(model)
    model = tasks_lib.current().deployable(model)
    if isinstance(tasks_lib.current(), tasks_lib.Classification):
        model = logits_only(model, inputs[:1])  # a dict or tuple output: the program keeps the logits
    else:
        model = FlatOutputs(model).train(model.training)  # every output tensor, in pytree order, parity on each
    start = time.perf_counter()
    buffer = convert(model, batch_of(inputs, batch), name)
    info: dict = {"format": "litert", "litert_torch": litert().version, "batch": batch,
                  "precision": "INT8 (ai-edge-quantizer static)" if int8 else "FP32"}
    if int8:
        buffer, images = quantize_int8(buffer, calibration, batch)
        info["quantization"] = {"scheme": "ai-edge-quantizer static_wi8_ai8: INT8 weights and activations (min/max)",
                                "calibration_images": images}
    interpreter = Interpreter(buffer)
    diff = max(lrt_parity(model, interpreter, x) for x in (inputs, inputs[:1]))
    scale = logit_scale(model, inputs)
    limit = parity_limit(tolerance, scale)
    if not int8 and not diff <= limit:  # also catches NaN
        raise parity_failure("LiteRT", name, diff, limit, scale)
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(buffer)
    info.update({"path": str(path), "bytes": len(buffer), "compute_dtypes": compute_dtypes(interpreter),
                 "input_shape": list(inputs.shape[1:]), "max_abs_diff" if not int8 else "max_abs_diff_fp32": diff,
                 "tolerance": None if int8 else limit, "logit_scale": scale, "parity_inputs": len(inputs),
                 "seconds": time.perf_counter() - start})
    return info

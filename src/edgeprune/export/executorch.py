"""ExecuTorch export: a ``.pte`` program lowered to XNNPACK, checked in the ExecuTorch runtime.

``torch.export`` captures the model (eval mode) at a fixed batch (1 by default: what a device runs, and
what XNNPACK plans best) or with a batch dimension dynamic up to ``max_batch``,
``to_edge_transform_and_lower(..., partitioner=[XnnpackPartitioner()])`` hands every subgraph XNNPACK can
run to its delegate, and the rest runs on ExecuTorch's portable kernels. The program then runs in
``executorch.runtime`` on the parity inputs and must match PyTorch within the tolerance before the file
is moved into place. Operators left outside the delegate are reported per op kind (``outside_delegate``);
an operator that no kernel of this runtime can run is refused in one line naming it.

Dynamic batches are fragile in ExecuTorch 1.5: a delegate output that feeds a portable kernel keeps its
planned (largest) shape, so a smaller batch fails at run time ("Attempted to resize a static tensor"). The
parity check runs batch 1 as well, so such a program is refused (ModelError) rather than written.

INT8 (``int8=True``): PT2E post-training quantization with the XNNPACK quantizer (symmetric per-channel
INT8 weights, INT8 activations calibrated on batches of the training data), then the same lowering; the
quantized graph runs inside XNNPACK.

``executorch`` is the optional ``[edge]`` extra; without it every entry point raises DependencyError
telling how to install it.
"""

from __future__ import annotations

import functools
import re
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from torch import nn
from torch.utils import _pytree as pytree

from edgeprune import tasks as tasks_lib
from edgeprune.data.loaders import batches as checked_batches
from edgeprune.errors import ConfigError, DependencyError, ModelError, check_positive
from edgeprune.export.onnx import (
    PARITY_TOLERANCE,
    check_whole_model,
    describe_export_failure,
    logit_scale,
    model_name,
    output_structure,
    parity_failure,
    parity_limit,
    parse_batch,
    quiet_exporters,
)
from edgeprune.models import logits_only
from edgeprune.utils.io import atomic_path
from edgeprune.utils.native import native_output_hidden

SUFFIX = ".pte"
DEFAULT_MAX_BATCH = 32
INSTALL_HINT = "pip install 'edgeprune[edge]'"
# graph bookkeeping, not operators that run: delegate calls, tuple unpacking, symbolic sizes
_BOOKKEEPING = {"executorch_call_delegate", "getitem", "aten::sym_size"}


@functools.cache
def executorch() -> SimpleNamespace:
    """The executorch entry points edgeprune uses; DependencyError (one line, how to install) without the extra."""
    try:
        # noqa reasons: executorch is the optional [edge] extra, imported only when ExecuTorch is asked for
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner  # noqa: PLC0415
        from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (  # noqa: PLC0415
            XNNPACKQuantizer,
            get_symmetric_quantization_config,
        )
        from executorch.exir import to_edge_transform_and_lower  # noqa: PLC0415
        from executorch.extension.pybindings import portable_lib  # noqa: PLC0415
        from executorch.runtime import Runtime  # noqa: PLC0415
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e  # noqa: PLC0415
    except ImportError as exc:
        raise DependencyError(f"ExecuTorch export needs the executorch package ({str(exc).splitlines()[0][:120]}); "
                              f"{INSTALL_HINT}") from None
    return SimpleNamespace(
        XnnpackPartitioner=XnnpackPartitioner, XNNPACKQuantizer=XNNPACKQuantizer,
        quant_config=get_symmetric_quantization_config, to_edge=to_edge_transform_and_lower,
        portable_lib=portable_lib, Runtime=Runtime, prepare_pt2e=prepare_pt2e, convert_pt2e=convert_pt2e,
    )


@functools.cache
def runtime_kernels() -> frozenset[str]:
    """Operator names (``aten::sort``, ...) this ExecuTorch runtime has a kernel for, overloads stripped."""
    return frozenset(name.split(".", 1)[0] for name in executorch().portable_lib._get_operator_names())


def _op_name(target) -> str:
    schema = getattr(target, "_schema", None)
    if schema is not None:
        return schema.name
    return getattr(target, "__name__", str(target))


def outside_delegate(graph_module) -> dict[str, int]:
    """{operator: count} of the call nodes of a lowered graph that stayed outside the XNNPACK delegate.

    Python ``operator`` calls on symbolic sizes (``mul``, ``floordiv`` of a dynamic batch) are shape
    arithmetic the runtime's prim ops do, not tensor operators, and are not listed.
    """
    counts = Counter(_op_name(n.target) for n in graph_module.graph.nodes
                     if n.op == "call_function" and getattr(n.target, "__module__", None) != "_operator")
    return {op: c for op, c in sorted(counts.items()) if op not in _BOOKKEEPING}


def delegated_calls(graph_module) -> int:
    return sum(1 for n in graph_module.graph.nodes
               if n.op == "call_function" and _op_name(n.target) == "executorch_call_delegate")


def _not_core_aten(text: str) -> str | None:
    match = re.search(r"Operator torch\._ops\.([\w.]+) is not in Core ATen opset", text)
    return match.group(1) if match else None


def _capture(model: nn.Module, example: torch.Tensor, batch, max_batch: int, name: str):
    dynamic = ({0: torch.export.Dim("batch", min=1, max=max_batch)},) if batch == "dynamic" else None
    try:
        with quiet_exporters(), torch.no_grad():
            return torch.export.export(model, (example,), dynamic_shapes=dynamic)
    except Exception as exc:  # noqa: BLE001  (torch.export raises many types; all mean "cannot be captured")
        raise ModelError(f"model {name!r} cannot be exported to ExecuTorch: {describe_export_failure(exc)}") from None


def _quantize(program, example, calibration, batch, max_batch: int, name: str):
    """PT2E: prepare with the XNNPACK quantizer (per-channel INT8 weights), calibrate, convert, re-capture."""
    et = executorch()
    quantizer = et.XNNPACKQuantizer().set_global(et.quant_config(is_per_channel=True))
    with quiet_exporters():
        prepared = et.prepare_pt2e(program.module(), quantizer)
        images = 0
        with torch.no_grad():
            for x in calibration:
                # a fixed-batch capture takes exactly that batch (a ViT's class token is expanded to it)
                for chunk in (x.split(batch) if isinstance(batch, int) else [x[:max_batch]]):
                    if isinstance(batch, int) and len(chunk) != batch:
                        continue
                    prepared(chunk)
                    images += len(chunk)
        if not images:
            raise ConfigError("INT8 ExecuTorch export needs calibration batches; none were given")
        converted = et.convert_pt2e(prepared)
    return _capture(converted, example, batch, max_batch, name), converted, images


def lower(model: nn.Module, example: torch.Tensor, *, batch=1, max_batch: int = DEFAULT_MAX_BATCH,
          calibration=None, name: str | None = None) -> tuple[bytes, dict, nn.Module | None]:
    """(``.pte`` bytes, lowering info, PT2E reference model or None) for ``model`` on inputs like ``example``.

    ``calibration`` (an iterable of input batches) switches INT8 on. Raises ModelError naming the operator
    when the model cannot be captured, is not expressible in Core ATen, or leaves an operator outside the
    delegate that this runtime has no kernel for.
    """
    et = executorch()
    batch = parse_batch(batch)
    check_positive("max batch", max_batch)
    name = name or model_name(model)
    was_training = model.training
    model.eval()
    info: dict = {"batch": batch, "max_batch": max_batch if batch == "dynamic" else batch, "int8": calibration is not None}
    try:
        program = _capture(model, example, batch, max_batch, name)
        reference = None
        if calibration is not None:
            program, reference, images = _quantize(program, example, calibration, batch, max_batch, name)
            info["quantization"] = {"scheme": "PT2E XNNPACKQuantizer, symmetric per-channel INT8 weights, "
                                              "INT8 activations (static)", "calibration_images": images}
        try:
            with quiet_exporters():
                edge = et.to_edge(program, partitioner=[et.XnnpackPartitioner()])
        except Exception as exc:  # noqa: BLE001  (exir raises SpecViolationError and others)
            op = _not_core_aten("\n".join(str(e) for e in (exc, exc.__cause__) if e))
            why = (f"op {op} is not in the Core ATen opset (no XNNPACK or portable kernel runs it)" if op
                   else describe_export_failure(exc))
            raise ModelError(f"model {name!r} cannot be lowered to ExecuTorch: {why}") from None
        graph = edge.exported_program().graph_module
        outside = outside_delegate(graph)
        missing = [op for op in outside if op not in runtime_kernels()]
        if missing:
            raise ModelError(f"model {name!r} cannot be lowered to ExecuTorch: op {missing[0]} is not delegated to "
                             f"XNNPACK and this ExecuTorch runtime has no kernel for it")
        info.update({"delegated_subgraphs": delegated_calls(graph), "outside_delegate": outside})
        buffer = edge.to_executorch().buffer
    finally:
        model.train(was_training)
    return buffer, info, reference


# ----------------------------------------------------------------------------------------------------
# the ExecuTorch runtime
# ----------------------------------------------------------------------------------------------------


class Program:
    """A loaded ``.pte`` method; ``run(x)`` takes a batch of any size (chunks of the planned batch)."""

    def __init__(self, source: str | Path | bytes):
        et = executorch()
        try:
            # the Method points into the program (and its bytes): keep the program alive as long as the method
            with native_output_hidden():  # its CPU probing ("[cpuinfo_utils.cpp:71] Reading file ...")
                self.program = et.Runtime.get().load_program(source if isinstance(source, bytes) else Path(source))
                self.method = self.program.load_method("forward")
        except Exception as exc:  # noqa: BLE001  (the runtime raises RuntimeError / ValueError with its own text)
            where = "program bytes" if isinstance(source, bytes) else repr(str(source))
            raise ModelError(f"ExecuTorch runtime cannot load {where}: {str(exc).splitlines()[0][:200]}") from None
        meta = self.method.metadata.input_tensor_meta(0)
        self.max_batch = int(meta.sizes()[0])
        self.input_shape = tuple(int(d) for d in meta.sizes()[1:])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.method.execute([x.contiguous()])[0]

    def outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every output of one call."""
        return list(self.method.execute([x.contiguous()]))

    def run(self, x: torch.Tensor | np.ndarray) -> np.ndarray:
        """Logits for a batch of any size: chunks of the planned (largest) batch, the last one padded with
        zeros (their logits dropped), so a fixed-batch program runs it too."""
        return self.run_all(x)[0]

    def run_all(self, x: torch.Tensor | np.ndarray) -> list[np.ndarray]:
        """Every output for a batch of any size, as :meth:`run` runs it."""
        x = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).float()
        parts = []
        for i in range(0, len(x), self.max_batch):
            chunk = x[i:i + self.max_batch]
            n = len(chunk)
            if n < self.max_batch:
                chunk = torch.cat([chunk, chunk.new_zeros((self.max_batch - n, *chunk.shape[1:]))])
            parts.append([o.detach().numpy()[:n] for o in self.outputs(chunk)])
        return [np.concatenate(outs) for outs in zip(*parts)]


def et_accuracy(program: Program, data, batch_size: int = 256, what: str = "test data") -> tuple[float, int]:
    """(top-1 accuracy in [0, 1], images) of an ExecuTorch program on a dataset or DataLoader."""
    correct = total = 0
    for x, y in checked_batches(data, batch_size, what):
        correct += int((program.run(x).argmax(1) == y.numpy()).sum())
        total += len(y)
    return (correct / total if total else float("nan")), total


class ProgramModel(nn.Module):
    """An ExecuTorch program behind a PyTorch forward, like :class:`~edgeprune.export.onnx.OrtModel`: its outputs
    (every tensor of the model's output, in pytree order, as :func:`export_executorch` writes them under a task
    other than classification) rebuilt in the structure the model returns."""

    def __init__(self, program: Program, model: nn.Module, example: torch.Tensor):
        super().__init__()
        self.program = program
        self.structure = output_structure(model, example)

    def forward(self, x: torch.Tensor):
        return pytree.tree_unflatten([torch.from_numpy(o) for o in self.program.run_all(x)], self.structure)


def et_metrics(program: Program, model: nn.Module, example: torch.Tensor, data, task, batch_size: int = 256) -> dict[str, float]:
    """The task's metrics of an ExecuTorch program exported from ``model`` on ``data``; a detector's program (its
    dense part only) is refused in one line, as :func:`~edgeprune.export.onnx.ort_metrics` refuses its ONNX file."""
    check_whole_model(task, model, "ExecuTorch program")
    return task.evaluate(ProgramModel(program, model, example), data, batch_size)


@torch.no_grad()
def et_parity(reference: nn.Module, program: Program, inputs: torch.Tensor, *, exact_batch: bool = False) -> float:
    """Max |ExecuTorch output - reference output| over ``inputs`` and every output (an nn.Module in eval mode; a
    captured PT2E graph, which has no train/eval switch, as it is). ``exact_batch`` runs ``inputs`` as one call of
    their own batch size (a dynamic-batch program), not padded chunks."""
    if isinstance(reference, torch.fx.GraphModule):  # captured at the program's batch: run it in padded chunks
        size = len(inputs) if exact_batch else program.max_batch
        chunks = []
        for i in range(0, len(inputs), size):
            chunk = inputs[i:i + size]
            pad = chunk.new_zeros((size - len(chunk), *chunk.shape[1:]))
            chunks.append([t.float()[:len(chunk)] for t in _leaves(reference(torch.cat([chunk, pad])))])
        expected = [torch.cat(outs).numpy() for outs in zip(*chunks)]
    else:
        was_training = reference.training
        reference.eval()
        try:
            expected = [t.float().numpy() for t in _leaves(reference(inputs))]
        finally:
            reference.train(was_training)
    got = [o.detach().numpy() for o in program.outputs(inputs)] if exact_batch else program.run_all(inputs)
    if len(got) != len(expected):
        raise ModelError(f"the ExecuTorch program has {len(got)} outputs but the model returns {len(expected)} tensors")
    return max(float(np.abs(g - e).max()) for g, e in zip(got, expected))


def _leaves(output) -> list[torch.Tensor]:
    return [t for t in pytree.tree_leaves(output) if isinstance(t, torch.Tensor)]


class FlatOutputs(nn.Module):
    """``model`` with its output as the flat tuple of its tensors (a dict or nested output, for a runtime)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return tuple(_leaves(self.model(x)))


def batch_of(inputs: torch.Tensor, size: int) -> torch.Tensor:
    """``inputs`` repeated along the batch to exactly ``size`` examples (images or 1-D sequences)."""
    return inputs.repeat(size // len(inputs) + 1, *[1] * (inputs.dim() - 1))[:size]


def export_executorch(
    model: nn.Module,
    path: str | Path,
    inputs: torch.Tensor,
    *,
    batch=1,
    max_batch: int = DEFAULT_MAX_BATCH,
    int8: bool = False,
    calibration=None,
    tolerance: float = PARITY_TOLERANCE,
) -> dict:
    """Write ``model`` as an XNNPACK-lowered ``.pte`` to ``path``, checked in the ExecuTorch runtime.

    ``batch`` is a fixed batch size (default 1; ``inputs`` run in padded chunks of it) or ``"dynamic"`` (up
    to ``max_batch``). FP32: the runtime's logits on ``inputs`` (whole batch, and batch 1 when the batch is
    dynamic) must be
    within ``tolerance`` of PyTorch's, else ModelError and nothing is written. INT8 (``int8=True``,
    ``calibration`` an iterable of training batches): ``max_abs_diff`` is measured against the PT2E
    reference (the same quantization simulated in PyTorch) and ``max_abs_diff_fp32`` against the FP32 model;
    neither is enforced (use :func:`et_accuracy` on the test set). Returns a dict with ``bytes``,
    ``outside_delegate`` ({op: count}), ``delegated_subgraphs``, ``max_abs_diff`` and ``seconds``.
    """
    path, name = Path(path), model_name(model)
    model = tasks_lib.current().deployable(model)  # a detector: its dense part (see export_onnx)
    if int8 and calibration is None:
        raise ConfigError("INT8 ExecuTorch export needs calibration data; pass --dataset (its training split is used)")
    batch = parse_batch(batch)
    size = min(len(inputs), max_batch) if batch == "dynamic" else batch
    example = batch_of(inputs, size)
    if batch == "dynamic" and len(example) < 2:
        example = batch_of(example, 2)  # torch.export specialises a batch of 1
    start = time.perf_counter()
    if isinstance(tasks_lib.current(), tasks_lib.Classification):
        model = logits_only(model, inputs[:1])  # a dict or tuple output: the program keeps the logits
    else:
        model = FlatOutputs(model).train(model.training)  # every output tensor, in pytree order, parity on each
    buffer, info, reference = lower(model, example, batch=batch, max_batch=max_batch,
                                    calibration=calibration if int8 else None, name=name)
    program = Program(buffer)
    checked = [(inputs, False)] + ([(inputs[:1], True)] if batch == "dynamic" else [])
    try:
        diff = max(et_parity(model if reference is None else reference, program, x, exact_batch=e) for x, e in checked)
        if int8:
            info["max_abs_diff_fp32"] = max(et_parity(model, program, x, exact_batch=e) for x, e in checked)
    except RuntimeError as exc:
        raise ModelError(f"the ExecuTorch program of {name!r} fails in the runtime at batch {batch} "
                         f"({str(exc).splitlines()[0][:120]}); export with a fixed batch (batch=1)") from None
    scale = logit_scale(model, inputs)
    limit = parity_limit(tolerance, scale)
    if not int8 and not diff <= limit:  # also catches NaN
        raise parity_failure("ExecuTorch", name, diff, limit, scale)
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(buffer)
    info.update({"path": str(path), "bytes": len(buffer), "format": "executorch", "backend": "XNNPACK",
                 "input_shape": list(inputs.shape[1:]), "max_abs_diff": diff,
                 "parity_against": "PT2E reference (simulated INT8)" if int8 else "PyTorch FP32",
                 "tolerance": None if int8 else limit, "logit_scale": scale, "parity_inputs": len(inputs),
                 "seconds": time.perf_counter() - start})
    return info


def calibration_batches(data, batches: int = 16, batch_size: int = 32, seed: int = 0):
    """The first ``batches`` input batches of ``data``: shuffled batches of a training dataset (augmentation
    off, ``seed``), as ONNX Runtime's INT8 calibration reads them, or a DataLoader's own batches."""
    check_positive("calibration batches", batches)
    plain = data.with_augment(False) if hasattr(data, "with_augment") else data
    for i, (x, _) in enumerate(checked_batches(plain, batch_size, "calibration data", shuffle=True, seed=seed)):
        if i >= batches:
            return
        yield x

"""ONNX export with torch.onnx's dynamo exporter, verified in ONNX Runtime against PyTorch.

Exporter choice (torch 2.13): ``torch.onnx.export(..., dynamo=True)`` traces with ``torch.export`` and
translates with onnxscript. It exports the zoo CNNs, the zoo ViT (``scaled_dot_product_attention``) and
HF transformers classifiers built from configs, with a symbolic batch dimension. The TorchScript exporter
(``dynamo=False``) still works here but is deprecated and warns that it will be removed, so it is not
used. The dynamo exporter writes opset 18 natively and converts to other versions; edgeprune allows
:data:`OPSET_RANGE` (18 up to torch.onnx's newest supported opset).

Weights are stored inside the ``.onnx`` file (no external-data side file), so its size on disk is the
model's deployable size.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import re
import sys
import time
import warnings
from pathlib import Path
from typing import Iterable

import numpy as np
import onnxruntime as ort
import torch
import torch.nn.functional as F
import torch.utils._pytree as pytree
from torch import nn
from torch.overrides import TorchFunctionMode

from edgeprune import tasks as tasks_lib
from edgeprune.data import make_loader
from edgeprune.data.loaders import checked
from edgeprune.errors import CheckpointError, ConfigError, ModelError, check_positive
from edgeprune.models import input_shape, logits_of
from edgeprune.utils.io import atomic_path
from edgeprune.utils.lazy import OnFirstUse

onnx = OnFirstUse("onnx")

OPSET_RANGE = (18, 23)
DEFAULT_OPSET = 18
PARITY_TOLERANCE = 1e-4  # on logits of magnitude <= 1; relative above (see parity_limit)
INPUT_NAME, OUTPUT_NAME = "input", "logits"
EXPORTER = "torch.onnx.export(dynamo=True)"


PROTOBUF_LIMIT = 2**31  # bytes: one protobuf message, hence one .onnx file without external data


class NotExpressible(ModelError):
    """ONNX cannot express the model: an operator without a translation, a graph the exporter cannot write, weights over
    the single-file limit. Unlike a model that would run wrong once exported (its batch fixed), pruning can go on
    without the ONNX figures."""


def check_opset(opset: int) -> int:
    """Return ``opset`` if the exporter and ONNX Runtime here support it, else a ConfigError naming the range."""
    lo, hi = OPSET_RANGE
    if isinstance(opset, bool) or not isinstance(opset, int) or not lo <= opset <= hi:
        raise ConfigError(f"ONNX opset {opset!r} is not supported; allowed: {lo}..{hi} (torch.onnx dynamo exporter)")
    return opset


def parse_batch(value) -> str | int:
    """``"dynamic"`` or a positive integer batch size (from the CLI text or Python)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return check_positive("batch", value)
    text = str(value).strip().lower()
    if text == "dynamic":
        return "dynamic"
    try:
        number = int(text)
    except ValueError:
        raise ConfigError(f"--batch {value!r} must be 'dynamic' or a positive integer") from None
    if number <= 0:
        raise ConfigError(f"--batch {value!r} must be 'dynamic' or a positive integer")
    return number


def input_shape_of(model: nn.Module) -> tuple[int, ...]:
    """The shape of one input, from ``model.edgeprune_build`` (:func:`edgeprune.models.input_shape`)."""
    build = getattr(model, "edgeprune_build", None)
    if not isinstance(build, dict):
        raise ModelError(f"{type(model).__name__} has no edgeprune_build; build it with edgeprune.models.create "
                         f"or pass input_shape=")
    return input_shape(model)


@contextlib.contextmanager
def quiet_exporters():
    """Silence torch.onnx / onnxruntime.quantization: they log warnings (missing torchvision ops, per-tensor
    fallbacks) and print graphs when they fail; failures still raise and are reported in one line."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()), _native_output_dropped():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


@contextlib.contextmanager
def _native_output_dropped():
    """Drop what C++ code writes to the process's stdout and stderr: torch's TorchScript exporter turns its ONNX log on
    for every export and never off (``setup_onnx_logging`` tests the function ``_jit_is_onnx_log_enabled``, not its
    value), so an export that fails prints the whole TorchScript graph from C++ (660 lines for timm's HaloNet, for
    every candidate)."""
    saved = []
    try:
        for fd, stream in ((1, sys.stdout), (2, sys.stderr)):
            stream.flush()
            saved.append((fd, os.dup(fd)))
    except (OSError, ValueError, AttributeError):  # no such file descriptor (an embedded interpreter)
        for _, copy in saved:
            os.close(copy)
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            for fd, _ in saved:
                os.dup2(null.fileno(), fd)
        yield
    finally:
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)


def describe_export_failure(exc: BaseException) -> str:
    """One line naming what stopped the export: the untranslatable op or the data-dependent Python line."""
    text = "\n".join(str(e) for e in _chain(exc))
    op = re.search(r"No ONNX function found for <OpOverload\(op='([\w.]+)', overload='(\w+)'", text)
    if op:
        return f"op {op.group(1)}.{op.group(2)} has no ONNX translation"
    node = re.search(r"target=torch\.ops\.([\w.]+)", text)
    if node:
        reason = re.search(r"<class '[\w.]*(?:NotImplementedError|DispatchError)'>: ([^\n]+)", text)
        why = f": {reason.group(1).strip()}" if reason else ""
        return f"op {node.group(1)} cannot be translated to ONNX{why}"
    if "data-dependent" in text or "GuardOnDataDependent" in text:
        call = re.search(r'File "([^"]+)", line (\d+), in (\w+)\n\s+([^\n]+)', text)
        where = f" at {Path(call.group(1)).name}:{call.group(2)} `{call.group(4).strip()}`" if call else ""
        return (f"data-dependent Python control flow (aten.item: a branch or size read from tensor values){where}; "
                f"torch.export cannot trace it (use torch.where / torch.cond)")
    summary = re.search(r"## Exception summary\s+<class '([\w.]+)'>: ([^\n]+)", text)
    if summary:
        return f"{summary.group(1).rsplit('.', 1)[-1]}: {summary.group(2).strip()}"
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:300]


def _chain(exc: BaseException | None) -> Iterable[BaseException]:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def export_onnx(
    model: nn.Module,
    path: str | Path,
    *,
    opset: int = DEFAULT_OPSET,
    batch: str | int = "dynamic",
    input_shape: tuple[int, ...] | None = None,
) -> dict:
    """Export ``model`` (eval mode, FP32) to ``path``; input ``input`` [B, C, H, W] -> output ``logits``.

    ``batch`` is ``"dynamic"`` (symbolic batch dimension) or a fixed size. Raises ConfigError for a bad
    opset/batch and ModelError naming the op when the model cannot be traced or translated. Writes
    ``path`` directly: callers wanting atomicity export to a temporary path (see :func:`export_verified`).
    Under a task whose model is not what a runtime runs (a detector), its deployable part is exported
    (:meth:`edgeprune.tasks.Task.deployable`).
    """
    name = model_name(model)
    model = tasks_lib.current().deployable(model)
    check_opset(opset)
    batch = parse_batch(batch)
    shape = tuple(input_shape or input_shape_of(model))
    example = torch.randn(2 if batch == "dynamic" else batch, *shape)
    dynamic = ({0: torch.export.Dim("batch", min=1)},) if batch == "dynamic" else None
    weights = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
    if weights >= PROTOBUF_LIMIT:
        raise NotExpressible(f"model {name!r} has {weights / 1e9:.2f} GB of weights, over ONNX's 2 GB single-file limit "
                         "(protobuf); edgeprune keeps weights inside the .onnx file, so it cannot export this model")
    was_training = model.training
    model.eval()
    start = time.perf_counter()

    def export(optimize: bool) -> str | None:
        """Export; None, or why the written graph is invalid."""
        with quiet_exporters(), torch.no_grad(), AttentionInFourDims():
            torch.onnx.export(
                model, (example,), str(path), dynamo=True, opset_version=opset, dynamic_shapes=dynamic,
                input_names=[INPUT_NAME], output_names=output_names(model, example[:1]), external_data=False,
                optimize=optimize,
            )
        try:
            onnx.checker.check_model(str(path))
        except onnx.checker.ValidationError as exc:
            return " ".join(str(exc).split())[:240]
        return None

    try:
        # the exporter's graph optimiser once left a node reading a value it had removed (timm's Gemma-4 ViT):
        # such a graph is exported again unoptimised
        invalid = export(optimize=True) and export(optimize=False)
    except Exception as exc:  # noqa: BLE001  (the exporter raises many types; all mean "this model cannot be exported")
        raise NotExpressible(f"model {name!r} cannot be exported to ONNX: {describe_export_failure(exc)}") from None
    finally:
        model.train(was_training)
    if invalid:
        Path(path).unlink(missing_ok=True)
        raise NotExpressible(f"model {name!r} cannot be exported to ONNX: the exporter wrote an invalid graph ({invalid})")
    fixed = _fixed_input_batch(path) if batch == "dynamic" else None
    if fixed is not None:
        Path(path).unlink(missing_ok=True)
        raise ModelError(f"model {name!r} exports to ONNX with its batch fixed at {fixed}: its forward turns the batch "
                         "size into a Python number (len(x), int(x.shape[0])); use x.shape[0] to get a file that takes "
                         "any batch")
    produced = _opset_of(path)
    if produced != opset:
        Path(path).unlink(missing_ok=True)
        raise ConfigError(f"ONNX opset {opset} could not be produced for model {name!r} (the exporter wrote opset "
                          f"{produced}); allowed: {OPSET_RANGE[0]}..{OPSET_RANGE[1]}, try {produced}")
    return {"path": str(path), "bytes": Path(path).stat().st_size, "opset": opset, "batch": batch,
            "input_shape": list(shape), "exporter": EXPORTER, "torch": torch.__version__,
            "seconds": time.perf_counter() - start}


class AttentionInFourDims(TorchFunctionMode):
    """While exporting: ``scaled_dot_product_attention`` on inputs of other than 4 dims, which the ONNX exporter
    cannot translate, as the same call on 4-dim inputs, reshaped back: the same attention, an op it translates.
    More dims (timm's Hiera, NesT and Twins attend within windows: [batch, heads, windows, tokens, dim]): the leading
    dims flattened into one. Fewer (timm's SAM ViT: [batch x heads, tokens, dim]): a leading dim of one added."""

    NAMES = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa")

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is not F.scaled_dot_product_attention:
            return func(*args, **(kwargs or {}))
        call = {**dict(zip(self.NAMES, args)), **(kwargs or {})}
        q, k, v = call.pop("query"), call.pop("key"), call.pop("value")
        if q.dim() == 4 or q.dim() < 2:
            return func(q, k, v, **call)
        if q.dim() < 4:
            grow = 4 - q.dim()
            q, k, v = (t.reshape(*(1,) * grow, *t.shape) for t in (q, k, v))
            return func(q, k, v, **call).reshape(*q.shape[grow:-1], v.shape[-1])
        lead = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
        q, k, v = (t.expand(*lead, *t.shape[-2:]).flatten(0, -4) for t in (q, k, v))
        if call.get("attn_mask") is not None:
            call["attn_mask"] = call["attn_mask"].expand(*lead, q.shape[-2], k.shape[-2]).flatten(0, -4)
        out = func(q, k, v, **call)
        return out.reshape(*lead, *out.shape[-2:])


def export_for_timing(model: nn.Module, path: str | Path, *, input_shape: tuple[int, ...] | None = None) -> dict:
    """A file to time rather than to ship: torch's TorchScript exporter writes it in a tenth of a second where the
    dynamo exporter (:func:`export_onnx`, the shipped file) takes seconds (a minute on a loaded machine); ONNX Runtime
    runs both at the same speed within noise (benchmarks/timing_export.py).
    A budget's bisection times these; its final confirmation times the shipped exporter's file. Falls back to
    :func:`export_onnx` where the TorchScript exporter fails."""
    deployable = tasks_lib.current().deployable(model)
    example = torch.randn(1, *(input_shape or input_shape_of(deployable)))
    was_training = deployable.training
    deployable.eval()
    try:
        names = output_names(deployable, example)
        with quiet_exporters(), torch.no_grad():
            torch.onnx.export(deployable, (example,), str(path), dynamo=False, opset_version=DEFAULT_OPSET,
                              input_names=[INPUT_NAME], output_names=names,
                              dynamic_axes={name: {0: "batch"} for name in (INPUT_NAME, *names)})
    except Exception:  # noqa: BLE001  (any failure of the old exporter: the shipped exporter decides)
        return export_onnx(model, path, input_shape=input_shape)
    finally:
        deployable.train(was_training)
    return {"path": str(path), "bytes": Path(path).stat().st_size, "exporter": "torchscript (timing only)"}


def _leaves(output) -> list[torch.Tensor]:
    """Every tensor of a model output (a tensor, tuple, list, dict...), in the order the exporter writes them."""
    return [leaf for leaf in pytree.tree_leaves(output) if isinstance(leaf, torch.Tensor)]


@torch.no_grad()
def output_names(model: nn.Module, example: torch.Tensor) -> list[str]:
    """ONNX output names: ``logits`` for the classifier's logits, ``output_K`` for any other output (a model
    returning a dict or tuple keeps every output, and ONNX Runtime's accuracy reads the logits by name)."""
    output = model(example)
    try:
        logits = logits_of(output)
    except ModelError:  # not a classifier's output (a segmentation dict, detection tensors): every output numbered
        logits = None
    return [OUTPUT_NAME if leaf is logits else f"output_{k}" for k, leaf in enumerate(_leaves(output))]


def _fixed_input_batch(path) -> int | None:
    """The batch an ONNX file's input is fixed at, None when it is symbolic."""
    dim = onnx.load(str(path), load_external_data=False).graph.input[0].type.tensor_type.shape.dim[0]
    return dim.dim_value if dim.HasField("dim_value") else None


def _opset_of(path) -> int:
    proto = onnx.load(str(path), load_external_data=False)
    return next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), -1)


# ----------------------------------------------------------------------------------------------------
# ONNX Runtime
# ----------------------------------------------------------------------------------------------------


def ort_session(path: str | Path, threads: int | None = None, *, what: str | None = None):
    """A CPU InferenceSession; ``threads`` sets intra_op_num_threads (None: torch's thread count). A file ONNX
    Runtime cannot load is a CheckpointError naming it as ``what`` (default: its path)."""
    if threads is not None:
        check_positive("threads", threads)
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads or torch.get_num_threads())
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001  (ORT raises its own Fail/InvalidGraph/... types)

        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        first = re.sub(r"Load model from .* failed: ?", "", first)  # the path again
        raise CheckpointError(f"ONNX Runtime cannot load {what or repr(str(path))}: {first[:240]}") from None


def fixed_batch(session) -> int | None:
    """The model's fixed batch size, or None when the batch dimension is symbolic."""
    dim = session.get_inputs()[0].shape[0]
    return dim if isinstance(dim, int) and dim > 0 else None


def ort_run(session, x: torch.Tensor | np.ndarray) -> np.ndarray:
    """Logits for a batch of any size: a fixed-batch model gets chunks of its size (the last one padded).
    The logits are the output named ``logits`` (the first output of files exported elsewhere)."""
    names = [o.name for o in session.get_outputs()]
    return ort_outputs(session, x, [OUTPUT_NAME if OUTPUT_NAME in names else names[0]])[0]


def ort_outputs(session, x: torch.Tensor | np.ndarray, names: list[str] | None = None) -> list[np.ndarray]:
    """The outputs ``names`` (None: all) for a batch of any size, as :func:`ort_run` runs it."""
    x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    x = np.ascontiguousarray(x, dtype=np.float32)
    name = session.get_inputs()[0].name
    return in_chunks(lambda chunk: session.run(names, {name: chunk}), x, fixed_batch(session))


def in_chunks(run, x: np.ndarray, size: int | None) -> list[np.ndarray]:
    """Every output of ``run`` (one call: a batch -> its outputs) for a batch ``x`` of any size: one call when the
    model's batch is dynamic (``size`` None) or ``x``'s own, else chunks of ``size``, the last padded with zeros
    (their outputs dropped)."""
    if size is None or len(x) == size:
        return list(run(x))
    parts = []
    for i in range(0, len(x), size):
        chunk = x[i:i + size]
        n = len(chunk)
        if n < size:
            chunk = np.concatenate([chunk, np.zeros((size - n, *chunk.shape[1:]), dtype=chunk.dtype)])
        parts.append([out[:n] for out in run(chunk)])
    return [np.concatenate(outs) for outs in zip(*parts)]


def ort_accuracy(session, dataset, batch_size: int = 256) -> float:
    """Top-1 accuracy in [0, 1] of an ONNX Runtime session on ``dataset``."""
    correct = total = 0
    for x, y in checked(make_loader(dataset, batch_size), "test data"):
        correct += int((ort_run(session, x).argmax(1) == y.numpy()).sum())
        total += len(y)
    return correct / total if total else float("nan")


@torch.no_grad()
def output_structure(model: nn.Module, example: torch.Tensor) -> pytree.TreeSpec:
    """How ``model``'s output (eval mode) nests its tensors: a runtime's flat outputs are rebuilt with it."""
    was_training = model.training
    try:
        return pytree.tree_flatten(model.eval()(example))[1]
    finally:
        model.train(was_training)


class OrtModel(nn.Module):
    """An ONNX Runtime session behind a PyTorch forward: its outputs rebuilt in the structure the model returns
    (a tensor, a dict, a tuple...), so a task evaluates the exported file as it evaluates the model."""

    def __init__(self, session, model: nn.Module, example: torch.Tensor):
        super().__init__()
        self.session = session
        self.structure = output_structure(model, example)

    def forward(self, x: torch.Tensor):
        return pytree.tree_unflatten([torch.from_numpy(o) for o in self.outputs(x)], self.structure)

    def outputs(self, x: torch.Tensor) -> list:
        return ort_outputs(self.session, x)


class RunnerModel(OrtModel):
    """As :class:`OrtModel`, for another runtime's runner (``run_all(x)`` -> every output): OpenVINO, LiteRT."""

    def outputs(self, x: torch.Tensor) -> list:
        return self.session.run_all(x)


def check_whole_model(task, model: nn.Module, file: str = "ONNX file") -> None:
    """ModelError when the runtime ``file`` holds part of ``model`` only (a detector: decoding and NMS stay outside),
    so the task's metrics cannot be measured on it."""
    if task.deployable(model) is not model:
        raise ModelError(f"the {task.name} task's {file} holds {type(model).__name__}'s dense part only (no decoding, "
                         "no NMS): its metrics are measured in PyTorch, its parity on the dense outputs")


def runner_metrics(file: str):
    """The task-metrics function of another runtime's runner (``run_all(x)``): ``metrics(runner, model, example,
    data, task)``, refusing in one line a ``file`` that holds part of ``model`` only (see :func:`check_whole_model`)."""
    def metrics(runner, model: nn.Module, example: torch.Tensor, data, task, batch_size: int = 256) -> dict[str, float]:
        check_whole_model(task, model, file)
        return task.evaluate(RunnerModel(runner, model, example), data, batch_size)
    return metrics


def ort_metrics(session, model: nn.Module, example: torch.Tensor, data, task, batch_size: int = 256) -> dict[str, float]:
    """The task's metrics (``edgeprune.tasks``) of an ONNX Runtime session exported from ``model`` on ``data``.
    A task whose runtime part is not the whole model (a detector: decoding and NMS stay outside the file) is
    refused in one line: its parity is checked on the dense outputs, its metrics are PyTorch's."""
    check_whole_model(task, model)
    return task.evaluate(OrtModel(session, model, example), data, batch_size)


def parity(model: nn.Module, session, inputs: torch.Tensor) -> float:
    """Max |ONNX Runtime - PyTorch| over ``inputs`` and every output of the model (eval mode)."""
    return max_difference(model, inputs, ort_outputs(session, inputs), "the ONNX file")


@torch.no_grad()
def max_difference(model: nn.Module, inputs: torch.Tensor, got: list, what: str) -> float:
    """Max |``got`` - PyTorch| over every output of ``model`` (eval mode) on ``inputs``; ``got``: a runtime's
    outputs on them, flattened in the model's order (``what`` names the runtime's file in the error)."""
    was_training = model.training
    model.eval()
    try:
        expected = [leaf.float().cpu().numpy() for leaf in _leaves(model(inputs))]
    finally:
        model.train(was_training)
    if len(got) != len(expected):
        raise ModelError(f"{what} has {len(got)} outputs but the model returns {len(expected)} tensors")
    return max(float(np.abs(g - e).max()) for g, e in zip(got, expected))


@torch.no_grad()
def logit_scale(model: nn.Module, inputs: torch.Tensor) -> float:
    """max |value| of ``model``'s outputs on ``inputs`` (eval mode)."""
    was_training = model.training
    model.eval()
    try:
        return max(float(leaf.float().abs().max()) for leaf in _leaves(model(inputs)))
    finally:
        model.train(was_training)


def parity_limit(tolerance: float, scale: float) -> float:
    """The largest allowed |runtime - PyTorch| difference for logits up to ``scale`` in magnitude.

    FP32 rounding differs between kernels by a relative ~1e-7 per operation, so the allowed difference
    grows with the logits: ``tolerance`` below magnitude 1, ``tolerance * scale`` above. An untrained
    deep net can have logits of 1e7 (torchvision's Inception-v3 at random init), where an absolute 1e-4
    would call every exporter wrong.
    """
    return tolerance * max(1.0, scale) if math.isfinite(scale) else tolerance


def model_name(model: nn.Module) -> str:
    """How a message names the user's model: its zoo spec, else its class (taken before export wraps it)."""
    return getattr(model, "edgeprune_build", {}).get("spec", type(model).__name__)


def parity_failure(kind: str, name: str, diff: float, limit: float, scale: float) -> ModelError:
    scaled = f" (logits up to {scale:.3g})" if scale > 1 else ""
    return ModelError(f"{kind} export of {name!r} does not match PyTorch: max abs logit difference {diff:.3g} > "
                      f"tolerance {limit:.3g}{scaled}")


def export_verified(
    model: nn.Module,
    path: str | Path,
    inputs: torch.Tensor,
    *,
    opset: int = DEFAULT_OPSET,
    batch: str | int = "dynamic",
    tolerance: float = PARITY_TOLERANCE,
) -> dict:
    """Export to ``path`` and check ONNX Runtime against PyTorch on ``inputs`` (batch 1 and the whole batch).

    The file appears only if the check passes (temp file + os.replace); ModelError when the difference
    exceeds ``tolerance`` (relative for logits above 1: :func:`parity_limit`). Returns :func:`export_onnx`'s dict plus ``max_abs_diff`` and ``tolerance``.
    """
    path, name = Path(path), model_name(model)
    model = tasks_lib.current().deployable(model)
    with atomic_path(path) as tmp:
        info = export_onnx(model, tmp, opset=opset, batch=batch, input_shape=tuple(inputs.shape[1:]))
        try:
            session = ort_session(tmp, what="the exported graph")
        except CheckpointError as exc:
            raise ModelError(str(exc)) from None
        diffs = [parity(model, session, inputs)]
        if fixed_batch(session) is None:
            diffs.append(parity(model, session, inputs[:1]))
        diff, scale = max(diffs), logit_scale(model, inputs)
        limit = parity_limit(tolerance, scale)
        if not diff <= limit:  # also catches NaN
            raise parity_failure("ONNX", name, diff, limit, scale)
    info.update({"path": str(path), "max_abs_diff": diff, "tolerance": limit, "logit_scale": scale,
                 "parity_inputs": len(inputs)})
    return info

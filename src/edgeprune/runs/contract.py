"""The zoo contract: every stage of edgeprune on one model, each ending in pass or a one-line refusal.

    outcomes = check_model(model, torch.zeros(1, 3, 32, 32))      # [Outcome(stage, status, seconds, note)]
    informative(model, example)   # before the stages: an untrained model's outputs large enough for parity to mean something

For each stage the model either *passes* (the stage's result runs, has the logits' shape, is smaller where
the stage removes something and matches the stage's own checks), removes *nothing* and says why
(``none``), is *refused* with a one-line :class:`~edgeprune.errors.EdgepruneError` naming what is not
supported and why, or the stage does not apply (``n/a``: VBP without an MLP block, Reconvene with fewer
than two convolutions). Anything else -- another exception, a wrong result, more than ``timeout`` seconds of CPU
time (or four times that in wall time) -- is a ``fail``: a bug of ours. ``tests/test_zoo_contract.py`` runs it on a CI subset,
``benchmarks/zoo.py`` on every torchvision, timm and transformers classifier.

Stages: ``roles``; ``mam50`` (Mix-and-Match weight masks at 50 %: magnitude scores, the ``balanced``
strategy); ``structured30`` (30 % of the channels removed physically,
:func:`edgeprune.surgery.ratios.prune_channels`); ``vbp30`` (VBP at 30 % of the MLP hidden neurons);
``reconvene90`` (Reconvene at p = 0.9, magnitude scores at initialisation); ``onnx`` (export and parity
in ONNX Runtime).

Edge stages (``EDGE_STAGES``, not in the default ``STAGES``: run them by name, as
``benchmarks/edge_zoo.py`` does): ``executorch`` (FP32 ``.pte`` lowered to XNNPACK, parity in the
ExecuTorch runtime on two random inputs; an operator that cannot be lowered is refused in one line naming
it; ``n/a`` without the ``[edge]`` extra) and ``openvino`` (the ONNX export converted to OpenVINO IR, parity in
OpenVINO's CPU plugin on two random inputs; an operator OpenVINO cannot convert is refused in one line naming it;
``n/a`` without the ``[openvino]`` extra) and ``litert`` (a batch-1 ``.tflite``, parity in LiteRT's interpreter on two
random inputs; an operator with no LiteRT lowering is refused in one line naming it; ``n/a`` without the ``[litert]``
extra).
"""

from __future__ import annotations

import contextlib
import copy
import signal
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from edgeprune import ranges as ranges_lib
from edgeprune import roles as roles_lib
from edgeprune import scores as scores_lib
from edgeprune import strategies as strategies_lib
from edgeprune import tasks as tasks_lib
from edgeprune.errors import DependencyError, EdgepruneError, ModelError
from edgeprune.export import executorch as et_lib
from edgeprune.export import litert as lrt_lib
from edgeprune.export import openvino as ov_lib
from edgeprune.export.onnx import export_verified, logit_scale
from edgeprune.measure import param_count, prunable_weights
from edgeprune.methods import vbp_core
from edgeprune.methods.reconvene import CONV_TYPES, generate
from edgeprune.models import logits_of
from edgeprune.prune.masks import MaskBuilder, apply_masks, masks_sparsity
from edgeprune.surgery.ratios import prune_channels
from edgeprune.surgery.structure import plan as plan_structure

STAGES = ("roles", "mam50", "structured30", "vbp30", "reconvene90", "onnx")
EDGE_STAGES = ("executorch", "openvino", "litert")  # slower exports, run by name (benchmarks/edge_zoo.py --stage NAME), not by default
STATUSES = ("pass", "none", "refused", "n/a", "fail")
TIMEOUT = 60.0  # seconds of CPU time (the stages run at one thread)
WALL_FACTOR = 4
HUNG_CPU_SHARE = 0.02  # a stage that used less CPU than this share of a backstop window was waiting, not working
TINY_OUTPUT = 1e-3  # below this max |output| on random inputs a parity check compares (near-)zeros


@dataclass
class Outcome:
    stage: str
    status: str  # one of STATUSES
    seconds: float
    note: str = ""

    def as_dict(self) -> dict:
        return {"stage": self.stage, "status": self.status, "seconds": round(self.seconds, 3), "note": self.note}


class _Timeout(BaseException):  # not an Exception: stages that catch every error must not swallow it
    pass


class NotApplicable(Exception):
    """The stage does not apply to this model (not a refusal)."""


class NothingRemoved(Exception):
    """The stage ran and removed nothing; the message says why."""


@contextlib.contextmanager
def _deadline(seconds: float):
    """Raise _Timeout after ``seconds`` of this process's CPU time, or when the stage hangs: a whole wall-clock
    window of ``WALL_FACTOR`` times that in which it used (almost) no CPU.

    CPU time measures the stage's own work, so the verdict does not depend on what else the machine runs; the
    wall-clock backstop stops a stage that waits instead of computing, and re-arms while the stage still
    consumes CPU (slow because the machine is loaded is not hung). A no-op off the main thread or without
    these signals.
    """
    usable = hasattr(signal, "SIGPROF") and threading.current_thread() is threading.main_thread()
    if not usable or seconds <= 0:
        yield
        return
    window = seconds * WALL_FACTOR
    last_cpu = [time.process_time()]

    def fire(signum, frame):
        raise _Timeout()

    def backstop(signum, frame):
        used, last_cpu[0] = time.process_time() - last_cpu[0], time.process_time()
        if used < HUNG_CPU_SHARE * window:
            raise _Timeout()
        signal.setitimer(signal.ITIMER_REAL, window)  # still working: look again after another window

    old = {signal.SIGPROF: signal.signal(signal.SIGPROF, fire), signal.SIGALRM: signal.signal(signal.SIGALRM, backstop)}
    signal.setitimer(signal.ITIMER_PROF, seconds)
    signal.setitimer(signal.ITIMER_REAL, window)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.setitimer(signal.ITIMER_REAL, 0)
        for sig, handler in old.items():
            signal.signal(sig, handler)


@torch.no_grad()
def _outputs(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The output tensors the contract compares: a classifier's logits; under another task every tensor of the
    module a runtime runs (a detector's raw head outputs, before decoding)."""
    task = tasks_lib.current()
    was = model.training
    model.eval()
    try:
        if isinstance(task, tasks_lib.Classification):
            return [logits_of(model(x))]
        return tasks_lib.output_tensors(task.deployable(model)(x))
    finally:
        model.train(was)


def output_shape(model: nn.Module, x: torch.Tensor) -> tuple:
    """The logits' shape of a classifier; a tuple of every output's shape under another task."""
    outs = _outputs(model, x)
    return tuple(outs[0].shape) if isinstance(tasks_lib.current(), tasks_lib.Classification) else tuple(tuple(o.shape) for o in outs)


def check_runs(model: nn.Module, x: torch.Tensor, shape: tuple, what: str) -> None:
    got = output_shape(model, x)
    if got != shape:
        raise AssertionError(f"{what}: outputs of shape {got}, expected {shape}")
    if not all(torch.isfinite(o).all() for o in _outputs(model, x)):
        raise AssertionError(f"{what}: non-finite outputs")


# ----------------------------------------------------------------------------------------------- stages


def stage_roles(model, example, shape) -> str:
    table = roles_lib.classify(model, example)
    names = {e.param_name for e in table.prunable()}
    missing = set(prunable_weights(model)) - names
    if missing:
        raise AssertionError(f"roles: no row for {sorted(missing)[:3]}")
    if not table.by_role("classifier"):
        raise AssertionError("roles: no classifier found")
    for a, b in table.mlp_pairs():
        if a.shape[0] not in (b.shape[1], 2 * b.shape[1]):  # 2x: a gate's two chunks
            raise AssertionError(f"roles: MLP pair {a.module_name} -> {b.module_name} widths differ")
    counts = {r: n for r, n in table.counts().items() if n}
    return " ".join(f"{r}:{n}" for r, n in counts.items())


def stage_mam(model, example, shape, budget: float = 0.5) -> str:
    table = roles_lib.classify(model, example)
    spans = ranges_lib.rules(table)
    sparsities = strategies_lib.build("balanced", spans, table, budget)
    masks = MaskBuilder(scores_lib.compute("magnitude", model, None)).layerwise(sparsities)
    pruned = copy.deepcopy(model)
    apply_masks(pruned, masks)
    achieved = masks_sparsity(masks)
    if abs(achieved - budget) > 0.02:
        raise AssertionError(f"mam: masks at sparsity {achieved:.3f}, asked {budget}")
    check_runs(pruned, example, shape, "mam")
    for name, p in pruned.named_parameters():
        if name in masks and bool((p[~masks[name]] != 0).any()):
            raise AssertionError(f"mam: masked weights of {name} are not zero")
    return f"sparsity {achieved:.3f}"


def stage_structured(model, example, shape, budget: float = 0.3) -> str:
    """30 % of every prunable layer's channels removed through torch-pruning (the patch embedding keeps its
    width, as structured Mix-and-Match does), or a one-line ModelError naming what is not supported. The note
    says what was kept whole when torch-pruning failed on the full plan (``prune_channels``' retries)."""
    keep = {e.module_name for e in roles_lib.classify(model, example).by_role("patch_embed")}
    pruned = copy.deepcopy(model)
    layers = {n for n, m in pruned.named_modules() if n and isinstance(m, (nn.Linear, *CONV_TYPES))}
    widths = prune_channels(pruned, example, plan_structure(pruned, example, keep_embedding=keep),
                            dict.fromkeys(layers, budget))
    check_runs(pruned, example, shape, "structured")
    before, after = param_count(model), param_count(pruned)
    if after >= before:
        raise NothingRemoved("; ".join(["structured pruning removed no channel", *widths.skipped]))
    return "; ".join([f"params {before} -> {after}", *widths.skipped])


def stage_vbp(model, example, shape, budget: float = 0.3) -> str:
    try:
        blocks = vbp_core.find_mlp_blocks(model, example)
    except ModelError as exc:
        if "has no MLP block" in str(exc):
            raise NotApplicable("no MLP block") from None
        raise
    gen = torch.Generator().manual_seed(0)
    calib = [(torch.randn(2, *example.shape[1:], generator=gen), torch.zeros(2, dtype=torch.long)) for _ in range(2)]
    pruned, stats = vbp_core.prune(model, calib, budget, example_input=example)
    check_runs(pruned, example, shape, "vbp")
    expected = round(budget * stats.total_neurons)
    if stats.pruned_neurons != expected:
        raise AssertionError(f"vbp: pruned {stats.pruned_neurons} neurons, expected {expected}")
    before, after = param_count(model), param_count(pruned)
    if expected and after >= before:
        raise AssertionError(f"vbp: {expected} neurons pruned but params {before} -> {after}")
    return f"{len(blocks)} blocks, neurons {stats.total_neurons} -> {stats.total_neurons - stats.pruned_neurons}"


def stage_reconvene(model, example, shape, budget: float = 0.9) -> str:
    if sum(isinstance(m, CONV_TYPES) for m in model.modules()) < 2:
        raise NotApplicable("fewer than 2 convolutions")
    pruned, masks, info = generate(model, example, budget, "magnitude")
    check_runs(pruned, example, shape, "reconvene")
    before, after = param_count(model), param_count(pruned)
    if not info["structured"]:
        raise NothingRemoved(info.get("nothing_removed") or "no layer lost channels")
    if after >= before:
        raise AssertionError(f"reconvene: layers {info['structured'][:3]} structured but params {before} -> {after}")
    note = f"params {before} -> {after} ({len(info['structured'])} layers)"
    return f"{note}; {info['blocks']}" if "blocks" in info else note


def stage_onnx(model, example, shape) -> str:
    gen = torch.Generator().manual_seed(0)
    inputs = torch.randn(2, *example.shape[1:], generator=gen)
    with tempfile.TemporaryDirectory() as tmp:
        info = export_verified(model, Path(tmp) / "model.onnx", inputs)
    return f"max diff {info['max_abs_diff']:.2g}"


def stage_executorch(model, example, shape, top: int = 3) -> str:
    """FP32 ``.pte`` (batch 1, XNNPACK) in a temporary directory, parity in the ExecuTorch runtime on two random
    inputs. A ModelError naming what cannot be lowered or captured is a refusal; a parity mismatch or a
    program the runtime cannot run is a failure (the export claims parity)."""
    try:
        et_lib.executorch()
    except DependencyError as exc:
        raise NotApplicable(str(exc)) from None
    gen = torch.Generator().manual_seed(0)
    inputs = torch.randn(2, *example.shape[1:], generator=gen)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            info = et_lib.export_executorch(model, Path(tmp) / "model.pte", inputs)
    except ModelError as exc:
        if any(s in str(exc) for s in ("does not match PyTorch", "fails in the runtime", "runtime cannot load")):
            raise AssertionError(str(exc)) from None
        raise
    outside = info["outside_delegate"]
    # the logits' magnitude beside the difference: parity on (near-)zero logits of an untrained model says little
    note = (f"max diff {info['max_abs_diff']:.2g} (max |logit| {info['logit_scale']:.2g}), "
            f"{sum(outside.values())} ops outside the delegate")
    if outside:
        most = sorted(outside.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
        more = ", ..." if len(outside) > top else ""
        names = ", ".join(f"{op.removeprefix('aten::')} x{n}" for op, n in most)
        note += f" ({names}{more})"
    return note


def _converted_stage(library, export, file: str, cannot_load: str, model, example) -> str:
    """FP32 ``file`` written by ``export`` in a temporary directory, parity in its runtime on two random inputs; ``n/a``
    when ``library()`` is not installed. A ModelError naming what cannot be exported or converted is a refusal; a
    parity mismatch or a file the runtime cannot load (``cannot_load``) is a failure."""
    try:
        library()
    except DependencyError as exc:
        raise NotApplicable(str(exc)) from None
    inputs = torch.randn(2, *example.shape[1:], generator=torch.Generator().manual_seed(0))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            info = export(model, Path(tmp) / file, inputs)
    except ModelError as exc:
        if any(s in str(exc) for s in ("does not match PyTorch", cannot_load)):
            raise AssertionError(str(exc)) from None
        raise
    return f"max diff {info['max_abs_diff']:.2g} (max |logit| {info['logit_scale']:.2g})"


def stage_openvino(model, example, shape) -> str:
    """FP32 IR converted from the ONNX export, parity in OpenVINO (see :func:`_converted_stage`)."""
    return _converted_stage(ov_lib.openvino, ov_lib.export_openvino, "model.xml", "OpenVINO cannot load", model, example)


def stage_litert(model, example, shape) -> str:
    """FP32 batch-1 ``.tflite``, parity in LiteRT's interpreter (see :func:`_converted_stage`)."""
    return _converted_stage(lrt_lib.litert, lrt_lib.export_litert, "model.tflite", "LiteRT cannot load", model, example)


_RUN = {"roles": stage_roles, "mam50": stage_mam, "structured30": stage_structured, "vbp30": stage_vbp,
        "reconvene90": stage_reconvene, "onnx": stage_onnx, "executorch": stage_executorch, "openvino": stage_openvino,
        "litert": stage_litert}


def register_stage(name: str, run) -> None:
    """Add a stage ``run(model, example, logits_shape) -> note`` (the public-API stages register here)."""
    _RUN[name] = run


def run_stage(stage: str, model: nn.Module, example: torch.Tensor, *, timeout: float = TIMEOUT) -> Outcome:
    """One stage on ``model`` (never modified), classified into pass / none / refused / n/a / fail."""
    t0 = time.perf_counter()
    status, note = "fail", ""
    try:
        with _deadline(timeout):
            shape = output_shape(model, example)
            note = _RUN[stage](model, example, shape)
            status = "pass"
    except _Timeout as exc:
        note = f"did not finish within {timeout:g} s of CPU time{_stopped_in(exc.__traceback__)}"
    except NotApplicable as exc:
        status, note = "n/a", str(exc)
    except NothingRemoved as exc:
        status, note = "none", str(exc)
    except EdgepruneError as exc:
        note = str(exc)
        status = "refused" if "\n" not in note else "fail"
    except Exception as exc:  # noqa: BLE001  (anything else is a bug the contract reports)
        note = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"[:300]
    return Outcome(stage, status, time.perf_counter() - t0, note)


def _stopped_in(tb, depth: int = 3) -> str:
    """Where in edgeprune a stage was when its time ran out: its innermost ``depth`` edgeprune frames outside the
    contract, innermost first (" (stopped in select.meter:_deploy < methods.structured_mam:deploy_metrics ...)"): a
    time box that ran out in the fine-tune says something else than one that ran out in the dependency search."""
    frames = []
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        if module.startswith("edgeprune.") and module not in (__name__, "edgeprune.api_contract"):
            frames.append(f"{module.removeprefix('edgeprune.')}:{tb.tb_frame.f_code.co_name}")
        tb = tb.tb_next
    return f" (stopped in {' < '.join(reversed(frames[-depth:]))})" if frames else ""


@torch.no_grad()
def informative(model: nn.Module, example: torch.Tensor) -> list[str]:
    """Make an untrained model's outputs large enough for a parity check to compare something: when its max |output|
    on random inputs like ``example`` is below :data:`TINY_OUTPUT` (heads timm and torchvision initialise to zero,
    signals that fade through a deep random net), draw every all-zero parameter from N(0, 0.02), then, if still
    needed, re-estimate batch-norm running statistics on random inputs in training mode. Returns what was done
    (empty: the model was left as it was)."""
    gen = torch.Generator().manual_seed(0)
    inputs = torch.randn(8, *example.shape[1:], generator=gen)
    before = logit_scale(model, inputs[:2])
    if before >= TINY_OUTPUT:
        return []
    done = []
    zeros = [p for p in model.parameters() if p.is_floating_point() and not p.any()]
    for p in zeros:
        p.copy_(torch.randn(p.shape, generator=gen) * 0.02)
    if zeros:
        done.append(f"{len(zeros)} all-zero parameters drawn from N(0, 0.02)")
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if norms and logit_scale(model, inputs[:2]) < TINY_OUTPUT:
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over the batches below
        model.train()
        for batch in inputs.split(4):
            model(batch)
        model.eval()
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        done.append(f"running statistics of {len(norms)} batch norms re-estimated on random inputs")
    return [*done, f"max |output| {before:.2g} -> {logit_scale(model, inputs[:2]):.2g}"]


def check_model(model: nn.Module, example: torch.Tensor, stages=STAGES, *, timeout: float = TIMEOUT) -> list[Outcome]:
    """Every stage of ``stages`` on ``model`` with ``example`` (one batch of one image)."""
    return [run_stage(s, model, example, timeout=timeout) for s in stages]

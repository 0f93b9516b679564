"""Latency tables: a model's latency on a device predicted from the widths of its layers, in microseconds.

    table = latency_table.build(model, example, device, structure, candidates)   # or latency_table.cached(...)
    table.predict(predicted_widths(census(model, example), structure, fractions, round_to, model))  # ms, no timing
    table.error        # {"median_abs_pct": ..., "held_out": [[measured, predicted], ...]}

As NetAdapt and HALP do: every convolution and linear layer of the input model is written as a one-operator file of
the budget's runtime (ONNX built directly; an ExecuTorch, OpenVINO or LiteRT file exported from the one torch layer)
at a grid of kept input and output widths (:data:`GRID`, rounded to ONNX Runtime's channel block) and all of them
are timed on the device in one call of its runner (identical operators, like a ResNet stage's repeated
convolutions, are timed once). A pruned model's latency is then an additive model with a fixed per-model part,
``c0 + k * sum(cost of each layer at its widths)`` (bilinear between grid points), ``c0`` and ``k`` fitted to
whole-model timings of candidates, and its error checked on held-out candidates timed in the same call.

A table is cached per (model structure, device, runtime, threads, batch) in a sealed JSON file under
``$EDGEPRUNE_CACHE/tables`` (default ``~/.cache/edgeprune/tables``).
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
import statistics
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgeprune.devices import Device
from edgeprune.devices.base import SUFFIX
from edgeprune.errors import ConfigError
from edgeprune.export.et_latency import export_for
from edgeprune.export.onnx import export_for_timing
from edgeprune.export.ort_latency import channel_block
from edgeprune.surgery import heads as heads_lib
from edgeprune.surgery.structure import StructurePlan, group_fractions, kept_channels
from edgeprune.utils.io import read_json, write_json

VERSION = 1
GRID = (1.0, 0.75, 0.5, 0.3, 0.1)  # kept fractions of a layer's widths timed (the ceiling removes 90 %)
OP_ROUNDS = 10  # rounds of every one-operator file
MODEL_ROUNDS = 20  # rounds of the whole-model timings the fit and its check use
# The table times its files one call each in turn, not warm in blocks as a calibration's confirming timing does: a
# whole model's layers find the caches full of each other's weights, as a layer timed in turn does, and sums of layers
# timed warm missed warm whole-model timings by 54 % on MobileNetV2 (in turn: 6 %). The confirming timing rescales the
# table to the warm figure (structured_mam._confirm).
TABLE_BLOCK_MS = 0.0
LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.Linear)


@dataclass(frozen=True)
class Op:
    """One convolution or linear layer as the model calls it (batch excluded from ``spatial``)."""

    kind: str  # "Conv", "ConvTranspose" or "Linear"
    cin: int
    cout: int
    groups: int
    kernel: tuple
    stride: tuple
    pads: tuple
    dilation: tuple
    spatial: tuple  # a convolution's input size, a linear layer's leading dimensions (tokens)
    bias: bool

    @property
    def depthwise(self) -> bool:
        return self.groups > 1 and self.groups == self.cin == self.cout

    def at(self, cin: int, cout: int) -> "Op":
        groups = cin if self.depthwise else self.groups
        return Op(self.kind, int(cin), int(cout), groups, self.kernel, self.stride, self.pads, self.dilation,
                  self.spatial, self.bias)


def _conv_pads(module) -> tuple:
    k, d = module.kernel_size, module.dilation
    if module.padding == "valid":
        return (0,) * (2 * len(k))
    if module.padding == "same":
        total = [di * (ki - 1) for ki, di in zip(k, d)]
        return tuple(t // 2 for t in total) + tuple(t - t // 2 for t in total)
    return tuple(module.padding) * 2


def census(model: nn.Module, example: torch.Tensor) -> dict[str, tuple[Op, int]]:
    """Module name -> (its operator, times it is called) for every convolution and linear layer one forward of
    ``example[:1]`` calls."""
    names = {m: n for n, m in model.named_modules()}
    found: dict[str, list] = {}

    def hook(module, inputs, _output):
        x = inputs[0]
        if isinstance(module, nn.Linear):
            op = Op("Linear", module.in_features, module.out_features, 1, (), (), (), (), tuple(x.shape[1:-1]),
                    module.bias is not None)
        else:
            transposed = isinstance(module, (nn.ConvTranspose1d, nn.ConvTranspose2d))
            op = Op("ConvTranspose" if transposed else "Conv", module.in_channels, module.out_channels, module.groups,
                    tuple(module.kernel_size), tuple(module.stride),
                    tuple(module.padding) * 2 if transposed else _conv_pads(module), tuple(module.dilation),
                    tuple(x.shape[2:]), module.bias is not None)
        entry = found.setdefault(names[module], [op, 0])
        entry[1] += 1

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, LAYERS)]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(example[:1])
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return {n: (op, calls) for n, (op, calls) in found.items()}


def _onnx_file(op: Op | None, batch: int, path: Path) -> None:
    """``op`` alone as an ONNX graph with random weights and a static input of ``batch``; None: an identity on one
    number (what a call costs the runner whatever it runs, subtracted from every operator's time)."""
    import onnx  # noqa: PLC0415
    from onnx import TensorProto, helper, numpy_helper  # noqa: PLC0415

    rng = np.random.default_rng(0)
    inits, nodes = [], []
    if op is None:
        shape_in = shape_out = [1, 1]
        nodes.append(helper.make_node("Identity", ["x"], ["y"]))
    elif op.kind == "Linear":
        shape_in, shape_out = [batch, *op.spatial, op.cin], [batch, *op.spatial, op.cout]
        inits.append(numpy_helper.from_array(rng.standard_normal((op.cin, op.cout)).astype(np.float32), "W"))
        nodes.append(helper.make_node("MatMul", ["x", "W"], ["m" if op.bias else "y"]))
        if op.bias:
            inits.append(numpy_helper.from_array(rng.standard_normal(op.cout).astype(np.float32), "B"))
            nodes.append(helper.make_node("Add", ["m", "B"], ["y"]))
    else:
        transposed = op.kind == "ConvTranspose"
        weight = (op.cin, op.cout // op.groups) if transposed else (op.cout, op.cin // op.groups)
        inits.append(numpy_helper.from_array(rng.standard_normal((*weight, *op.kernel)).astype(np.float32), "W"))
        if op.bias:
            inits.append(numpy_helper.from_array(rng.standard_normal(op.cout).astype(np.float32), "B"))
        nodes.append(helper.make_node(op.kind, ["x", "W", *(["B"] if op.bias else [])], ["y"], kernel_shape=list(op.kernel),
                                      strides=list(op.stride), pads=list(op.pads), dilations=list(op.dilation),
                                      group=op.groups))
        shape_in, shape_out = [batch, op.cin, *op.spatial], None
    graph = helper.make_graph(nodes, "op", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape_in)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape_out)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


class _Call(nn.Module):
    """What a call of the runtime costs whatever it runs: one addition on one number per example."""

    def forward(self, x):
        return x + 1


_CONVS = {("Conv", 1): nn.Conv1d, ("Conv", 2): nn.Conv2d, ("Conv", 3): nn.Conv3d,
          ("ConvTranspose", 1): nn.ConvTranspose1d, ("ConvTranspose", 2): nn.ConvTranspose2d}


def _op_module(op: Op | None) -> tuple[nn.Module, tuple]:
    """``op`` as a torch layer with random weights and its input shape without the batch (None: :class:`_Call`).
    Asymmetric padding is padded explicitly before the convolution, as an ONNX file states it."""
    if op is None:
        return _Call(), (1,)
    if op.kind == "Linear":
        return nn.Linear(op.cin, op.cout, bias=op.bias), (*op.spatial, op.cin)
    dims = len(op.kernel)
    begin, end = op.pads[:dims], op.pads[dims:]
    symmetric = begin == end or op.kind == "ConvTranspose"
    layer = _CONVS[(op.kind, dims)](op.cin, op.cout, op.kernel, stride=op.stride, padding=begin if symmetric else 0,
                                    dilation=op.dilation, groups=op.groups, bias=op.bias)
    if not symmetric:
        pad = [p for b, e in zip(reversed(begin), reversed(end)) for p in (b, e)]  # F.pad: the last dimension first
        layer = nn.Sequential(nn.ZeroPad1d(pad) if dims == 1 else nn.ZeroPad2d(pad) if dims == 2 else nn.ZeroPad3d(pad),
                              layer)
    return layer, (op.cin, *op.spatial)


def _op_file(op: Op | None, batch: int, path: Path, runtime: str) -> None:
    """``op`` alone as a file of ``runtime`` (None: what a call costs)."""
    if runtime == "onnxruntime":
        _onnx_file(op, batch, path)
        return
    module, shape = _op_module(op)  # (random weights: the time does not depend on them)
    export_for(module.eval(), path, runtime, batch=batch, input_shape=shape)


def _grid(channels: int, variable: bool, block: int) -> list[int]:
    """The widths a layer dimension is timed at: its own, and :data:`GRID`'s fractions rounded to ``block``."""
    if not variable:
        return [channels]
    out = {channels}
    for f in GRID[1:]:
        w = int(channels * f) // block * block if channels > block else int(channels * f)
        out.add(max(w, min(block, channels), 1))
    return sorted(out)


def _interp(xs: list[int], x: float) -> tuple[int, int, float]:
    """(lower index, upper index, weight of the upper) of ``x`` among sorted ``xs``, extrapolating linearly."""
    if len(xs) == 1:
        return 0, 0, 0.0
    i = min(max(bisect.bisect_left(xs, x) - 1, 0), len(xs) - 2)  # np.searchsorted on a short list: 10x slower
    return i, i + 1, (x - xs[i]) / (xs[i + 1] - xs[i])


@dataclass
class LatencyTable:
    """Per layer: the widths timed and the milliseconds there; ``c0``, ``k``: the additive model's fit."""

    key: str
    device: dict
    batch: int
    layers: dict  # name -> {"calls", "cin": [...], "cout": [...], "ms": [[...]]} (cin x cout; depthwise: one row)
    c0: float = 0.0
    k: float = 1.0
    error: dict | None = None
    reference_ms: float | None = None  # the input model's measured latency when the table was built

    def layer_ms(self, name: str, cin: int, cout: int) -> float:
        entry = self.layers[name]
        ms = entry["ms"]
        if entry.get("depthwise"):
            i, j, w = _interp(entry["cout"], cout)
            return entry["calls"] * ((1 - w) * ms[0][i] + w * ms[0][j])
        a, b, u = _interp(entry["cin"], cin)
        c, d, v = _interp(entry["cout"], cout)
        value = ((1 - u) * (1 - v) * ms[a][c] + u * (1 - v) * ms[b][c] + (1 - u) * v * ms[a][d] + u * v * ms[b][d])
        return entry["calls"] * value

    def layer_sum(self, widths: dict[str, tuple[int, int]]) -> float:
        """Summed layer milliseconds of a model whose layers have ``widths`` (name -> (in, out); absent: removed)."""
        return sum(self.layer_ms(n, *w) for n, w in widths.items() if n in self.layers)

    def predict(self, widths: dict[str, tuple[int, int]]) -> float:
        """Predicted milliseconds of a model whose layers have ``widths``."""
        return self.c0 + self.k * self.layer_sum(widths)

    # -- the fit ----------------------------------------------------------------------------------
    def fit(self, sums: list[float], measured: list[float], held_out: int) -> None:
        """``c0``, ``k`` by least squares of the relative error on all but the last ``held_out`` (layer sum, measured ms)
        pairs; ``error`` on those."""
        n = len(sums) - held_out
        if n < 2:
            raise ConfigError(f"a latency table needs at least 2 fitting timings, got {n}")
        x, y = np.array(sums[:n]), np.array(measured[:n])
        # relative residuals (weights 1/y): the dense model's large time must not pull the small models' fit
        k, c0 = np.polyfit(x, y, 1, w=1 / y) if np.ptp(x) > 0 else (0.0, float(np.mean(y)))
        if k <= 0 or c0 < 0:  # a fit without physical meaning (noise): proportional through the origin instead
            k, c0 = float(np.sum(x / y) / np.sum(x * x / (y * y))), 0.0
        self.k, self.c0 = float(k), float(c0)
        pairs = [[m, self.c0 + self.k * s] for s, m in zip(sums[n:], measured[n:])]
        errors = [abs(p - m) / m * 100 for m, p in pairs]
        self.error = {"median_abs_pct": statistics.median(errors) if errors else None,
                      "max_abs_pct": max(errors) if errors else None, "held_out": pairs,
                      "fitted_on": n, "points": [[a, b] for a, b in zip(sums, measured)]}  # (layer sum, measured)

    # -- files --------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        return write_json(path, {"version": VERSION, **asdict(self)}, sealed=True)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "LatencyTable":
        data = read_json(path, "latency table")
        if data.get("version") != VERSION:
            raise ConfigError(f"latency table {str(path)!r} has version {data.get('version')!r}; this edgeprune "
                              f"reads version {VERSION} (build it again)")
        data.pop("version")
        try:
            return cls(**data)
        except TypeError:
            raise ConfigError(f"latency table {str(path)!r} does not hold a latency table's fields "
                              f"({', '.join(sorted(data))})") from None


def widths_of(model: nn.Module, example: torch.Tensor) -> dict[str, tuple[int, int]]:
    """Name -> (input, output) widths of every convolution and linear layer ``model`` calls."""
    return widths_in(census(model, example))


def widths_in(ops: dict[str, tuple[Op, int]]) -> dict[str, tuple[int, int]]:
    """Name -> (input, output) widths of the layers of a :func:`census` as they are (the unpruned model's)."""
    return {n: (op.cin, op.cout) for n, (op, _) in ops.items()}


def predicted_widths(ops: dict[str, tuple[Op, int]], structure: StructurePlan, fractions: dict[str, float],
                     round_to: int, model: nn.Module, removed: list[str] = ()) -> dict[str, tuple[int, int]]:
    """The widths :func:`edgeprune.surgery.ratios.prune_channels` gives ``model``'s layers for ``fractions``
    (module name -> fraction) and ``round_to``, computed without pruning: each group keeps
    :func:`~edgeprune.surgery.structure.kept_channels`, an attention keeps ``heads - round(f * heads)`` heads; layers
    inside ``removed`` blocks are gone."""
    heads = kept_heads(structure, fractions, model)
    kept = {}
    for name, f in group_fractions(structure, fractions).items():
        if name in ops and not any(name in names for names, _, _ in heads.values()):
            kept[name] = kept_channels(structure.channels[name], f, round_to, structure.channel_groups.get(name, 1))
    return widths_from(ops, structure, kept, heads, model, removed)


def kept_heads(structure: StructurePlan, fractions: dict[str, float], model: nn.Module) -> dict[str, tuple]:
    """Attention module -> (its q/k/v projections' names, heads kept, heads) for ``fractions``."""
    modules = dict(model.named_modules())
    out = {}
    for attn, heads in structure.heads.values():
        if attn in modules:
            names = [n for n, m in modules.items() if any(m is layer for layer in heads_lib.projections(modules[attn]))]
            asked = [float(fractions[n]) for n in names if n in fractions]
            out[attn] = (names, heads - (min(round(sum(asked) / len(asked) * heads), heads - 1) if asked else 0), heads)
    return out


def widths_from(ops: dict[str, tuple[Op, int]], structure: StructurePlan, kept: dict[str, int], heads: dict,
                model: nn.Module, removed: list[str] = ()) -> dict[str, tuple[int, int]]:
    """Name -> (input, output) widths of every layer when the groups' members keep ``kept`` output channels (name ->
    count; absent: all) and the attentions keep ``heads`` (:func:`kept_heads`); layers inside ``removed`` are gone."""
    out = {n: op.cout for n, (op, _) in ops.items()}
    cin = {n: op.cin for n, (op, _) in ops.items()}
    projections = {n for names, _, _ in heads.values() for n in names}
    for names, count, total in heads.values():
        for n in names:
            if n in out:
                out[n] = out[n] * count // total
    out.update({n: k for n, k in kept.items() if n in out})
    feeds: dict[str, list[tuple[int, int]]] = {}  # consumer -> (channels, kept) of each group it reads
    for members, consumers in zip(structure.groups, structure.consumers):
        width = next((out[m] for m in members if m in out), None)
        if width is not None:
            for c in set(consumers) & set(cin):
                feeds.setdefault(c, []).append((structure.channels[members[0]], width))
    for c, read in feeds.items():
        if len(read) == 1 and cin[c] % read[0][0] == 0:  # (a linear layer after a flatten reads C x H x W)
            cin[c] = cin[c] // read[0][0] * read[0][1]
        elif len(read) == 1 and read[0][0] % cin[c] == 0:  # (a GLU MLP's second layer reads half its first's outputs)
            cin[c] = read[0][1] * cin[c] // read[0][0]
        else:  # a concatenation of groups
            cin[c] -= sum(channels - count for channels, count in read)
    for n, (op, _) in ops.items():
        if op.depthwise:
            cin[n] = out[n]
    modules = dict(model.named_modules())
    for attn, (_, count, total) in heads.items():  # the output projection reads the kept heads
        for n, m in modules[attn].named_children():
            if f"{attn}.{n}" in cin and f"{attn}.{n}" not in projections and isinstance(m, nn.Linear):
                cin[f"{attn}.{n}"] = ops[f"{attn}.{n}"][0].cin * count // total
    gone = tuple(f"{b}." for b in removed)
    return {n: (cin[n], out[n]) for n in ops if not n.startswith(gone)}


def _variable(structure: StructurePlan, ops: dict) -> tuple[set, set]:
    """(layers whose output width pruning may change, layers whose input width it may change)."""
    outs, ins = set(), set()
    for members, consumers in zip(structure.groups, structure.consumers):
        if any(m in structure.protected for m in members):
            continue
        outs.update(members)
        ins.update(consumers)
    for attn, _ in structure.heads.values():
        outs.update(n for n in ops if n.startswith(attn + "."))
        ins.update(n for n in ops if n.startswith(attn + "."))
    ins.update(n for n, (op, _) in ops.items() if op.depthwise and n in outs)
    return outs, ins


def key_of(ops: dict, device: Device, batch: int, runtime: str = "onnxruntime") -> str:
    extra = [] if runtime == "onnxruntime" else [runtime]  # (the tables cached before other runtimes had tables keep their keys)
    text = json.dumps([VERSION, sorted((n, asdict(op), c) for n, (op, c) in ops.items()), device.describe(), batch,
                       *extra], sort_keys=True, default=list)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def cache_path(key: str) -> Path:
    root = Path(os.environ.get("EDGEPRUNE_CACHE") or Path.home() / ".cache" / "edgeprune")
    return root / "tables" / f"{key}.json"


def build(model: nn.Module, example: torch.Tensor, device: Device, structure: StructurePlan,
          candidates: list[nn.Module], *, batch: int = 1, held_out: int | None = None, progress=None,
          runtime: str = "onnxruntime", layer_block_ms: float = TABLE_BLOCK_MS,
          model_block_ms: float = TABLE_BLOCK_MS) -> LatencyTable:
    """Time ``model``'s layers at the grid widths on ``device`` in ``runtime`` (one call), then ``model`` and
    ``candidates`` (pruned copies of it) whole (one call, in alternation), and fit the additive model on ``model`` and
    the first half of the candidates; its error is measured on the rest (``held_out``: how many; default half).
    ``layer_block_ms``, ``model_block_ms``: the files' blocks of calls (see :data:`TABLE_BLOCK_MS`)."""
    ops = census(model, example)
    outs, ins = _variable(structure, ops)
    block = channel_block()
    suffix = {r: s for s, r in SUFFIX.items()}[runtime]
    table = LatencyTable(key_of(ops, device, batch, runtime), {**device.describe(), "runtime": runtime}, batch, {})
    files: dict[Op, int] = {}
    with tempfile.TemporaryDirectory(prefix="edgeprune-table-") as folder:
        plan = {}
        for name, (op, calls) in ops.items():
            grouped = op.groups > 1 and not op.depthwise  # (widths must stay multiples of the groups: timed whole)
            couts = _grid(op.cout, name in outs and not grouped, block)
            cins = [None] if op.depthwise else _grid(op.cin, name in ins and not grouped, block)
            plan[name] = (op, calls, cins, couts)
            for ci in cins:
                for co in couts:
                    files.setdefault(op.at(co if ci is None else ci, co), len(files))
        if progress and runtime != "onnxruntime":
            progress(f"exporting {len(files) + 1} one-layer {runtime} files of {len(ops)} layers")
        paths = [Path(folder) / f"call{suffix}"]
        _op_file(None, batch, paths[0], runtime)
        for op, i in files.items():
            path = Path(folder) / f"op{i}{suffix}"
            _op_file(op, batch, path, runtime)
            paths.append(path)
        if progress:
            progress(f"timing {len(paths)} one-layer files of {len(ops)} layers on {device.name} ({runtime})")
        call, *medians = [statistics.median(t) for t in device.time(paths, None, batch, rounds=OP_ROUNDS, warmup=2, block_ms=layer_block_ms)]
        medians = [max(m - call, 0.0) for m in medians]
        for name, (op, calls, cins, couts) in plan.items():
            ms = [[medians[files[op.at(co if ci is None else ci, co)]] for co in couts] for ci in cins]
            table.layers[name] = {"calls": calls, "cin": [c for c in cins if c is not None] or couts, "cout": couts,
                                  "ms": ms, "depthwise": op.depthwise}
        whole = [model, *candidates]
        held = len(candidates) // 2 if held_out is None else held_out
        sums = [table.layer_sum(widths_of(m, example)) for m in whole]
        model_paths = []
        for i, m in enumerate(whole):
            path = Path(folder) / f"model{i}{suffix}"
            if runtime == "onnxruntime":
                export_for_timing(m, path, input_shape=tuple(example.shape[1:]))
            else:
                export_for(m, path, runtime, batch=batch, input_shape=tuple(example.shape[1:]))
            model_paths.append(path)
        if progress:
            progress(f"timing {len(model_paths)} whole models on {device.name}")
        measured = [statistics.median(t) for t in
                    device.time(model_paths, tuple(example.shape[1:]), batch, rounds=MODEL_ROUNDS, block_ms=model_block_ms)]
    table.reference_ms = measured[0]
    table.fit(sums, measured, held)
    return table


def cached(model: nn.Module, example: torch.Tensor, device: Device, structure: StructurePlan, candidates,
           *, batch: int = 1, progress=None, rebuild: bool = False, runtime: str = "onnxruntime") -> LatencyTable:
    """The cached table of (``model``'s structure, ``device``, ``batch``, ``runtime``), or :func:`build` it and cache
    it (``rebuild``: build it again, e.g. after timing it on a busy machine); ``candidates``: a callable giving the
    pruned copies to fit and check on (called only when building)."""
    path = cache_path(key_of(census(model, example), device, batch, runtime))
    if path.exists() and not rebuild:
        return LatencyTable.load(path)
    table = build(model, example, device, structure, candidates(), batch=batch, progress=progress, runtime=runtime)
    table.save(path)
    return table


__all__ = ["LatencyTable", "Op", "census", "widths_of", "widths_in", "predicted_widths", "kept_heads", "widths_from", "build", "cached",
           "cache_path", "key_of"]

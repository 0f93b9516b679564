"""torch-pruning's dependency graph of a model: how it is traced, and what it says.

torch-pruning traces the model once (:func:`build_graph`, through the forward a runtime runs, see
:func:`dense_forward`) and finds which layers' channels are coupled. This module holds what every structural
change starts from: the trace, the layers producing the model's output (:func:`output_modules`, never pruned),
and the translation between module names and torch-pruning's groups (:func:`named`, :func:`group_of`).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Sequence

import torch
from torch import nn

from edgeprune.errors import ConfigError, ModelError
from edgeprune.surgery.lazy import tp
from edgeprune.surgery.recurrent import opaque
from edgeprune.surgery.rules import customized_pruners
from edgeprune.tasks import current as current_task

#: layers whose output channels a plan may name (the roots of torch-pruning groups)
ROOT_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def dense_forward(model: nn.Module, x: torch.Tensor):
    """``model``'s forward as a runtime runs it: the current task's deployable part (a detector before its
    decoding and NMS, whose eval output is a list of dicts of varying sizes; the model itself for other tasks).
    What structured pruning traces and checks, with module names still relative to ``model``."""
    return current_task().deployable(model)(x)


def trace_forward(model: nn.Module, x: torch.Tensor):
    """:func:`dense_forward` for torch-pruning's trace, run in train mode when that reaches layers the eval forward
    does not (GoogLeNet's and Inception v3's auxiliary classifiers run only in training: a graph traced without
    them leaves their input widths stale and the fine-tune fails). Buffers (BatchNorm statistics) are restored."""
    with opaque(model):
        if not _train_only_layers(model, x):
            return dense_forward(model, x)
        with in_mode(model, True, after=False):
            return dense_forward(model, _two(x))


def _two(x):
    """A batch of one repeated to two: batch norm in training mode cannot run one value per channel (Inception v3's
    auxiliary head normalises a 1x1 map)."""
    return torch.cat([x, x]) if isinstance(x, torch.Tensor) and x.dim() > 0 and x.shape[0] == 1 else x


@contextmanager
def in_mode(model: nn.Module, training: bool, after: bool):
    """``model`` in train (``training``) or eval mode inside, in mode ``after`` and with its buffers (BatchNorm
    statistics) as they were afterwards."""
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    model.train(training)
    try:
        yield
    finally:
        model.train(after)
        with torch.no_grad():
            for name, b in model.named_buffers():
                b.copy_(buffers[name])


def _reached(model: nn.Module, x: torch.Tensor, training: bool) -> set[nn.Module]:
    """The prunable layers ``model``'s forward reaches in the given mode (empty if that forward fails)."""
    seen: set[nn.Module] = set()
    hooks = [m.register_forward_hook(lambda m, i, o: seen.add(m)) for m in model.modules() if isinstance(m, ROOT_TYPES)]
    try:
        with in_mode(model, training, after=model.training), torch.no_grad():
            dense_forward(model, _two(x) if training else x)
    except Exception:  # noqa: BLE001  (a forward that fails in train mode, a detector without targets: eval it is)
        seen.clear()
    finally:
        for h in hooks:
            h.remove()
    return seen


def _train_only_layers(model: nn.Module, x: torch.Tensor) -> bool:
    """Whether ``model`` has prunable layers that only its train-mode forward reaches."""
    everything = {m for m in model.modules() if isinstance(m, ROOT_TYPES)}
    in_eval = _reached(model, x, training=False)
    return bool(everything - in_eval) and bool(_reached(model, x, training=True) - in_eval)


def build_graph(model: nn.Module, example_input: torch.Tensor):
    """torch-pruning's DependencyGraph of ``model`` traced on ``example_input`` (through :func:`dense_forward`).

    The trace runs in eval mode so BatchNorm running statistics are not updated by it; the model's
    train/eval mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    mapping = tp.dependency.index_mapping
    original = mapping.update_concat_index_mapping
    mapping.update_concat_index_mapping = update_concat_index_mapping
    try:
        with torch.enable_grad():
            graph = tp.DependencyGraph().build_dependency(model, example_inputs=example_input, forward_fn=trace_forward,
                                                         verbose=False, customized_pruners=customized_pruners())
    except Exception as exc:  # tracing failures are model problems, not bugs of ours
        raise ModelError(f"cannot trace {type(model).__name__} for structured pruning: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    finally:
        mapping.update_concat_index_mapping = original
        model.train(was_training)
    return graph


def dismantle(graph) -> None:
    """Break the reference cycles of a dependency graph that is done with, so what it holds is freed at once rather
    than at the next full garbage collection: its nodes point at each other, and each holds the autograd function
    of its layer's traced output, which holds the weights as they were traced. Every pruned copy's pre-pruning
    weights stayed alive that way (ResNet-50, a structured budget's calibration: 2.6 GB resident instead of 1.7)."""
    for node in graph.module2node.values():
        node.inputs, node.outputs, node.dependencies, node.grad_fn = [], [], [], None
    graph.module2node = {}


def update_concat_index_mapping(graph, cat_node) -> None:
    """torch-pruning 1.6's ``update_concat_index_mapping`` with the "already addressed" test on a set of ids
    instead of ``any(dep is d for d in list)``: O(inputs^2) per concat instead of O(inputs^3), the difference
    between seconds and minutes on DenseNet's concats of up to 64 inputs; and a split's part sized by the part the
    concatenation reads (:func:`_channels_between`: HF CvT's class token, split from the tokens, each part read
    twice, then concatenated again, failed the trace). Same mappings otherwise."""
    im = tp.dependency.index_mapping
    if cat_node.type != tp.ops.OPTYPE.CONCAT:
        return
    dim = getattr(cat_node.grad_fn, "_saved_dim", 1)
    if dim != 1 and dim < tp.dependency.constants.MAX_VALID_DIM:
        return
    if cat_node.module.concat_sizes is None:
        cat_node.module.concat_sizes = [_channels_between(graph, n, cat_node) for n in cat_node.inputs]
    chs = cat_node.module.concat_sizes
    out_size = im.shape_infer.infer_in_channels_recursively(graph, cat_node, recursive_depth=[0])
    if out_size is not None and out_size != sum(chs):
        return  # concatenated along another dimension than the channels
    offsets = [0]
    for ch in chs:
        if ch is None:
            return
        offsets.append(offsets[-1] + ch)
    cat_node.module.offsets = offsets
    if not cat_node.enable_index_mapping:
        return
    for reverse in (True, False):
        addressed = set()
        for i, in_node in enumerate(cat_node.inputs):
            deps, target = (cat_node.dependencies, in_node) if reverse else (in_node.dependencies, cat_node)
            for dep in deps:
                if id(dep) in addressed:
                    continue
                if dep.target == target:
                    dep.index_mapping[1] = im._ConcatIndexMapping(offset=offsets[i: i + 2], reverse=reverse)
                    addressed.add(id(dep))
                    break


def _channels_between(graph, node, cat_node) -> int | None:
    """torch-pruning's width of ``node``'s output into ``cat_node``, where ``node`` is a split: the size of the part the
    concatenation reads (torch-pruning indexes the sizes by the split's consumers, which run past them when a part is
    read twice)."""
    if node.type != tp.ops.OPTYPE.SPLIT:
        return tp.dependency.shape_infer.infer_channels_between(graph, node, cat_node)
    parts = {nr for fn, nr in cat_node.grad_fn.next_functions if fn is node.grad_fn}
    sizes = node.module.split_sizes or ()
    if len(parts) != 1:
        return None
    part = parts.pop()
    return sizes[part] if part < len(sizes) else None


def output_modules(model: nn.Module, example_input: torch.Tensor | None = None, *, graph=None) -> set[str]:
    """Names of the Conv/Linear layers whose output channels are the model's output channels.

    Found on the traced graph: from every sink (a node nothing consumes) walk back through
    channel-preserving operations (norms, activations, pools, adds, reshapes) to the first Conv/Linear
    layers (and past frozen ones, see :func:`_frozen`). Changing their output channels would change the output shape, so they are never pruned.
    """
    graph = graph or build_graph(model, example_input)
    found: set[str] = set()
    stack = [node for node in graph.module2node.values() if not node.outputs]
    seen = set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node.module, ROOT_TYPES):
            name = named(graph, node.module)
            if name:
                found.add(name)
            if not _frozen(node.module):
                continue
        stack.extend(node.inputs)
    return found


def _frozen(module: nn.Module) -> bool:
    """A layer without trainable parameters (YOLO's DFL conv, a fixed expectation over bins): part of the
    computation of the output from the layers before it, which produce the output channels too."""
    params = list(module.parameters())
    return bool(params) and not any(p.requires_grad for p in params)


def widens_input(graph, module: nn.Module) -> bool:
    """A grouped conv reading the traced input with no Conv/Linear in between: its input channels move with its
    output channels, so pruning it would change the width of the input (of a block traced alone, see
    :mod:`edgeprune.surgery.blocks`)."""
    if not isinstance(module, nn.modules.conv._ConvNd) or module.groups == 1:
        return False
    stack, seen = [graph.module2node[module]], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if not node.inputs:
            return True
        stack.extend(n for n in node.inputs if not isinstance(n.module, ROOT_TYPES))
    return False


def named(graph, module) -> str | None:
    """The module name of ``module`` in ``graph`` (None: not a module of the traced model)."""
    return graph._module2name.get(module) if isinstance(module, nn.Module) else None


def sums_into_residual(module) -> bool:
    """Whether ``module`` (a node of a dependency group) is a sum of tensors: channels through it are a residual stream."""
    return isinstance(module, tp.ops._ElementWiseOp) and str(module._grad_fn).startswith(("Add", "Sub"))


def group_of(graph, module: nn.Module, idxs: Sequence[int]):
    """torch-pruning's group removing output channels ``idxs`` of ``module`` (and everything coupled to them)."""
    pruner = graph.get_pruner_of_module(module)
    if pruner is None:
        raise ConfigError(f"layer type {type(module).__name__} cannot lose output channels")
    return graph.get_pruning_group(module, pruner.prune_out_channels, list(idxs))



"""Helpers shared by the model families: argument checks, plain-type conversion, dry runs, weight init."""

from __future__ import annotations

import copy
import warnings
from collections import OrderedDict
from pathlib import PurePath

import torch
from torch import nn

from edgeprune.errors import ConfigError, ModelError


def first_line(exc: BaseException) -> str:
    """``"TypeName: first line of the message"`` of an exception, to embed in a one-line error."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def check_int(name: str, value, minimum: int, *, what: str = "") -> int:
    """Return ``value`` if it is an int >= ``minimum``, else raise a one-line ModelError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        where = f" for {what}" if what else ""
        raise ModelError(f"{name} must be an integer >= {minimum}{where}, got {value!r}")
    return value


def scaled_channels(channels: list, width_mult, what: str) -> list:
    """``channels`` (ints; other entries such as "M" pass through) times ``width_mult``, at least 1 each."""
    if isinstance(width_mult, bool) or not isinstance(width_mult, (int, float)) or not width_mult > 0:
        raise ModelError(f"width_mult must be a number > 0 for {what}, got {width_mult!r}")
    return [max(1, round(c * width_mult)) if isinstance(c, int) else c for c in channels]


def check_build_args(num_classes, in_channels, image_size) -> None:
    """Validate the three arguments every builder receives."""
    check_int("num_classes", num_classes, 2)
    check_int("in_channels", in_channels, 1)
    check_int("image_size", image_size, 1)


def to_plain(obj, what: str):
    """Convert ``obj`` to plain Python types (str/int/float/bool/None/list/dict) or raise ConfigError.

    Tuples become lists, paths become strings and numpy/torch scalars become Python numbers, so the
    result survives ``torch.load(..., weights_only=True)`` and JSON.
    """
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, (list, tuple)):
        return [to_plain(v, what) for v in obj]
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, (str, int)) or isinstance(k, bool):
                raise ConfigError(f"{what} keys must be str or int, got {k!r}")
            out[k] = to_plain(v, what)
        return out
    if isinstance(obj, torch.dtype):
        return str(obj).removeprefix("torch.")
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:  # numpy / torch scalars
        return obj.item()
    raise ConfigError(
        f"{what} must hold only str/int/float/bool/None/list/dict values, got {type(obj).__name__}: {obj!r:.60}"
    )


def unwrapped(model):
    """The module under ``torch.compile``, ``nn.DataParallel``, ``DistributedDataParallel`` or Ultralytics ``YOLO``
    wrappers (which share its parameters), with a warning; else ``model``.

    Pruning a wrapper recompiles it at every changed shape or names its layers ``module.*``, and its export fails;
    the user wraps the pruned model again."""
    inner, wrappers = model, []
    while True:
        if type(inner).__name__ == "OptimizedModule" and isinstance(getattr(inner, "_orig_mod", None), nn.Module):
            wrappers.append("torch.compile")
            inner = inner._orig_mod
        elif isinstance(inner, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            wrappers.append(type(inner).__name__)
            inner = inner.module
        elif _ultralytics_model(inner):  # YOLO("yolov8n-cls.pt"): its train() is Ultralytics' trainer, not nn.Module's
            wrappers.append(f"{type(inner).__name__} (Ultralytics)")
            inner = inner.model
        elif type(inner).__name__ == "DetectionModel" and type(inner).__module__.startswith("ultralytics."):
            from edgeprune.models.yolo import detector_of  # noqa: PLC0415  (yolo.py imports this module)

            warnings.warn("the model is an Ultralytics YOLO detector: edgeprune works on a copy behind torchvision's "
                          "detection API (edgeprune.models.yolo.YoloDetector, its classes as labels 1..nc)",
                          UserWarning, stacklevel=3)
            return detector_of(copy.deepcopy(inner), type(inner).__name__)
        else:
            break
    if wrappers:
        warnings.warn(f"the model is a {' of a '.join(wrappers)} wrapper of {type(inner).__name__}: edgeprune works "
                      "on that module (wrap the result again)", UserWarning, stacklevel=3)
    return inner


def _ultralytics_model(model) -> bool:
    """An Ultralytics ``Model`` (``YOLO(...)``, ``RTDETR(...)``): the user-facing object around its network."""
    return isinstance(getattr(model, "model", None), nn.Module) and any(
        c.__name__ == "Model" and c.__module__ == "ultralytics.engine.model" for c in type(model).__mro__)


@torch.no_grad()
def first_conv(model: nn.Module) -> nn.Module | None:
    """``model``'s first convolution (its rank tells an image model from a 1-D one), None if it has none."""
    return next((m for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d))), None)


def probe_input(model: nn.Module, in_channels: int, image_size: int, batch: int = 1, seed: int | None = None) -> torch.Tensor:
    """A random input batch the model's build describes: [B, C, L] for a 1-D model (image_size is the length),
    [B, C, H, W] otherwise."""
    size = (image_size,) if isinstance(first_conv(model), nn.Conv1d) else (image_size, image_size)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    return torch.randn(batch, in_channels, *size, generator=generator)


def input_shape(model: nn.Module) -> tuple[int, ...]:
    """One input of a model as its ``edgeprune_build`` describes it: its ``input_shape`` (a model of the user's own
    class, the shape taken from its data), else (C, H, W), or (C, L) for a 1-D model."""
    build = model.edgeprune_build
    if build.get("input_shape"):
        return tuple(build["input_shape"])
    return tuple(probe_input(model, int(build["in_channels"]), int(build["image_size"])).shape[1:])


def dry_run_shape(module: nn.Module, in_channels: int, image_size: int) -> torch.Size:
    """Shape of ``module``'s output for one zero image; a RuntimeError means the input is too small."""
    was_training = module.training
    module.eval()
    try:
        return module(torch.zeros(1, in_channels, image_size, image_size)).shape
    finally:
        module.train(was_training)


def init_cnn_weights(model: nn.Module) -> None:
    """Kaiming-normal convs (fan_out, ReLU) with zero bias and unit/zero norms.

    Linear layers keep PyTorch's default (Kaiming-uniform), which suits the small classifier heads here.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def logits_of(output) -> torch.Tensor:
    """Logits from a model output: a tensor, an object or dict with ``logits`` (HF), torchvision segmentation's dict
    ``{"out"[, "aux"]}`` (its ``out``), or a tuple's first item."""
    if isinstance(output, torch.Tensor):
        return output
    logits = getattr(output, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    if isinstance(output, dict):
        for key in ("logits", "out"):
            if isinstance(output.get(key), torch.Tensor):
                return output[key]
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise ModelError(f"cannot find logits in a model output of type {type(output).__name__}")


def loss_logits(output) -> torch.Tensor:
    """:func:`logits_of` in float32, fit for a loss: probabilities (a softmax head, as Ultralytics' ``Classify`` returns
    in eval mode) become their logarithm, which softmax maps back to them; taken as logits, probabilities would make
    a distillation target almost uniform and a cross-entropy nearly flat."""
    logits = logits_of(output).float()
    with torch.no_grad():
        probabilities = logits.ndim == 2 and logits.shape[1] > 1 and bool((logits >= 0).all()) and bool(
            torch.allclose(logits.sum(1), torch.ones(len(logits), device=logits.device), atol=1e-4))
    return logits.clamp_min(torch.finfo(logits.dtype).tiny).log() if probabilities else logits


class LogitsOnly(nn.Module):
    """``model`` with its output reduced to the logits (for runtimes that keep one output)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return logits_of(self.model(x))


@torch.no_grad()
def logits_only(model: nn.Module, example: torch.Tensor) -> nn.Module:
    """``model`` itself when it returns a tensor, else :class:`LogitsOnly` around it (in ``model``'s mode)."""
    was_training = model.training
    try:
        output = model.eval()(example)
    finally:
        model.train(was_training)
    return model if isinstance(output, torch.Tensor) else LogitsOnly(model).train(was_training)


def load_state(model: nn.Module, state: dict, *, strict: bool = True):
    """``model.load_state_dict(state)`` for a state that lost its per-module metadata (a plain dict: a copy, a
    checkpoint). The module versions are taken from ``model`` itself: some modules refuse a state without theirs
    (torchvision's MNASNet raises "version should be set to 1 or 2")."""
    if getattr(state, "_metadata", None) is None:
        metadata = getattr(model.state_dict(), "_metadata", None)
        state = OrderedDict(state)
        if metadata is not None:
            state._metadata = metadata
    return model.load_state_dict(state, strict=strict)


"""One registry of model builders and the ``create`` entry point for every model spec.

A spec is a zoo name (``resnet20`` or ``zoo:resnet20``), a prefixed reference handled by an adapter
(``hf:<id or folder>``, ``hf-config:<model_type>``, ``timm:<name>``, ``torchvision:<name>``, ``smp:<arch>``,
``yolo:<name>``) or a factory in the user's own file, ``path/to/file.py:build`` (see :mod:`edgeprune.models.userfile`).
Every model maps a float batch [B, C, H, W] to logits [B, num_classes] (segmentation models: per-pixel logits, see
:mod:`edgeprune.models.segmentation`; detectors: torchvision's detection API, see :mod:`edgeprune.models.detection`,
:mod:`edgeprune.models.yolo` and :mod:`edgeprune.models.hf_detection`;
1-D zoo models take [B, C, L]) and carries ``model.edgeprune_build``, the plain-typed
recipe :func:`edgeprune.models.load` uses to rebuild it: ``spec`` (file paths made absolute), ``num_classes``,
``in_channels``, ``image_size``, ``kwargs``, and the model's ``class`` (qualname) and ``module``.
"""

from __future__ import annotations

import inspect
from typing import Callable

from torch import nn

from edgeprune.errors import ConfigError
from edgeprune.models import adapters, detection, hf, hf_detection, segmentation, userfile, yolo
from edgeprune.models._common import check_build_args, to_plain

Builder = Callable[..., nn.Module]

# torchvision builders by the torchvision.models module a name is in (adapters.torchvision_module); the rest go
# to adapters.create_torchvision (classifiers). Segmentation support registers its builder under "segmentation".
TORCHVISION_BY_MODULE: dict[str, Builder] = {"detection": detection.create_torchvision_detector}

# filled by the families' @register when edgeprune.models (which any import of this module runs first) loads
_ZOO: dict[str, tuple[Builder, str]] = {}

PREFIXES: dict[str, str] = {
    "hf:": "HF transformers image classifier from a hub id or a local folder (from_pretrained)",
    "hf-config:": "untrained HF transformers classifier from a config model_type (vit, deit, swin, levit, convnext...); "
                  "segformer-b0..b5 (segmentation); detr, yolos (small detectors, torchvision's detection API)",
    "timm:": "timm model by name, random init (extra [zoo]; weights=PATH local weights, pretrained=True hub; "
             "edgeprune models --list timm)",
    "torchvision:": "torchvision classification, segmentation or detection model by name, random init (extra [zoo]; "
                    "weights=PATH local weights, weights=DEFAULT hub; edgeprune models --list torchvision); segmentation: "
                    "lraspp_mobilenet_v3_large, deeplabv3_*, fcn_* (per-pixel logits); detection: ssdlite320_*, fasterrcnn_*, "
                    "fcos_*, retinanet_* (torchvision's detection API)",
    segmentation.SMP_PREFIX: segmentation.SMP_HELP,
    "yolo:": "Ultralytics YOLO detector from its bundled YAML (yolov8n, yolo11n...), random init (extra [yolo])",
    userfile.PREFIX_HELP: "factory in your own Python file, called with the options (--arg key=value) and "
                          "those of num_classes, in_channels, image_size its signature accepts",
}


def register(name: str, description: str) -> Callable[[Builder], Builder]:
    """Decorator adding a zoo builder ``fn(num_classes, in_channels, image_size, *, **options)``.

    The builder's keyword-only parameters are the options ``create`` accepts for that model.
    """
    key = name.lower()

    def decorator(fn: Builder) -> Builder:
        if key in _ZOO and _ZOO[key][0] is not fn:
            raise ValueError(f"zoo model {key!r} is already registered")
        _ZOO[key] = (fn, description)
        return fn

    return decorator


def list_models() -> dict[str, str]:
    """Name -> one-line description of every zoo model, plus the spec prefixes."""
    out = {name: desc for name, (_, desc) in sorted(_ZOO.items())}
    out.update(PREFIXES)
    return out


def _unknown_spec(spec: str) -> ConfigError:
    return ConfigError(
        f"unknown model spec {spec!r}; allowed: a zoo name ({', '.join(sorted(_ZOO))}, optionally as zoo:<name>) "
        f"or a prefix {', '.join(PREFIXES)}"
    )


def _zoo_options(builder: Builder) -> list[str]:
    params = inspect.signature(builder).parameters.values()
    return [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]


DEFAULT_IMAGE_SIZE = 32


def create(spec: str, num_classes: int = 10, in_channels: int = 3, image_size: int | None = None,
           **kwargs) -> nn.Module:
    """Build the model named by ``spec`` for ``in_channels`` x ``image_size``² inputs and ``num_classes``.

    ``image_size`` None: the model's own input size if it is built for one (a timm DeiT or LeViT, an HF
    config with ``image_size``, a torchvision ViT: see :func:`adapters.own_input_size`), else 32.

    ``kwargs`` are the zoo model's options (e.g. ``dim=`` for ``vit``), HF config overrides for
    ``hf-config:``, ``from_pretrained`` options for ``hf:``, builder arguments for timm/torchvision, and the
    factory's keyword arguments for ``file.py:factory``. The model is stamped with ``model.edgeprune_build`` so ``save(model, path)`` needs no spec.
    Raises ConfigError (unknown spec/option), ModelError (impossible sizes) or DependencyError.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"model spec must be a non-empty string, got {spec!r}")
    spec = spec.strip()
    options = to_plain(kwargs, f"options of model {spec!r}")
    extra: dict = {}

    prefix, sep, ref = spec.partition(":")
    kind = prefix.lower() if sep else "zoo"
    if image_size is None:
        image_size = adapters.own_input_size(kind, ref, options) or DEFAULT_IMAGE_SIZE
    check_build_args(num_classes, in_channels, image_size)
    if userfile.is_file_spec(spec):
        model, spec = userfile.create_from_file(spec, num_classes, in_channels, image_size, options)
    elif spec.lower().endswith(".py"):
        raise ConfigError(f"model spec {spec!r} names a file but no factory; allowed: {userfile.PREFIX_HELP}")
    elif kind == "zoo":
        model = _create_zoo(ref if sep else spec, num_classes, in_channels, image_size, options, spec)
    elif f"{kind}:" not in PREFIXES or not ref:
        raise _unknown_spec(spec)
    elif segmentation.handles(kind, ref):  # per-pixel logits: torchvision's segmentation, smp:, hf-config:segformer-bN
        model, extra = segmentation.create(kind, ref, num_classes, in_channels, image_size, options)
    elif hf_detection.handles(kind, ref):  # hf-config:detr, hf-config:yolos: torchvision's detection API
        model, extra = hf_detection.create(ref, num_classes, in_channels, image_size, options)
    elif kind in ("hf", "hf-config"):
        build = hf.from_pretrained if kind == "hf" else hf.from_model_type
        model, extra = build(ref, num_classes, in_channels, image_size, options)
    elif kind == "yolo":
        model = yolo.create_yolo(ref, num_classes, in_channels, image_size, options)
    elif kind == "timm":
        model = adapters.create_timm(ref, num_classes, in_channels, image_size, options)
    else:
        build = TORCHVISION_BY_MODULE.get(adapters.torchvision_module(ref), adapters.create_torchvision)
        model = build(ref, num_classes, in_channels, image_size, options)

    model.edgeprune_build = {
        "spec": spec,
        "num_classes": num_classes,
        "in_channels": in_channels,
        "image_size": image_size,
        "kwargs": options,
        **extra,
        "class": type(model).__qualname__,
        "module": type(model).__module__,
    }
    return model


def _create_zoo(name: str, num_classes, in_channels, image_size, options: dict, spec: str) -> nn.Module:
    entry = _ZOO.get(name.strip().lower())
    if entry is None:
        raise _unknown_spec(spec)
    builder = entry[0]
    allowed = _zoo_options(builder)
    for key in options:
        if key not in allowed:
            raise ConfigError(
                f"unknown option {key!r} for model {name!r}; allowed: {', '.join(allowed) or 'none'}"
            )
    return builder(num_classes, in_channels, image_size, **options)

"""Semantic segmentation models: torchvision's segmentation builders, segmentation-models-pytorch and HF SegFormer.

Specs (random weights, built offline; ``num_classes`` counts the background):

* ``torchvision:<name>`` for ``lraspp_mobilenet_v3_large``, ``deeplabv3_mobilenet_v3_large``,
  ``deeplabv3_resnet50/101``, ``fcn_resnet50/101``: built with ``weights=None, weights_backbone=None`` (a local
  ``weights=PATH`` loads, the classifier kept fresh when ``num_classes`` differs); ``aux_loss=True`` adds the
  auxiliary head where the builder has one. They return torchvision's dict ``{"out"[, "aux"]}`` at full resolution.
* ``smp:<arch>`` or ``smp:<arch>-<encoder>`` (extra ``[seg]``): ``segmentation_models_pytorch.create_model`` with
  ``encoder_weights=None``, e.g. ``smp:unet-resnet18``, ``smp:unet-efficientnet-b0``, ``smp:fpn-mobilenet_v2``; the
  architecture is case-insensitive, the encoder is smp's name (its default, ``resnet34``, when none is given; also
  as the option ``encoder_name=``). Other options are the architecture's own (``decoder_channels=``...). A tensor at
  full resolution.
* ``hf-config:segformer-b0`` .. ``-b5``: ``SegformerForSemanticSegmentation`` from a local ``SegformerConfig`` at
  the size of NVIDIA's checkpoints (overrides as for ``hf-config:``); a tensor at a quarter of the resolution (the
  segmentation task resizes it to the mask).
"""

from __future__ import annotations

import inspect

import torch
from torch import nn

from edgeprune.errors import ConfigError, DependencyError, ModelError
from edgeprune.models import adapters, hf
from edgeprune.models._common import first_line

SMP_PREFIX = "smp:"
SMP_HELP = "segmentation-models-pytorch model smp:<arch>[-<encoder>], e.g. smp:unet-resnet18, random init (extra [seg])"
_SMP_RESERVED = {"classes": "num_classes", "in_channels": "in_channels", "aux_params": "a segmentation output"}

# NVIDIA's SegFormer sizes (nvidia/mit-b0 ... mit-b5): encoder widths and depths, decoder width
_MIT_WIDE = [64, 128, 320, 512]
SEGFORMER_SIZES = {
    "b0": {"hidden_sizes": [32, 64, 160, 256], "depths": [2, 2, 2, 2], "decoder_hidden_size": 256},
    "b1": {"hidden_sizes": _MIT_WIDE, "depths": [2, 2, 2, 2], "decoder_hidden_size": 256},
    "b2": {"hidden_sizes": _MIT_WIDE, "depths": [3, 4, 6, 3], "decoder_hidden_size": 768},
    "b3": {"hidden_sizes": _MIT_WIDE, "depths": [3, 4, 18, 3], "decoder_hidden_size": 768},
    "b4": {"hidden_sizes": _MIT_WIDE, "depths": [3, 8, 27, 3], "decoder_hidden_size": 768},
    "b5": {"hidden_sizes": _MIT_WIDE, "depths": [3, 6, 40, 3], "decoder_hidden_size": 768},
}
SEGFORMER_HEAD = "SegformerForSemanticSegmentation"


def _torchvision_names() -> set[str]:
    try:
        tv_models = adapters.import_optional("torchvision.models")
    except DependencyError:
        return set()  # create_torchvision reports the missing library
    return set(tv_models.list_models(module=tv_models.segmentation))


def handles(kind: str, ref: str) -> bool:
    """Is ``kind:ref`` a segmentation spec built here?"""
    ref = ref.strip().lower()
    if kind == "smp":
        return True
    if kind == "hf-config":
        return ref.startswith("segformer-")
    return kind == "torchvision" and ref in _torchvision_names()


def create(kind: str, ref: str, num_classes: int, in_channels: int, image_size: int,
           options: dict) -> tuple[nn.Module, dict]:
    """The segmentation model ``kind:ref`` and its build extras (see the module docstring)."""
    if kind == "hf-config":
        return _segformer(ref.strip().lower(), num_classes, in_channels, image_size, options)
    build = _smp if kind == "smp" else _torchvision
    return build(ref.strip(), num_classes, in_channels, image_size, options), {}


@torch.no_grad()
def check_dense(model: nn.Module, what: str, in_channels: int, image_size: int) -> nn.Module:
    """``model`` if a zero image gives per-pixel logits [1, classes, h, w] (a tensor or a dict with ``out``), else a
    one-line ModelError (the input is too small or of the wrong size for the architecture)."""
    was_training = model.training
    model.eval()
    try:
        output = model(torch.zeros(1, in_channels, image_size, image_size))
    except (RuntimeError, ValueError, IndexError, AssertionError) as exc:
        raise ModelError(f"{what} cannot take {in_channels}x{image_size}x{image_size} inputs ({first_line(exc)}); "
                         "use a larger image_size (a multiple of 32 fits every encoder)") from None
    finally:
        model.train(was_training)
    logits = output.get("out") if isinstance(output, dict) else output
    if not isinstance(logits, torch.Tensor) or logits.ndim != 4:
        raise ModelError(f"{what} does not return per-pixel logits [batch, classes, h, w]")
    return model


def _torchvision(name: str, num_classes: int, in_channels: int, image_size: int, options: dict) -> nn.Module:
    tv_models = adapters.import_optional("torchvision.models")
    what = f"torchvision:{name}"
    options, local = adapters._local_weights(options)
    options = {"weights": None, "weights_backbone": None, **options}
    try:
        model = tv_models.get_model(name.lower(), num_classes=num_classes, **options)
    except (OSError, RuntimeError) as exc:
        if isinstance(exc, NotImplementedError):  # aux_loss=True for LR-ASPP
            raise ModelError(f"{what} cannot be built with {options} ({first_line(exc)})") from None
        raise DependencyError(f"{what} weights cannot be fetched offline ({first_line(exc)}); use weights=None, "
                              "weights_backbone=None") from None
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{what} cannot be built with {options} ({first_line(exc)})") from None
    model = adapters.adapt_first_conv(model, in_channels) if in_channels != 3 else model
    if local:
        adapters.load_local_weights(model, local, what, num_classes)
    return check_dense(model, what, in_channels, image_size)


def smp_parts(ref: str, options: dict) -> tuple[str, dict]:
    """(architecture, options with ``encoder_name``) of an ``smp:<arch>[-<encoder>]`` spec."""
    arch, _, encoder = ref.partition("-")
    if encoder and "encoder_name" in options:
        raise ConfigError(f"smp:{ref} names its encoder twice ({encoder!r} and encoder_name={options['encoder_name']!r}); "
                          "give one")
    return arch.lower(), {**options, "encoder_name": encoder} if encoder else dict(options)


def _smp(ref: str, num_classes: int, in_channels: int, image_size: int, options: dict) -> nn.Module:
    smp = adapters.import_optional("segmentation_models_pytorch")
    what = f"smp:{ref}"
    arch, options = smp_parts(ref, options)
    cls = smp.MODEL_ARCHITECTURES_MAPPING.get(arch)
    if cls is None:
        raise ConfigError(f"unknown smp architecture {arch!r} in {what!r}; allowed: {', '.join(smp.MODEL_ARCHITECTURES_MAPPING)}")
    allowed = [p for p in inspect.signature(cls.__init__).parameters
               if p not in ("self", "kwargs", *_SMP_RESERVED)]
    for key in options:
        if key in _SMP_RESERVED:
            raise ConfigError(f"pass {_SMP_RESERVED[key]} as an argument of create, not as the {what} option {key!r}")
        if key not in allowed:
            raise ConfigError(f"unknown option {key!r} for {what}; allowed: {', '.join(allowed)}")
    options = {"encoder_weights": None, **options}
    if options["encoder_weights"] is not None:
        why = hf._hub_unreachable()  # smp downloads encoder weights from the HF hub (and retries a dead network)
        if why is not None:
            raise DependencyError(f"{what} encoder weights {options['encoder_weights']!r} cannot be fetched ({why}); "
                                  "use encoder_weights=None")
    try:
        model = cls(in_channels=in_channels, classes=num_classes, **options)
    except KeyError as exc:
        if "encoder" in str(exc):
            raise ConfigError(f"unknown smp encoder {options.get('encoder_name', 'resnet34')!r} in {what!r}; allowed: "
                              "segmentation_models_pytorch.encoders.get_encoder_names() or tu-<timm model>") from None
        raise ModelError(f"{what} cannot be built with {options} ({first_line(exc)})") from None
    except (TypeError, ValueError, AssertionError, RuntimeError) as exc:
        raise ModelError(f"{what} cannot be built with {options} ({first_line(exc)})") from None
    return check_dense(model, what, in_channels, image_size)


def _segformer(ref: str, num_classes: int, in_channels: int, image_size: int, options: dict) -> tuple[nn.Module, dict]:
    size = ref.removeprefix("segformer-")
    if size not in SEGFORMER_SIZES:
        raise ConfigError(f"unknown SegFormer size in hf-config:{ref}; allowed: "
                          f"{', '.join(f'segformer-{s}' for s in SEGFORMER_SIZES)}")
    return hf.from_model_type("segformer", num_classes, in_channels, image_size, options, head=SEGFORMER_HEAD,
                              defaults=SEGFORMER_SIZES[size], what=f"hf-config:{ref}")


__all__ = ["SEGFORMER_SIZES", "SMP_HELP", "handles", "create", "check_dense", "smp_parts"]

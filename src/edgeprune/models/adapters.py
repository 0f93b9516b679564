"""Optional adapters for ``timm:<name>`` and ``torchvision:<name>`` specs (the ``[zoo]`` extra).

Models build offline with random weights. ``weights=PATH`` loads a local state_dict (``.pt``/``.pth``/``.bin``
or ``.safetensors``; the classifier is kept fresh when ``num_classes`` differs, the first conv folded when
``in_channels`` differs); the hub download stays available where there is network (timm:
``pretrained=True``, torchvision: ``weights="DEFAULT"`` or a weights enum name). :func:`list_names` gives the
names each library builds. A model that cannot take the requested input size is a ModelError (one dry run);
:func:`own_input_size` gives the size a fixed-size model is built for (the default when none is requested).
Any import failure of an optional library (a broken binary install raises more than ImportError) becomes a
DependencyError.
"""

from __future__ import annotations

import fnmatch
import importlib
from pathlib import Path

import torch
from torch import nn

from edgeprune.errors import CheckpointError, ConfigError, DependencyError, ModelError
from edgeprune.models._common import dry_run_shape, first_line, load_state

WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")


def import_optional(module: str):
    """Import ``module`` or raise a one-line DependencyError for any failure (missing or broken install)."""
    library = module.split(".")[0]
    try:
        importlib.import_module(library)  # the library itself first: a blocked or broken top level fails here
        return importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001  (broken binary installs raise RuntimeError/OSError)
        raise DependencyError(
            f"{library} is not installed/importable here ({first_line(exc)}); "
            f"install edgeprune with {library} or use a zoo/hf model"
        ) from None


def adapt_first_conv(model: nn.Module, in_channels: int) -> nn.Module:
    """Replace the first Conv2d so it takes ``in_channels``; trained RGB filters are folded (timm-style)."""
    for parent in model.modules():
        for child_name, conv in parent.named_children():
            if not isinstance(conv, nn.Conv2d):
                continue
            if conv.in_channels == in_channels:
                return model
            if conv.groups != 1:
                raise ModelError(f"the first conv of this model is grouped; allowed: in_channels {conv.in_channels}")
            new = nn.Conv2d(in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                            conv.dilation, 1, conv.bias is not None, conv.padding_mode)
            with torch.no_grad():
                # a grey image copied to every channel gives the same response as to the RGB filters
                new.weight.copy_(conv.weight.sum(dim=1, keepdim=True).repeat(1, in_channels, 1, 1) / in_channels)
                if conv.bias is not None:
                    new.bias.copy_(conv.bias)
            setattr(parent, child_name, new)
            return model
    raise ModelError(f"found no Conv2d to adapt to in_channels {in_channels}; allowed: in_channels 3 for this model")


def list_names(library: str, pattern: str = "*") -> list[str]:
    """Names ``library`` ("timm", "torchvision" classification models, "hf-config" image classifiers) builds,
    filtered by the glob ``pattern``."""
    if library == "timm":
        names = import_optional("timm").list_models()
    elif library == "torchvision":
        tv_models = import_optional("torchvision.models")
        names = tv_models.list_models(module=tv_models)  # classification models only
    elif library == "hf-config":
        import_optional("transformers")
        from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES as hf_names  # noqa: PLC0415  (optional dependency: the zoo extra)

        names = list(hf_names)
    else:
        raise ConfigError(f"cannot list models of {library!r}; allowed: timm, torchvision, hf-config")
    return sorted(n for n in names if fnmatch.fnmatch(n, pattern))


def torchvision_module(name: str) -> str:
    """"detection" or "segmentation" for a name of that ``torchvision.models`` module, else "classification"
    (also for unknown names: the build reports them)."""
    tv_models = import_optional("torchvision.models")
    for module in ("detection", "segmentation"):
        if name in tv_models.list_models(module=getattr(tv_models, module)):
            return module
    return "classification"


def _square(size) -> int | None:
    """The side of a square (H, W) / (C, H, W) / int size, None for anything else."""
    if isinstance(size, int) and not isinstance(size, bool):
        return size
    if isinstance(size, (list, tuple)) and len(size) >= 2 and size[-1] == size[-2] and isinstance(size[-1], int):
        return size[-1]
    return None


def own_input_size(kind: str, name: str, options: dict) -> int | None:
    """The input side a ``timm``/``torchvision``/``hf-config`` model is built for when it cannot take any size:
    timm's ``img_size=`` option or ``pretrained_cfg['input_size']`` of a ``fixed_input_size`` model, the
    torchvision weights' ``min_size`` when above 32 (ViT, MaxViT, Swin: 224), the HF config's ``image_size``
    (its position embeddings are built for it). None when the model takes any size or the name is unknown
    (building it then gives the precise error)."""
    try:
        if kind == "timm":
            if "img_size" in options:
                return _square(options["img_size"])
            cfg = import_optional("timm").get_pretrained_cfg(name)
            return _square(cfg.input_size) if cfg is not None and cfg.fixed_input_size else None
        if kind == "torchvision":
            if "image_size" in options:
                return _square(options["image_size"])
            weights = import_optional("torchvision.models").get_model_weights(name)
            side = _square(weights.DEFAULT.meta.get("min_size"))
            return side if side is not None and side > 32 else None
        if kind == "hf-config":
            config_mapping = import_optional("transformers").CONFIG_MAPPING
            return _square(getattr(config_mapping[name.strip().lower()](), "image_size", None))
    except Exception:  # noqa: BLE001  (unknown names, missing libraries: reported by the build itself)
        return None
    return None


def _read_state_dict(path: Path) -> dict:
    if path.suffix == ".safetensors":
        safetensors = import_optional("safetensors.torch")
        try:
            return safetensors.load_file(str(path))
        except Exception as exc:  # noqa: BLE001  (a corrupt file raises the library's own errors)
            raise CheckpointError(f"weights file {str(path)!r} is not a readable safetensors file ({first_line(exc)})") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001  (pickles with code, truncated zips...)
        raise CheckpointError(f"weights file {str(path)!r} is not a weights-only torch state_dict ({first_line(exc)})") from None
    for key in ("state_dict", "model", "model_state"):  # common training-checkpoint wrappers
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"weights file {str(path)!r} holds no state_dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_local_weights(model: nn.Module, path, what: str, num_classes: int) -> nn.Module:
    """Load the state_dict at ``path`` into ``model``; tensors of another shape are allowed only for the
    classifier (``num_classes`` outputs: it stays freshly initialised) and the first conv's input channels
    (folded as :func:`adapt_first_conv` does). CheckpointError for an unreadable file, ModelError when the
    weights are for another architecture."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"weights file {str(path)!r} does not exist; pass a local .pt/.pth/.safetensors file")
    state = _read_state_dict(path)
    own = model.state_dict()
    load, skipped = {}, []
    for key, tensor in state.items():
        target = own.get(key)
        if target is None:
            continue
        if target.shape == tensor.shape:
            load[key] = tensor
        elif tensor.ndim == 4 and target.ndim == 4 and tensor.shape[0] == target.shape[0] and tensor.shape[2:] == target.shape[2:]:
            load[key] = tensor.sum(1, keepdim=True).repeat(1, target.shape[1], 1, 1) / target.shape[1]
        elif target.shape[0] == num_classes:
            skipped.append(key)
        else:
            raise ModelError(f"weights file {str(path)!r} does not fit {what}: {key} is {tuple(tensor.shape)} "
                             f"in the file, {tuple(target.shape)} in the model")
    missing = [k for k in own if k not in load and k not in skipped and not k.endswith("num_batches_tracked")]
    if not load or len(missing) > len(skipped) + 2:
        raise ModelError(f"weights file {str(path)!r} does not fit {what}: {len(load)} of {len(own)} tensors match "
                         f"(missing e.g. {missing[:2]})")
    load_state(model, load, strict=False)
    return model


def _checked(model: nn.Module, what: str, in_channels: int, image_size: int) -> nn.Module:
    try:
        dry_run_shape(model, in_channels, image_size)
    except (RuntimeError, ValueError, IndexError, AssertionError) as exc:
        raise ModelError(f"{what} cannot take {in_channels}x{image_size}x{image_size} inputs ({first_line(exc)}); "
                         f"use a larger image_size") from None
    return model


def _local_weights(options: dict) -> tuple[dict, str | None]:
    """(options without a local ``weights`` path, the path or None)."""
    weights = options.get("weights")
    if isinstance(weights, str) and (weights.lower().endswith(WEIGHT_SUFFIXES) or Path(weights).expanduser().exists()):
        return {k: v for k, v in options.items() if k != "weights"}, weights
    return options, None


def create_timm(name: str, num_classes: int, in_channels: int, image_size: int, options: dict) -> nn.Module:
    """``timm.create_model(name, num_classes=, in_chans=, **options)``: random init unless ``pretrained=True``
    (hub) or ``weights=PATH`` (a local file)."""
    timm = import_optional("timm")
    options, local = _local_weights(options)
    if "weights" in options:
        raise ConfigError(f"timm:{name} weights= must be a local weights file; use pretrained=True for the hub weights")
    options = {"pretrained": False, **options}
    model = _build_timm(timm, name, num_classes, in_channels, options)
    if local:
        load_local_weights(model, local, f"timm:{name}", num_classes)
    return _checked(model, f"timm:{name}", in_channels, image_size)


def _build_timm(timm, name: str, num_classes: int, in_channels: int, options: dict) -> nn.Module:
    try:
        return timm.create_model(name, num_classes=num_classes, in_chans=in_channels, **options)
    except RuntimeError as exc:
        if "Unknown model" in str(exc):
            raise ConfigError(f"unknown timm model {name!r}; see timm.list_models()") from None
        raise ModelError(f"timm:{name} cannot be built ({first_line(exc)})") from None
    except OSError as exc:
        raise DependencyError(
            f"timm:{name} weights cannot be fetched offline ({first_line(exc)}); use pretrained=False"
        ) from None
    except (TypeError, ValueError) as exc:
        raise ModelError(f"timm:{name} cannot be built with {options} ({first_line(exc)})") from None


def create_torchvision(name: str, num_classes: int, in_channels: int, image_size: int,
                       options: dict) -> nn.Module:
    """``torchvision.models.get_model(name, num_classes=, **options)``; first conv adapted to ``in_channels``.

    ``weights``: None (random init), a local file, or a torchvision weights name (``"DEFAULT"``; downloads)."""
    tv_models = import_optional("torchvision.models")
    module = torchvision_module(name)
    if module != "classification":
        raise ConfigError(f"torchvision:{name} is a {module} model, not built by edgeprune yet; allowed: "
                          "torchvision classification and detection models")
    options, local = _local_weights(options)
    options = {"weights": None, **options}
    try:
        model = tv_models.get_model(name, num_classes=num_classes, **options)
    except ValueError as exc:
        if "Unknown model" in str(exc):
            raise ConfigError(f"unknown torchvision model {name!r}; see torchvision.models.list_models()") from None
        raise ModelError(f"torchvision:{name} cannot be built ({first_line(exc)})") from None
    except (OSError, RuntimeError) as exc:
        raise DependencyError(
            f"torchvision:{name} weights cannot be fetched offline ({first_line(exc)}); use weights=None"
        ) from None
    except TypeError as exc:
        raise ModelError(f"torchvision:{name} cannot be built with {options} ({first_line(exc)})") from None
    model = adapt_first_conv(model, in_channels) if in_channels != 3 else model
    if local:
        load_local_weights(model, local, f"torchvision:{name}", num_classes)
    return _checked(model, f"torchvision:{name}", in_channels, image_size)

"""HF transformers image classifiers: ``hf:<hub id or folder>`` and ``hf-config:<model_type>``.

Models are wrapped in :class:`HFImageClassifier` so they map a batch to logits like every other model,
and their config dict is kept in the build info so a checkpoint rebuilds offline with ``from_config``.
"""

from __future__ import annotations

import copy
import logging
import os
import socket
import urllib.parse
from pathlib import Path

import torch
from torch import nn

from edgeprune.errors import ConfigError, DependencyError, ModelError
from edgeprune.models._common import first_line, to_plain

# create() arguments that must not also arrive as config overrides
_RESERVED = {"num_labels": "num_classes", "id2label": "num_classes", "label2id": "num_classes",
             "image_size": "image_size", "num_channels": "in_channels"}
# config keys named like create()'s own arguments (EfficientNetConfig.in_channels: the blocks' input widths)
# are overridden as config_<key>
_CREATE_ARGS = ("in_channels", "num_classes", "image_size")
CONFIG_PREFIX = "config_"
HUB_PROBE_TIMEOUT_S = 5  # one TCP connect to the hub before downloading (a dead network fails fast)


def _transformers():
    try:
        import transformers  # noqa: PLC0415  (optional dependency: the hf extra)
    except Exception as exc:  # noqa: BLE001  (a broken install raises more than ImportError)
        raise DependencyError(
            f"transformers is not installed/importable here ({first_line(exc)}); pip install 'edgeprune[hf]'"
        ) from None
    return transformers


class HFImageClassifier(nn.Module):
    """Transparent wrapper: ``forward(x)`` returns ``hf_model(pixel_values=x).logits``.

    Submodules stay under ``hf_model.`` so layer names match the HF model's own names.
    """

    def __init__(self, hf_model: nn.Module):
        super().__init__()
        self.hf_model = hf_model

    @property
    def config(self):
        """The wrapped model's transformers config."""
        return self.hf_model.config

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.hf_model(pixel_values=x).logits


def _config_class(model_type: str):
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING  # noqa: PLC0415  (optional dependency: the hf extra)

    try:
        return CONFIG_MAPPING[model_type]
    except KeyError:
        raise ConfigError(
            f"unknown transformers model_type {model_type!r}; allowed e.g. vit, deit, swin, levit, convnext"
        ) from None


def _classifier_class(transformers, model_type: str):
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES as names  # noqa: PLC0415  (optional dependency: the hf extra)

    name = names.get(model_type)
    if name is None:
        raise ConfigError(
            f"transformers model_type {model_type!r} has no image-classification model; "
            f"allowed: {', '.join(sorted(names))}"
        )
    if isinstance(name, (tuple, list)):
        name = name[0]  # DeiT / LeViT: the plain head, not the ...WithTeacher distillation variant
    return getattr(transformers, name)


def _known_keys(config_cls) -> tuple[set[str], list[str]]:
    """All accepted override keys, and the model-specific ones (for error messages)."""
    from transformers import PretrainedConfig  # noqa: PLC0415  (optional dependency: the hf extra)

    base = set(PretrainedConfig().to_dict())
    known = set(config_cls().to_dict()) | set(getattr(config_cls, "attribute_map", {}) or {})
    return known, sorted(known - base - set(_RESERVED))


def _levit_patch_size(settings: dict, image_size: int) -> int:
    """LeViT's ``patch_size`` only sets the token grid side (image_size // patch_size) that its attention
    biases are built for; the real grid comes from four stride-2 convs, so derive a patch_size matching it."""
    k, s, p = (settings.get(key, default) for key, default in (("kernel_size", 3), ("stride", 2), ("padding", 1)))
    side = image_size
    for _ in range(4):
        side = (side + 2 * p - k) // s + 1
    if not 1 <= side <= image_size or image_size // (image_size // side) != side:
        raise ModelError(
            f"image_size {image_size} does not fit hf-config:levit's 4-conv stem (kernel {k}, stride {s}, "
            f"padding {p}); allowed: >= 8 px, or pass patch_size/stride explicitly"
        )
    return image_size // side


@torch.no_grad()
def _check_forward(model: nn.Module, what: str, in_channels: int, image_size: int) -> None:
    was_training = model.training
    model.eval()
    try:
        model(torch.zeros(1, in_channels, image_size, image_size))
    except AttributeError as exc:  # PP-LCNet's classifier output has no logits
        raise ModelError(f"{what} does not return classification logits ({first_line(exc)})") from None
    except (RuntimeError, ValueError, IndexError) as exc:
        raise ModelError(
            f"{what} cannot take {in_channels}x{image_size}x{image_size} inputs with these settings "
            f"({first_line(exc)}); for small images lower patch_size / window_size or use fewer stages"
        ) from None
    finally:
        model.train(was_training)


def _check_memory(model_cls, config, what: str) -> None:
    """Refuse, in one line, a config whose weights would take over a third of this machine's memory (pruning
    holds about three copies of them): counted on the meta device, so nothing is allocated. Composite configs
    (ShieldGemma 2: 10.9 GB of weights at its defaults) otherwise get the process killed for memory."""
    try:
        with torch.device("meta"):
            probe = model_cls(config)
    except Exception:  # noqa: BLE001  (a model that cannot be built on the meta device is checked by building it)
        return
    need = sum(p.numel() * p.element_size() for p in probe.parameters())
    have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else 0
    if have and need > have / 3:
        raise ModelError(f"{what} has {need / 1e9:.1f} GB of weights with these settings, over a third of this "
                         f"machine's {have / 1e9:.0f} GB of memory (pruning holds about three copies); pass smaller "
                         "config overrides")


def from_model_type(model_type: str, num_classes: int, in_channels: int, image_size: int,
                    overrides: dict, *, head: str | None = None, defaults: dict | None = None,
                    what: str | None = None) -> tuple[nn.Module, dict]:
    """Untrained classifier from ``model_type``'s config class (as ``AutoConfig.for_model``) plus ``overrides``.

    Returns (model, build extras with ``hf_config`` and ``hf_class``). Unknown override keys are a
    ConfigError; a config that cannot take the requested input size is a ModelError (checked by a dry run).
    ``head``: a transformers class name other than the image classifier (``SegformerForSemanticSegmentation``),
    ``defaults``: config values under the overrides (a model size), ``what``: the spec errors name.
    """
    transformers = _transformers()
    model_type = model_type.strip().lower()
    what = what or f"hf-config:{model_type}"
    config_cls = _config_class(model_type)
    model_cls = getattr(transformers, head) if head else _classifier_class(transformers, model_type)
    known, specific = _known_keys(config_cls)
    overrides = {(k[len(CONFIG_PREFIX):] if k.startswith(CONFIG_PREFIX) and k[len(CONFIG_PREFIX):] in _CREATE_ARGS
                  and k[len(CONFIG_PREFIX):] in known else k): v for k, v in overrides.items()}
    specific = [f"{CONFIG_PREFIX}{k}" if k in _CREATE_ARGS else k for k in specific]
    for key in overrides:
        if key in _CREATE_ARGS and key in known:
            continue  # arrived as config_<key>
        if key in _RESERVED:
            raise ConfigError(f"pass {_RESERVED[key]} as an argument of create, not as the {what} override {key!r}")
        if key not in known:
            raise ConfigError(f"unknown config key {key!r} for {what}; allowed: {', '.join(specific)}")

    settings = copy.deepcopy({**(defaults or {}), **overrides})  # LeViT appends to its down_ops list while building
    if "image_size" in known:
        pair = isinstance(getattr(config_cls(), "image_size", None), (list, tuple))  # (height, width): YOLOS, Hiera
        settings["image_size"] = [image_size, image_size] if pair else image_size
    if model_type == "levit" and "patch_size" not in settings:
        settings["patch_size"] = _levit_patch_size(settings, image_size)
    try:
        config = config_cls(num_labels=num_classes, num_channels=in_channels, **settings)
    except Exception as exc:  # noqa: BLE001  (TypeError/ValueError, and huggingface_hub's strict-dataclass validation errors)
        raise ConfigError(f"invalid overrides for {what} ({first_line(exc)})") from None
    if model_type == "efficientnet" and "hidden_dim" not in settings:
        # the head's BatchNorm is built with hidden_dim, the top conv with round_filters(1280): keep them equal
        # when width_coefficient changes (the defaults pair 2560 with width 2.0)
        from transformers.models.efficientnet.modeling_efficientnet import round_filters  # noqa: PLC0415  (optional dependency: the hf extra)

        config.hidden_dim = round_filters(config, 1280)
    hf_config = to_plain(config.to_dict(), f"{what} config")  # before the model can mutate it
    _check_memory(model_cls, config, what)
    try:
        model = HFImageClassifier(model_cls(config))
    except ImportError as exc:  # DiNAT needs natten, some models a backend transformers does not install
        raise DependencyError(f"{what} needs a library that is not installed here ({first_line(exc)})") from None
    except (ValueError, RuntimeError, TypeError, IndexError, ZeroDivisionError) as exc:
        raise ModelError(f"{what} cannot be built with these settings ({first_line(exc)})") from None
    _check_forward(model, what, in_channels, image_size)
    return model, {"hf_config": hf_config, "hf_class": model_cls.__name__}


def _hub_unreachable() -> str | None:
    """Why the hub cannot be reached (offline mode, no route, no name resolution), or None if it answers."""
    from huggingface_hub import constants  # noqa: PLC0415  (optional dependency: the hf extra)

    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    host = urllib.parse.urlsplit(constants.ENDPOINT)
    try:
        socket.create_connection((host.hostname, host.port or 443), timeout=HUB_PROBE_TIMEOUT_S).close()
    except OSError as exc:
        return f"{host.hostname} is not reachable: {exc.strerror or first_line(exc)}"
    return None


def _load_pretrained(transformers, ref: str, is_local: bool, **kwargs) -> nn.Module:
    """The cached copy first; the hub only when it answers (its client retries a dead network for ~30 s,
    logging every retry), with the hub's own log quiet: our one-line error says what went wrong."""
    load = transformers.AutoModelForImageClassification.from_pretrained
    hub_log = logging.getLogger("huggingface_hub")
    level = hub_log.level
    hub_log.setLevel(logging.ERROR)
    try:
        if is_local or "local_files_only" in kwargs:  # a folder, or the caller decides where to look
            return load(ref, **kwargs)
        try:
            return load(ref, local_files_only=True, **kwargs)
        except OSError:
            why = _hub_unreachable()
            if why is not None:
                raise OSError(f"not in the local cache, and {why}") from None
            return load(ref, **kwargs)
    finally:
        hub_log.setLevel(level)


def from_pretrained(ref: str, num_classes: int, in_channels: int, image_size: int,
                    options: dict) -> tuple[nn.Module, dict]:
    """Pretrained classifier from a hub id or local folder with a fresh ``num_classes`` head."""
    transformers = _transformers()
    folder = Path(ref).expanduser()
    is_local = folder.is_dir()
    if not is_local and (ref.startswith(("/", ".", "~")) or "\\" in ref or folder.exists()):
        raise ConfigError(
            f"hf model folder {ref!r} does not exist or is not a directory; pass a model folder or hub id"
        )
    try:
        hf_model = _load_pretrained(transformers, str(folder) if is_local else ref, is_local,
                                    num_labels=num_classes, ignore_mismatched_sizes=True, **options)
    except OSError as exc:
        if is_local:
            raise ModelError(f"hf folder {ref!r} holds no loadable transformers model ({first_line(exc)})") from None
        raise DependencyError(
            f"hf weights {ref!r} cannot be fetched offline ({first_line(exc)}); "
            f"download them where there is network and pass the local directory as hf:<dir>"
        ) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{ref!r} is not a transformers image-classification model ({first_line(exc)})") from None
    channels = getattr(hf_model.config, "num_channels", in_channels)
    if channels != in_channels:
        raise ModelError(f"hf model {ref!r} takes {channels} input channels, got in_channels {in_channels}")
    extras = {"hf_config": to_plain(hf_model.config.to_dict(), f"hf:{ref} config"),
              "hf_class": type(hf_model).__name__}
    model = HFImageClassifier(hf_model)
    _check_forward(model, f"hf:{ref}", in_channels, image_size)
    return model, extras


def from_build(build: dict) -> nn.Module:
    """Rebuild an untrained model from a checkpoint's ``hf_config`` (offline; weights come from the state_dict)."""
    transformers = _transformers()
    hf_config = copy.deepcopy(build["hf_config"])
    model_type = hf_config.get("model_type") if isinstance(hf_config, dict) else None
    config_cls = _config_class(model_type)
    name = build.get("hf_class")
    cls = getattr(transformers, name, None) if isinstance(name, str) else None
    try:
        return HFImageClassifier((cls or _classifier_class(transformers, model_type))(config_cls.from_dict(hf_config)))
    except (TypeError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelError(
            f"hf model {model_type!r} cannot be rebuilt from its saved config ({first_line(exc)})"
        ) from None

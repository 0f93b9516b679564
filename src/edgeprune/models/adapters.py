"""Optional adapters for ``timm:<name>`` and ``torchvision:<name>`` specs.

Both libraries stay optional: on some machines they install but crash at import next to a CPU torch
wheel (RuntimeError/OSError rather than ImportError), so any import failure becomes a DependencyError.
"""

from __future__ import annotations

import importlib

import torch
from torch import nn

from edgeprune.errors import ConfigError, DependencyError, ModelError
from edgeprune.models._common import first_line


def import_optional(module: str):
    """Import ``module`` or raise a one-line DependencyError for any failure (missing or broken install)."""
    library = module.split(".")[0]
    try:
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


def create_timm(name: str, num_classes: int, in_channels: int, image_size: int, options: dict) -> nn.Module:
    """``timm.create_model(name, num_classes=, in_chans=, **options)`` (pretrained only if asked)."""
    timm = import_optional("timm")
    options = {"pretrained": False, **options}
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
    """``torchvision.models.get_model(name, num_classes=, **options)``; first conv adapted to ``in_channels``."""
    tv_models = import_optional("torchvision.models")
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
    return adapt_first_conv(model, in_channels) if in_channels != 3 else model

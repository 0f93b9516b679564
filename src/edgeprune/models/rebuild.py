"""Build info of any model, and turning saved weights back into a model: rebuilt from its spec or the user's own.

``build_info`` describes what rebuilds a model: ``spec``, ``num_classes``, ``in_channels``, ``image_size``,
``kwargs`` (from ``model.edgeprune_build``, set by :func:`edgeprune.models.create`) plus the model's
``class`` (qualname) and ``module``. A model of the user's own class has ``spec`` None (and None sizes): it
loads back only into an instance the caller passes (``model=``). An explicit ``spec=`` is verified up front:
the spec must rebuild a model that takes the weights and gives the same outputs, else saving refuses.
"""

from __future__ import annotations

import torch
from torch import nn

from edgeprune.errors import CheckpointError, ConfigError, EdgepruneError, ModelError
from edgeprune.models import hf, hf_detection, userfile
from edgeprune.models._common import first_conv, first_line, load_state, logits_of, probe_input, to_plain
from edgeprune.models._shapes import check_keys, check_structure, resize, state_dict, structure, unwrap
from edgeprune.models.registry import create

_DEFAULTS = {"num_classes": 10, "in_channels": 3, "image_size": 32}  # create()'s defaults


def _class_of(model: nn.Module) -> dict:
    return {"class": type(model).__qualname__, "module": type(model).__module__}


def build_info(model: nn.Module, spec: str | None = None, *, state=None, layers=None) -> dict:
    """Plain-typed build info of (unwrapped) ``model``; ``spec=`` replaces its spec after checking it rebuilds.

    ``state``/``layers`` (the model's state_dict and structure) are used to check an explicit spec.
    """
    build = getattr(model, "edgeprune_build", None)
    build = build if isinstance(build, dict) else None
    if spec is None:
        if build is None:  # the user's own model: what is known
            return {"spec": None, "num_classes": None, "in_channels": None, "image_size": None, "kwargs": {},
                    **_class_of(model)}
        return to_plain({**build, **_class_of(model)}, "model build info")
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"spec must be a non-empty model spec string, got {spec!r}")
    spec = spec.strip()
    spec = userfile.absolute_spec(spec) if userfile.is_file_spec(spec) else spec
    if build is not None and build.get("spec") == spec:
        return to_plain({**build, **_class_of(model)}, "model build info")
    if build is None:
        build = {"spec": spec, **_inferred_sizes(model), "kwargs": {}}
    else:
        build = {**build, "spec": spec}
        if not spec.startswith(("hf:", "hf-config:")):
            build.pop("hf_config", None)
            build.pop("hf_class", None)
    build = to_plain(build, "model build info")
    return _verified(model, build, state_dict(model) if state is None else state,
                     structure(model) if layers is None else layers)


def _inferred_sizes(model: nn.Module) -> dict:
    """create()'s sizes for a model without build info: its first convolution's input channels, create()'s
    default image size (num_classes is read from its output in :func:`_verified`)."""
    conv = first_conv(model)
    return {**_DEFAULTS, "num_classes": None, **({"in_channels": conv.in_channels} if conv is not None else {})}


def _verified(model: nn.Module, build: dict, state: dict, layers: dict) -> dict:
    """``build`` (with the rebuilt model's class) if it rebuilds ``model`` exactly, else a one-line refusal."""
    spec, name = build["spec"], type(model).__qualname__
    hint = "save without spec= (a custom model) and load it with model="
    x = probe_input(model, build["in_channels"], build["image_size"], batch=2, seed=0)
    modes = [(m, m.training) for m in model.modules()]  # restored one by one: mixed modes survive
    try:
        with torch.no_grad():
            device = next(iter(model.parameters()), torch.empty(0)).device
            got = logits_of(model.eval()(x.to(device))).float().cpu()
    except Exception as exc:  # noqa: BLE001  (the user's model on the spec's input size)
        sizes = ", ".join(f"{k}={build.get(k)}" for k in _DEFAULTS if build.get(k) is not None)
        raise CheckpointError(f"save(spec={spec!r}): this {name} does not run on the spec's input ({sizes}): "
                              f"{first_line(exc)}; {hint}") from None
    finally:
        for module, training in modes:
            module.training = training
    if build["num_classes"] is None and got.dim() >= 2:
        build = {**build, "num_classes": int(got.shape[1])}  # [B, K] logits, [B, K, H, W] per-pixel logits
    sizes = ", ".join(f"{k}={build.get(k)}" for k in _DEFAULTS)
    try:
        dry = rebuild(build)
        resize(dry, layers, state)
        check_keys(dry, state, f"save(spec={spec!r}): this {name}", f"the model the spec rebuilds ({sizes})")
        load_state(dry, state)
        with torch.no_grad():
            want = logits_of(dry.eval()(x)).float()
    except EdgepruneError as exc:
        detail = str(exc) if isinstance(exc, CheckpointError) else (
            f"save(spec={spec!r}): the spec cannot rebuild this {name} ({exc})")
        raise CheckpointError(f"{detail}; {hint}") from None
    if got.shape != want.shape or want.shape[1] != build["num_classes"] or not torch.allclose(
            got, want, rtol=1e-3, atol=1e-4):
        raise CheckpointError(f"save(spec={spec!r}): the model the spec rebuilds ({sizes}) does not reproduce "
                              f"this {name}'s outputs (shape {tuple(got.shape)} vs {tuple(want.shape)}); {hint}")
    return {**build, **_class_of(dry)}


def rebuild(build: dict) -> nn.Module:
    """A fresh model from build info with a spec (hf models from their saved config, offline)."""
    if "hf_config" in build:
        model = hf_detection.from_build(build) if hf_detection.is_detector_build(build) else hf.from_build(build)
    else:
        model = create(build["spec"], build["num_classes"], build["in_channels"], build["image_size"],
                       **(build.get("kwargs") or {}))
    model.edgeprune_build = build
    return model


def snapshot(model: nn.Module, spec: str | None = None) -> dict:
    """What rebuilds ``model``: ``build`` info, CPU ``state_dict`` and layer ``structure`` (what save stores)."""
    model = unwrap(model)
    state, layers = state_dict(model), structure(model)
    return {"build": build_info(model, spec, state=state, layers=layers), "state_dict": state, "structure": layers}


def _given(model, build: dict, source: str) -> nn.Module:
    """The caller's model= (an instance, or a zero-argument callable returning one), checked against ``build``."""
    if not isinstance(model, nn.Module):
        if not callable(model):
            raise ConfigError(f"model= must be a torch.nn.Module instance or a zero-argument callable returning "
                              f"one, got a {type(model).__name__}")
        label = getattr(model, "__qualname__", type(model).__name__)
        try:
            made = model()
        except Exception as exc:  # noqa: BLE001  (user code)
            raise ModelError(f"model= factory {label} failed: {first_line(exc)}") from None
        if not isinstance(made, nn.Module):
            raise ModelError(f"model= factory {label} returned a {type(made).__name__}, not a torch.nn.Module")
        model = made
    recorded, actual = build.get("class"), type(unwrap(model))
    if isinstance(recorded, str) and recorded != actual.__qualname__:
        raise CheckpointError(
            f"{source} holds a {recorded} model (module {build.get('module')}), but model= is a "
            f"{actual.__qualname__} (module {actual.__module__}); pass a fresh {recorded} instance"
        )
    return model


def restore(build: dict, state: dict[str, torch.Tensor], layers: dict | None, source: str, *,
            model=None) -> nn.Module:
    """Rebuild the model ``build`` describes (or take ``model=``), resize it to ``layers``, load ``state`` strictly
and check that the recorded layer attributes agree with the loaded tensors.

    ``source`` names the file in errors (e.g. ``"checkpoint 'm.pt'"``); raises CheckpointError.
    """
    if model is None:
        if build.get("spec") is None:
            name = build.get("class") or "custom"
            raise CheckpointError(f"{source} holds a custom {name} model without a spec; "
                                  f"pass model={name}(...) (a fresh instance) to load it")
        try:
            target = rebuild(build)
        except (ConfigError, ModelError) as exc:
            raise CheckpointError(f"{source} cannot rebuild its model ({exc})") from None
        what = f"its rebuilt model {build['spec']!r}"
    else:
        target = model = _given(model, build, source)
        what = f"the given {type(unwrap(model)).__qualname__} model"
    inner = unwrap(target)
    resize(inner, layers or {}, state)
    check_keys(inner, state, source, what)
    load_state(inner, state)
    check_structure(inner, layers or {}, source)
    if model is not None and build.get("spec") is not None:
        inner.edgeprune_build = build
    return target


__all__ = ["build_info", "rebuild", "snapshot", "restore"]

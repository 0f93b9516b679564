"""A user's model as edgeprune prunes it: float32, plain weights, no forward hooks.

edgeprune trains on the CPU and exports in float32; it prunes a layer's weight tensor, not the ``weight_norm``,
``spectral_norm`` or ``torch.nn.utils.prune`` mask that computes it; and its exporters run forward hooks on fake
tensors, so a hook that keeps what it sees (features, shapes) would leave fakes in the user's model. A model with any
of these is pruned as a copy without them, with a warning; the user's model is left as it was.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn
from torch.nn.utils import parametrize, remove_spectral_norm, remove_weight_norm
from torch.nn.utils import prune as torch_prune
from torch.nn.utils.spectral_norm import SpectralNorm, SpectralNormLoadStateDictPreHook
from torch.nn.utils.weight_norm import WeightNorm

OTHER_FLOATS = (torch.float16, torch.bfloat16, torch.float64)
# nn.utils.weight_norm / spectral_norm before parametrizations, and nn.utils.prune's masks: how each is removed
OLD_WEIGHT_HOOKS = {WeightNorm: remove_weight_norm, SpectralNorm: remove_spectral_norm,
                    torch_prune.BasePruningMethod: torch_prune.remove}
OLD_HOOK_TYPES = tuple(OLD_WEIGHT_HOOKS)


def plain(model: nn.Module) -> nn.Module:
    """``model``, or a copy of it in float32, with plain weights and without forward hooks (with a warning for each)."""
    floats = sorted({str(p.dtype).removeprefix("torch.") for p in model.parameters() if p.dtype in OTHER_FLOATS})
    computed = [(name, kind) for name, m in model.named_modules() for kind in _weight_computations(m)]
    hooked = [name or "the model" for name, m in model.named_modules() if _user_hooks(m)]
    if not floats and not computed and not hooked:
        return model
    for m in model.modules():  # an old hook's weight is a computed tensor, which deepcopy refuses; each forward resets it
        for hook in m._forward_pre_hooks.values():
            if isinstance(hook, OLD_HOOK_TYPES):
                setattr(m, _computed(hook), getattr(m, _computed(hook)).detach())
    name, model = type(model).__name__, copy.deepcopy(model)
    if floats:
        _warn(f"the parameters of {name} are {' and '.join(floats)}: a float32 copy is pruned, fine-tuned and exported "
              f"(cast the result back with .to(torch.{floats[0]}))")
        model.float()
    if computed:
        for m in model.modules():
            _remove_weight_computations(m)
        _warn(f"the weights of {name} computed by a parametrization ({_some(f'{n} ({k})' for n, k in computed)}) are "
              "pruned as the plain weights they compute now; the result has no parametrization")
    if hooked:
        for m in model.modules():
            for hook in _user_hooks(m):
                hook.clear()
        _warn(f"{name} has forward hooks ({_some(hooked)}): the copies edgeprune prunes, times and exports run without "
              "them (register them again on the result)")
    return model


def _warn(message: str) -> None:
    warnings.warn(message, UserWarning, stacklevel=6)  # the caller of edgeprune.prune / sweep


def _some(names) -> str:
    names = list(names)
    return ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")


def _user_hooks(module: nn.Module) -> list[dict]:
    """``module``'s forward (pre-)hook tables that hold hooks of the user's (not weight_norm's / spectral_norm's)."""
    tables = (module._forward_hooks, module._forward_pre_hooks)
    return [t for t in tables if any(not isinstance(h, OLD_HOOK_TYPES) for h in t.values())]


def _weight_computations(module: nn.Module) -> list[str]:
    """What computes ``module``'s parameters: torch.nn.utils.parametrize's parametrizations, or the older
    ``weight_norm`` / ``spectral_norm`` hooks."""
    found = [type(p).__name__ for ps in getattr(module, "parametrizations", {}).values() for p in ps]
    found += [type(h).__name__ for h in module._forward_pre_hooks.values() if isinstance(h, OLD_HOOK_TYPES)]
    return [kind.lstrip("_") for kind in found]


def _computed(hook) -> str:
    """The name of the tensor an old hook computes (``weight``)."""
    return getattr(hook, "_tensor_name", None) or hook.name


def _remove_weight_computations(module: nn.Module) -> None:
    if parametrize.is_parametrized(module):
        # a copy shares its original's generated class, from which removing deletes the properties: give it its own
        cls = type(module)
        module.__class__ = type(cls.__name__, cls.__bases__,
                                {k: v for k, v in vars(cls).items() if k not in ("__dict__", "__weakref__")})
    for name in list(getattr(module, "parametrizations", {})):
        parametrize.remove_parametrizations(module, name, leave_parametrized=True)
    for hook in list(module._forward_pre_hooks.values()):
        for kind, remove in OLD_WEIGHT_HOOKS.items():
            if isinstance(hook, kind):
                remove(module, _computed(hook))
    for key, hook in list(module._load_state_dict_pre_hooks.items()):  # which remove_spectral_norm leaves
        if isinstance(getattr(hook, "hook", hook), SpectralNormLoadStateDictPreHook):
            del module._load_state_dict_pre_hooks[key]


__all__ = ["plain"]

"""edgeprune: make PyTorch CNNs and Vision Transformers small, fast and accurate enough for edge devices.

    import edgeprune
    pruned = edgeprune.prune(model, (train_loader, val_loader), method="mix_and_match", budget=0.8)

See :mod:`edgeprune.api` for the call shapes and ``edgeprune.list_methods()`` for the methods.
"""

import importlib
import logging
import sys
import types
from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from edgeprune.api import Exported, Pruned, SweepResult, export, list_methods, load, prune, save, sweep  # noqa: F401


def _not_torchao_enum_notice(record: logging.LogRecord) -> bool:
    return "register_constant() on Enum subclasses is deprecated" not in record.getMessage()


# torchao (imported for ExecuTorch's PT2E quantization) registers its Enums with torch's pytree and torch logs
# a deprecation notice for each to stderr, before any output of ours: not our code, nothing a user can do
logging.getLogger("torch.utils._pytree").addFilter(_not_torchao_enum_notice)

__all__ = ["prune", "sweep", "save", "load", "export", "list_methods", "Pruned", "SweepResult", "Exported", "__version__"]
_API = frozenset(__all__) - {"__version__"}


# The API is imported on first use: edgeprune.api pulls in torch, torch-pruning, ONNX and matplotlib (seconds),
# which `import edgeprune` and `edgeprune --help` do not need.
def __getattr__(name: str):
    if name in _API:
        return getattr(importlib.import_module("edgeprune.api"), name)
    raise AttributeError(f"module 'edgeprune' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _API)


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value) -> None:
        # Importing the subpackage edgeprune.prune (or edgeprune.export) binds it here as `prune`; `edgeprune.prune`
        # stays the function (the subpackage is still `import edgeprune.prune` / sys.modules["edgeprune.prune"])
        if name in _API and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

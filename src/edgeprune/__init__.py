"""edgeprune: make PyTorch CNNs and Vision Transformers small, fast and accurate enough for edge devices.

    import edgeprune
    pruned = edgeprune.prune(model, (train_loader, val_loader), method="mix_and_match", budget=0.8)

See :mod:`edgeprune.api` for the call shapes and ``edgeprune.list_methods()`` for the methods.
"""

import logging

__version__ = "0.1.0"


def _not_torchao_enum_notice(record: logging.LogRecord) -> bool:
    return "register_constant() on Enum subclasses is deprecated" not in record.getMessage()


# torchao (imported for ExecuTorch's PT2E quantization) registers its Enums with torch's pytree and torch logs
# a deprecation notice for each to stderr, before any output of ours: not our code, nothing a user can do
logging.getLogger("torch.utils._pytree").addFilter(_not_torchao_enum_notice)

from edgeprune.api import Pruned, SweepResult, list_methods, load, prune, save, sweep  # noqa: E402

__all__ = ["prune", "sweep", "save", "load", "list_methods", "Pruned", "SweepResult", "__version__"]

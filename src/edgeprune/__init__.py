"""edgeprune: make PyTorch CNNs and Vision Transformers small, fast and accurate enough for edge devices.

    import edgeprune
    pruned = edgeprune.prune(model, (train_loader, val_loader), method="mix_and_match", budget=0.8)

See :mod:`edgeprune.api` for the call shapes and ``edgeprune.list_methods()`` for the methods.
"""

__version__ = "0.1.0"

from edgeprune.api import Pruned, SweepResult, list_methods, load, prune, save, sweep  # noqa: E402

__all__ = ["prune", "sweep", "save", "load", "list_methods", "Pruned", "SweepResult", "__version__"]

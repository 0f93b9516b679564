"""torch-pruning, imported on first use (see :mod:`edgeprune.utils.lazy`)."""

from edgeprune.utils.lazy import OnFirstUse

tp = OnFirstUse("torch_pruning")

"""torch-pruning, imported on first use: it imports timm and torchvision when they are installed (seconds),
which ``import edgeprune`` and ``edgeprune --help`` should not pay for."""

from __future__ import annotations

import importlib


class _OnFirstUse:
    """Stands for module ``name``; the first attribute access imports it (the normal import machinery)."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str):
        return getattr(importlib.import_module(self._name), attr)


tp = _OnFirstUse("torch_pruning")

"""Libraries imported on first use: torch-pruning (it imports timm and torchvision when installed), ONNX (its
ml_dtypes alone takes 0.6 s), ONNX Runtime's quantizer and matplotlib's pyplot cost seconds that
``import edgeprune``, ``--help`` and a call that never exports or plots should not pay for."""

from __future__ import annotations

import importlib
from typing import Callable


class OnFirstUse:
    """Stands for module ``name``; the first attribute access runs ``setup`` (once) and imports it (the normal
    import machinery)."""

    def __init__(self, name: str, setup: Callable[[], None] | None = None):
        self._name, self._setup = name, setup

    def __getattr__(self, attr: str):
        if self._setup is not None:
            setup, self._setup = self._setup, None
            setup()
        return getattr(importlib.import_module(self._name), attr)

"""`import edgeprune` (and so `edgeprune --help`) does not import torch-pruning, timm, torchvision or
scikit-learn: each is imported where it is first used."""

import subprocess
import sys


def test_heavy_optional_libraries_are_not_imported_by_import_edgeprune():
    code = ("import sys, edgeprune; "
            "print(sorted(m for m in ('torch_pruning', 'timm', 'torchvision', 'sklearn', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"

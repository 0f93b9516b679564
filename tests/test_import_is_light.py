"""`import edgeprune` and `edgeprune --help` import none of the heavy stack (torch, torch-pruning, ONNX, ONNX
Runtime, matplotlib, the model zoos, Ray, ExecuTorch, scikit-learn): each is imported where it is first used,
the CLI's by the command that runs (issue 32.2). Checked in a fresh interpreter's ``sys.modules``, not by time."""

import subprocess
import sys

import pytest

HEAVY = ("torch_pruning", "onnx", "onnxruntime", "onnxscript", "matplotlib", "transformers", "timm", "torchvision",
         "ray", "executorch", "sklearn")


def imported_after(code: str) -> list[str]:
    """The heavy modules (and torch) a fresh interpreter holds after running ``code``."""
    probe = (f"import sys\n{code}\n"
             f"print(sorted(m for m in {HEAVY + ('torch',)!r} if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return eval(result.stdout.strip().splitlines()[-1])


def run_cli_code(*args: str) -> str:
    return f"from edgeprune.cli import main\ntry:\n    main({list(args)!r})\nexcept SystemExit:\n    pass"


def test_heavy_optional_libraries_are_not_imported_by_import_edgeprune():
    assert imported_after("import edgeprune") == []


@pytest.mark.parametrize("args", [("--help",), ("--version",), ()], ids=["help", "version", "no-args"])
def test_cli_help_imports_none_of_the_heavy_stack(args):
    assert imported_after(run_cli_code(*args)) == []


@pytest.mark.slow
def test_a_command_still_imports_what_it_needs():
    assert "torch" in imported_after(run_cli_code("datasets"))


@pytest.mark.slow
def test_the_api_is_reachable_from_the_package_even_after_its_subpackage_prune_is_imported():
    code = ("import edgeprune.prune.masks, edgeprune, edgeprune.api\n"
            "from edgeprune import prune\n"
            "assert prune is edgeprune.prune is edgeprune.api.prune, edgeprune.prune\n"
            "assert edgeprune.sweep is edgeprune.api.sweep and edgeprune.Pruned is edgeprune.api.Pruned")
    subprocess.run([sys.executable, "-c", code], check=True)

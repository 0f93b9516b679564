"""The ``edgeprune`` command line (Typer). Each command group lives in its own module.

User mistakes raise :class:`~edgeprune.errors.EdgepruneError`; :func:`main` prints its one line and exits 2.
So do usage errors (an unknown option, a value of the wrong type) and operating-system refusals about a named
file (permission denied, is a directory, disk full): one line ``error: ...``, exit 2. Anything else is a bug
and keeps its traceback (``EDGEPRUNE_DEBUG=1`` keeps it for the errors above too).
"""

from __future__ import annotations

import errno
import importlib
import os
import sys
import warnings

import typer
from typer.core import TyperCommand, TyperGroup

from edgeprune import __version__
from edgeprune.errors import EdgepruneError

# The commands load lazily, the one place the CLI defers imports. A command module imports the stack its
# commands use at its top, as every module does (ruff PLC0415): torch, torch-pruning, ONNX (Runtime), matplotlib,
# seconds of imports. So `edgeprune --help` lists the commands from COMMANDS without importing any of them, and
# a command's module is imported (and registers its commands on ``app``) only when that command is run or asked
# for its own --help. A new command is added here too (tests/test_cli_commands.py checks the table against the
# modules). Order: the order of `edgeprune --help`.
COMMANDS: dict[str, tuple[str, str]] = {  # name: (module of edgeprune.cli, the first paragraph of its help)
    "models": ("basics", "List the model specs edgeprune can build (or, with --list, every name a library builds)."),
    "datasets": ("basics", "List the data set specs edgeprune can load."),
    "tasks": ("basics", "List the tasks `--task` takes (or path/to/file.py:factory for a task of your own)."),
    "train": ("basics", "Train a model; write model.pt and metrics.json (test accuracy measured once, on the "
                        "best-validation weights)."),
    "measure": ("basics", "Print params, non-zeros, sparsity, MACs, bytes and latency of a checkpoint (and with "
                          "--dataset the task's test metrics: a classifier's accuracy; mIoU, mAP, MSE... with the primary "
                          "one's 95% interval)."),
    "prune": ("prune", "Prune a model with METHOD over budgets × seeds; front, report, plot and chosen.pt in the run "
                       "directory."),
    "report": ("prune", "Re-render a run's report (report.md, front.png, summary.json, chosen.pt) from results.jsonl."),
    "methods": ("prune", "The registered methods and what their budget means."),
    "demo": ("demo", "Mix-and-Match and the global baselines on the bundled digits: one front, an honest headline."),
    "export": ("deploy", "Export a model to ONNX, ExecuTorch, OpenVINO and/or LiteRT, verify it in each runtime, "
                         "optionally quantize to INT8; write export.json."),
    "bench": ("deploy", "Median latency and spread (p10/p90) per batch size after warm-up, with threads and CPU "
                        "recorded; one warning line when the machine looks busy (p90/p10 > 1.5 or the load average "
                        "above the number of cores)."),
    "devices": ("devices", "Devices latency is measured on: `latency<=8ms@NAME` in a budget, `bench FILE --device NAME`."),
    "search": ("aliases", "Alias of `edgeprune prune mix_and_match`: ten strategies per criterion, Pareto report."),
    "vbp": ("aliases", "Alias of `edgeprune prune vbp`: prune the lowest-variance MLP neurons, fold their means, KD "
                       "fine-tune."),
    "pai": ("aliases", "Alias of `edgeprune prune reconvene`: PaI mask at initialisation, Reconvene (structured) and "
                       "UPaI, trained from scratch."),
    "roles": ("roles", "Print every prunable layer's role (and every norm), its depth, size and the rule range "
                       "[lo, hi]."),
    "status": ("scale", "Progress of a run directory: planned / finished / failed per kind, elapsed time, lock holder."),
}


def load_commands(module: str) -> dict:
    """Import ``edgeprune.cli.<module>`` (its commands register on ``app``); every registered command, built."""
    importlib.import_module(f"{__name__}.{module}")
    return dict(typer.main.get_command(app).commands)


def every_command():
    """The ``edgeprune`` group with every command module imported (for walking all help pages)."""
    for module in dict.fromkeys(module for module, _ in COMMANDS.values()):
        load_commands(module)
    return typer.main.get_command(app)


class LazyCommands(TyperGroup):
    """The ``edgeprune`` group: lists COMMANDS without importing them, imports a command's module to run it."""

    def list_commands(self, ctx) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx, cmd_name: str):
        if cmd_name in self.commands or cmd_name not in COMMANDS:
            return self.commands.get(cmd_name)
        return TyperCommand(cmd_name, help=COMMANDS[cmd_name][1])  # a line of `edgeprune --help`, not runnable

    def resolve_command(self, ctx, args):
        name = args[0] if args else None
        if name in COMMANDS and name not in self.commands:
            self.commands.update(load_commands(COMMANDS[name][0]))
        elif name not in COMMANDS:  # unknown: Typer's "Did you mean ...?" picks close names from self.commands
            self.commands = {n: self.get_command(ctx, n) for n in COMMANDS} | dict(self.commands)
        return super().resolve_command(ctx, args)


app = typer.Typer(
    name="edgeprune",
    cls=LazyCommands,
    help="Make PyTorch CNNs and Vision Transformers small, fast and accurate enough for edge devices.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # Markdown, not Rich markup: help texts name extras like 'edgeprune[edge]', which Rich would take for a tag
    rich_markup_mode="markdown",
)


def _version(value: bool):
    if value:
        typer.echo(f"edgeprune {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
):
    pass


# OS errors that are about the machine, not about a file name: reported as one line even without a filename
_ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def os_error_line(exc: OSError) -> str | None:
    """The one line for an OSError about a named file (or a full / read-only disk); None for anything else."""
    if exc.filename is None and exc.errno not in _ENVIRONMENT_ERRNOS:
        return None
    reason = exc.strerror or type(exc).__name__
    if exc.filename is None:
        return _one_line(reason)
    target = f" -> {str(exc.filename2)!r}" if exc.filename2 is not None else ""
    return _one_line(f"{str(exc.filename)!r}{target}: {reason}")


def main(argv: list[str] | None = None) -> None:
    """Entry point: usage errors, edgeprune's own errors and OS errors about a file become one line, exit 2."""
    debug = bool(os.environ.get("EDGEPRUNE_DEBUG"))
    formatwarning = warnings.formatwarning
    if not debug:  # a warning is one line for the user, not our source file and line
        warnings.formatwarning = _warning_line
    try:
        code = app(args=argv, prog_name="edgeprune", standalone_mode=False)
    except typer.TyperException as exc:  # Typer's (vendored click's) usage errors: one line, not a box
        if type(exc).__name__ == "NoArgsIsHelpError":  # the help was printed already (typer tests the same way)
            sys.exit(exc.exit_code)
        ctx = getattr(exc, "ctx", None)
        where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        print(f"error: {_one_line(exc.format_message())}{where}", file=sys.stderr)
        sys.exit(getattr(exc, "exit_code", 2))
    except typer.Abort:
        print("error: aborted", file=sys.stderr)
        sys.exit(1)
    except EdgepruneError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except OSError as exc:
        line = os_error_line(exc)
        if line is None or debug:
            raise
        print(f"error: {line}", file=sys.stderr)
        sys.exit(2)
    finally:
        warnings.formatwarning = formatwarning
    if isinstance(code, int) and code != 0:
        sys.exit(code)


def _warning_line(message, category, filename, lineno, line=None) -> str:
    return f"warning: {message}\n"

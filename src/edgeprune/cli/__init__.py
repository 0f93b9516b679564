"""The ``edgeprune`` command line (Typer). Each command group lives in its own module.

User mistakes raise :class:`~edgeprune.errors.EdgepruneError`; :func:`main` prints its one line and exits 2.
So do usage errors (an unknown option, a value of the wrong type) and operating-system refusals about a named
file (permission denied, is a directory, disk full): one line ``error: ...``, exit 2. Anything else is a bug
and keeps its traceback (``EDGEPRUNE_DEBUG=1`` keeps it for the errors above too).
"""

from __future__ import annotations

import errno
import os
import sys
import warnings

import typer

from edgeprune import __version__
from edgeprune.errors import EdgepruneError

app = typer.Typer(
    name="edgeprune",
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


# Command modules register themselves on ``app`` when imported.
# (not sorted: this order is the order of the commands in `edgeprune --help`)
from edgeprune.cli import basics, demo, deploy, prune, aliases, roles, scale  # noqa: E402,F401,I001


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

"""The ``edgeprune`` command line (Typer). Each command group lives in its own module.

User mistakes raise :class:`~edgeprune.errors.EdgepruneError`; :func:`main` prints its one line and exits 2.
"""

from __future__ import annotations

import sys

import typer

from edgeprune import __version__
from edgeprune.errors import EdgepruneError

app = typer.Typer(
    name="edgeprune",
    help="Make PyTorch CNNs and Vision Transformers small, fast and accurate enough for edge devices.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
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


def main(argv: list[str] | None = None) -> None:
    """Entry point: Typer handles usage errors (exit 2); edgeprune's own errors become one line, exit 2."""
    try:
        app(args=argv, prog_name="edgeprune")
    except EdgepruneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)

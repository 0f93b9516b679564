"""Helpers shared by the CLI commands: parsing small option values and printing tables."""

from __future__ import annotations

from typing import Iterable

import typer
import yaml
from rich.console import Console
from rich.table import Table

from edgeprune.config import MAX_BATCH_SIZE
from edgeprune.errors import ConfigError
from edgeprune.report.tables import human_bytes  # noqa: F401  (re-exported for the command modules)


def plain_console(**options) -> Console:
    """A Console that prints text as it is: values such as 'm[zoo].pt' or 'edgeprune[edge]' are not Rich markup."""
    return Console(markup=False, **options)


console = plain_console()

TASK_HELP = ("What the model is for: a task of `edgeprune tasks` (classification, segmentation, regression...) or "
             "path/to/file.py:factory returning an edgeprune Task; default: the data set's own (mnist-seg...), else "
             "classification.")
TASK_OPTION = typer.Option(None, "--task", help=TASK_HELP)  # one declaration for every command that takes a task


def parse_kv(items: Iterable[str] | None, option: str = "--arg") -> dict:
    """['dim=64', 'depth=4'] -> {'dim': 64, 'depth': 4} (values parsed as YAML scalars)."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{option} {item!r} must look like key=value")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            out[key.strip()] = value
    return out


def _split(text: str, option: str, kind: type, what: str) -> list:
    """'1,32' -> [kind('1'), kind('32')] (empty items skipped); a ConfigError naming ``what`` the list must hold."""
    try:
        return [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{option} {text!r} must be a comma-separated list of {what}") from None


def parse_int_list(text: str, option: str) -> list[int]:
    """'1,32' -> [1, 32]; every value must be a positive integer."""
    values = _split(text, option, int, "positive integers")
    if not values or any(v <= 0 for v in values):
        raise ConfigError(f"{option} {text!r} must be a comma-separated list of positive integers")
    if max(values) > MAX_BATCH_SIZE:
        raise ConfigError(f"{option} {text!r}: every value must be <= {MAX_BATCH_SIZE:,}")
    return values


def parse_float_list(text: str, option: str) -> list[float]:
    """'0.5,0.9' -> [0.5, 0.9]; at least one number."""
    values = _split(text, option, float, "numbers")
    if not values:
        raise ConfigError(f"{option} {text!r} must name at least one value")
    return values


def table(title: str, columns: list[str], rows: Iterable[Iterable]) -> Table:
    t = Table(title=title, title_justify="left")
    for i, c in enumerate(columns):
        t.add_column(c, justify="left" if i == 0 else "right")
    for r in rows:
        t.add_row(*[fmt(v) for v in r])
    return t


def fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)



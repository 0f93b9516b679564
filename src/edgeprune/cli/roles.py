"""``edgeprune roles``: print the layer-role table of a model with its Mix-and-Match rule ranges."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch
import typer

from edgeprune import data as data_lib
from edgeprune import models as model_lib
from edgeprune import ranges as ranges_lib
from edgeprune import roles as roles_lib
from edgeprune.cli import app
from edgeprune.cli.common import console, fmt, parse_kv, plain_console, table
from edgeprune.errors import ConfigError, check_positive


def model_and_input(model: str, dataset, data_dir, in_channels, image_size, num_classes, arg) -> tuple:
    """(the model, its input channels, its image size) from a checkpoint or a spec with the size options of
    ``roles`` (the data set's sizes, else the model's own input size, else 32)."""
    sizes = {"--in-channels": in_channels, "--image-size": image_size, "--num-classes": num_classes}
    for option, value in sizes.items():
        if value is not None:
            check_positive(option, value)
    if Path(model).is_file():
        if dataset or any(v is not None for v in sizes.values()) or arg:
            raise ConfigError("a checkpoint fixes its own input size and classes: drop --dataset/--in-channels/--image-size/--num-classes/--arg")
        net = model_lib.load(model)
        build = net.edgeprune_build
        channels, size = build["in_channels"], build["image_size"]
    else:
        if dataset:
            given = [o for o, v in sizes.items() if v is not None]
            if given:
                raise ConfigError(f"give either --dataset or {', '.join(given)}, not both")

            splits = data_lib.load(dataset, root=data_dir, limit=64)
            channels, size, classes = splits.in_channels, splits.image_size, splits.num_classes
        else:  # no size given: create() picks the model's own input size (or 32)
            channels, size, classes = in_channels or 3, image_size, num_classes or 10
        net = model_lib.create(model, num_classes=classes, in_channels=channels, image_size=size, **parse_kv(arg))
        size = net.edgeprune_build["image_size"]
    return net, channels, size


@app.command()
def roles(
    model: str = typer.Argument(..., help="Model spec (lenet5, resnet20, vit, hf-config:swin, ...) or an edgeprune checkpoint."),
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="Take channels, image size and classes from this data set."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Folder holding the data sets; default $EDGEPRUNE_DATA or ./data."),
    in_channels: Optional[int] = typer.Option(None, help="Input channels (default 3; not with --dataset)."),
    image_size: Optional[int] = typer.Option(None, help="Input height = width (default: the model's own input size if it has a fixed one, else 32; not with --dataset)."),
    num_classes: Optional[int] = typer.Option(None, help="Classes (default 10; not with --dataset)."),
    arg: Optional[list[str]] = typer.Option(None, "--arg", help="Model argument key=value (repeatable), e.g. --arg dim=64."),
    rule: Optional[list[str]] = typer.Option(None, "--rule", help="Range rule override key=value (repeatable), e.g. --rule linear=[0.95,0.995]."),
):
    """Print every prunable layer's role (and every norm), its depth, size and the rule range [lo, hi]."""
    rules = ranges_lib.RangeRules.build(parse_kv(rule, "--rule"))
    net, channels, size = model_and_input(model, dataset, data_dir, in_channels, image_size, num_classes, arg)
    role_table = roles_lib.classify(net, torch.zeros(1, channels, size, size))
    layer_ranges = ranges_lib.rules(role_table, rules)
    rows = []
    for entry, row in zip(role_table, role_table.rows()):
        lo_hi = layer_ranges.get(entry.param_name) if entry.param_name else None
        rows.append([*row, f"{lo_hi[0]:g}-{lo_hi[1]:g}" if lo_hi else "-"])
    counts = ", ".join(f"{r} {n}" for r, n in role_table.counts().items() if n)
    columns = [*roles_lib.RoleTable.COLUMNS, "range"]
    out = table(f"{model}: {counts}", columns, rows)
    for column in out.columns:
        column.overflow = "fold"  # long module names wrap instead of being cut to "…"
        if column.header in ("module", "role", "partner"):
            column.justify = "left"
    # piped or captured output: as wide as the table needs (a terminal folds to its own width)
    needed = sum(max(len(fmt(v)) for v in [c, *(r[i] for r in rows)]) + 3 for i, c in enumerate(columns)) + 1
    target = console if console.is_terminal else plain_console(width=max(console.width, needed))
    target.print(out)

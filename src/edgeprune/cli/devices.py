"""``edgeprune devices add | list | check | remove | table``: the devices latency budgets and ``bench --device`` name,
and a model's latency table on one of them."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Optional

import torch
import typer

from edgeprune import devices
from edgeprune.cli import app
from edgeprune.cli.common import console, table
from edgeprune.cli.roles import model_and_input
from edgeprune.devices.base import RUNTIMES
from edgeprune.errors import ConfigError, check_positive
from edgeprune.export.onnx import export_onnx
from edgeprune.utils.io import check_output

devices_app = typer.Typer(rich_markup_mode="markdown", add_completion=False, no_args_is_help=True)
app.add_typer(devices_app, name="devices")

REFERENCE_SHAPE = (3, 32, 32)


@devices_app.callback()
def devices_command():
    """Devices latency is measured on: `latency<=8ms@NAME` in a budget, `bench FILE --device NAME`.

    Kinds: `host` (this machine), `ssh://user@host[:port]` (edgeprune's runner and the model are copied there; the
    device needs Python 3 and onnxruntime, executorch, openvino or ai-edge-litert; the [devices] extra here), `cmd:TEMPLATE` (any command
    that runs `{model}` and prints a time; also `{batch}`, `{threads}`, `{shape}`, `{runtime}`, `{python}`,
    `{runner}`; `{models}` hands every file to one runner process). Saved in $EDGEPRUNE_DEVICES or
    ~/.config/edgeprune/devices.json. `edgeprune devices table MODEL --device NAME` times a model's layers there (the
    latency table structured pruning proposes latency budgets from)."""


@devices_app.command("add")
def add_command(
    name: str = typer.Argument(..., help="Lower-case letters, digits, - and _ (the @NAME of a budget)."),
    spec: str = typer.Argument(..., help="ssh://user@host[:port], cmd:TEMPLATE or host."),
    runtime: str = typer.Option("onnxruntime", "--runtime", help="onnxruntime | executorch | openvino | litert: what `bench --device` runs there."),
    threads: int = typer.Option(1, "--threads", help="Threads the runtime uses on the device (> 0)."),
    key: Optional[str] = typer.Option(None, "--key", help="ssh: private key file (default: your SSH agent / ~/.ssh keys)."),
    known_hosts: Optional[str] = typer.Option(None, "--known-hosts", help="ssh: known_hosts file (default ~/.ssh/known_hosts; 'none' trusts any host key)."),
    python: Optional[str] = typer.Option(None, "--python", help="ssh: the device's Python (default python3)."),
    rounds: Optional[int] = typer.Option(None, "--rounds", help="cmd: command runs per file and timing (default 5)."),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="Seconds one timing may take on the device (default 600)."),
):
    """Save a device under a name (checked, not contacted: `edgeprune devices check NAME` contacts it)."""
    entry = devices.add(name, spec, runtime=runtime, threads=threads, key=key, known_hosts=known_hosts, python=python,
                        rounds=rounds, timeout=timeout)
    typer.echo(f"saved device {name!r}: {entry['spec']} ({entry['runtime']}, {entry['threads']} thread(s)) in {devices.registry.path()}")


@devices_app.command("list")
def list_command():
    """The saved devices (and `host`, this machine)."""
    rows = [["host", "host", "onnxruntime", 1]]
    rows += [[name, e["spec"], e.get("runtime", "onnxruntime"), e.get("threads", 1)] for name, e in sorted(devices.named().items())]
    console.print(table(f"devices ({devices.registry.path()})", ["name", "spec", "runtime", "threads"], rows))


@devices_app.command("remove")
def remove_command(name: str = typer.Argument(..., help="A saved device's name.")):
    """Forget a saved device."""
    devices.remove(name)
    typer.echo(f"removed device {name!r}")


@devices_app.command("check")
def check_command(
    device: str = typer.Argument(..., help="A saved name, host, ssh://user@host[:port] or cmd:TEMPLATE."),
    runs: int = typer.Option(10, "--runs", help="Timed rounds of the reference model (> 0)."),
):
    """Contact the device: its runtimes and versions, cores and CPU, and the time of a reference model (a small
    conv net, 3x32x32, batch 1)."""
    dev = devices.get(device)
    try:
        info = dev.check()
        with tempfile.TemporaryDirectory(prefix="edgeprune-check-") as folder:
            path = Path(folder) / "reference.onnx"
            torch.manual_seed(0)
            export_onnx(reference_net(), path, input_shape=REFERENCE_SHAPE)
            ms = dev.latency(path, REFERENCE_SHAPE, runs=runs)
    finally:
        dev.close()
    rows = [["device", f"{dev.name} ({dev.kind})"], ["runtime used", f"{dev.runtime}, {dev.threads} thread(s)"]]
    rows += [["runtimes", ", ".join(f"{k} {v}" for k, v in info["runtimes"].items())]] if "runtimes" in info else []
    rows += [[k, info[k]] for k in ("cores", "cpu", "python", "command") if k in info]
    rows.append(["reference model", f"{ms:.3f} ms (conv net 3x32x32, batch 1, median of {runs})"])
    console.print(table(f"device {device}", ["item", "value"], rows))


@devices_app.command("table")
def table_command(
    model: str = typer.Argument(..., help="Model spec (resnet20, vit, timm:..., torchvision:...) or an edgeprune checkpoint."),
    device: str = typer.Option("host", "--device", help="A saved device's name, host, ssh://... or cmd:TEMPLATE."),
    batch: int = typer.Option(1, "--batch", help="Batch size the table is timed at (> 0)."),
    runtime: Optional[str] = typer.Option(None, "--runtime", help="onnxruntime | executorch | openvino | litert: the runtime "
                                          "the table is timed in (default: the device's own; host: onnxruntime)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Also write the sealed table to this file."),
    rebuild: bool = typer.Option(False, "--rebuild", help="Time it again even if a cached table exists (e.g. one timed while the device was busy)."),
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="Take channels, image size and classes from this data set."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Folder holding the data sets; default $EDGEPRUNE_DATA or ./data."),
    in_channels: Optional[int] = typer.Option(None, help="Input channels (default 3; not with --dataset)."),
    image_size: Optional[int] = typer.Option(None, help="Input height = width (default: the model's own, else 32)."),
    num_classes: Optional[int] = typer.Option(None, help="Classes (default 10; not with --dataset)."),
    arg: Optional[list[str]] = typer.Option(None, "--arg", help="Model argument key=value (repeatable)."),
):
    """Time every layer of MODEL on the device at a few kept widths, fit the latency table that structured pruning
    proposes latency budgets from, and print its error on held-out pruned copies timed whole. Cached: a later
    `latency<=...@DEVICE` budget on the same model and batch reads it."""
    import edgeprune.methods.catalog  # noqa: F401, PLC0415  (the method registry; heavy: only this command needs it)
    from edgeprune.methods import structured_mam  # noqa: PLC0415
    from edgeprune.methods.base import get_method  # noqa: PLC0415
    from edgeprune.select import latency_table  # noqa: PLC0415

    check_positive("--batch", batch)
    if runtime is not None and runtime not in RUNTIMES:
        raise ConfigError(f"--runtime {runtime!r} is not allowed; allowed: {', '.join(RUNTIMES)}")
    if out is not None:
        check_output(out, "--out")
    net, channels, size = model_and_input(model, dataset, data_dir, in_channels, image_size, num_classes, arg)
    name = None if device == "host" else device
    state = structured_mam.prepare(net.eval(), None, torch.zeros(2, channels, size, size),
                                   get_method("structured", criteria=["magnitude"]).options)
    if name:
        runtime = runtime or state.meter.device(name).runtime
        state.meter.device(name).check(runtime)  # unreachable or without the runtime: one line before any work
    runtime = runtime or "onnxruntime"
    try:
        t = structured_mam.table_of(state, name, batch, progress=typer.echo, rebuild=rebuild, runtime=runtime)
    finally:
        if name:
            state.meter.device(name).close()
    path = latency_table.cache_path(t.key)
    if out is not None:
        t.save(out)
    error = t.error
    rows = [["model", f"{model} ({channels}x{size}x{size}, batch {batch})"], ["device", f"{device}"], ["runtime", runtime],
            ["layers timed", str(len(t.layers))],
            ["fit", f"{t.c0:.4f} ms + {t.k:.3f} x sum of layer times (on {error['fitted_on']} models)"],
            ["input model", f"{t.reference_ms:.4f} ms measured"],
            ["held-out error", f"median {error['median_abs_pct']:.1f} %, max {error['max_abs_pct']:.1f} % "
                               f"({len(error['held_out'])} pruned copies timed whole)"],
            ["cached", str(path)], *([["written", str(out)]] if out is not None else [])]
    console.print(table(f"latency table {t.key}", ["item", "value"], rows))


def reference_net() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Conv2d(3, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(32, 32, 3, padding=1),
                               torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(32, 10))

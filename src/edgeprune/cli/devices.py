"""``edgeprune devices add | list | check | remove``: the devices latency budgets and ``bench --device`` name."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Optional

import torch
import typer

from edgeprune import devices
from edgeprune.cli import app
from edgeprune.cli.common import console, table
from edgeprune.export.onnx import export_onnx

devices_app = typer.Typer(rich_markup_mode="markdown", add_completion=False, no_args_is_help=True)
app.add_typer(devices_app, name="devices")

REFERENCE_SHAPE = (3, 32, 32)


@devices_app.callback()
def devices_command():
    """Devices latency is measured on: `latency<=8ms@NAME` in a budget, `bench FILE --device NAME`.

    Kinds: `host` (this machine), `ssh://user@host[:port]` (edgeprune's runner and the model are copied there; the
    device needs Python 3 and onnxruntime or executorch; the [devices] extra here), `cmd:TEMPLATE` (any command
    that runs `{model}` and prints a time; also `{batch}`, `{threads}`, `{shape}`, `{runtime}`, `{python}`,
    `{runner}`). Saved in $EDGEPRUNE_DEVICES or ~/.config/edgeprune/devices.json."""


@devices_app.command("add")
def add_command(
    name: str = typer.Argument(..., help="Lower-case letters, digits, - and _ (the @NAME of a budget)."),
    spec: str = typer.Argument(..., help="ssh://user@host[:port], cmd:TEMPLATE or host."),
    runtime: str = typer.Option("onnxruntime", "--runtime", help="onnxruntime | executorch: what `bench --device` runs there."),
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


def reference_net() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Conv2d(3, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(32, 32, 3, padding=1),
                               torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(32, 10))

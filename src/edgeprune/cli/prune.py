"""``edgeprune prune METHOD``: any registered method on any model, one run directory, one report.

Every registered method is a sub-command: the shared flags (:func:`prune_flags`) and the method's declared options
(:mod:`edgeprune.cli.method_flags`). The work is one call of the public API, :func:`edgeprune.api.sweep`, which
resolves and checks every input once. ``search``, ``vbp`` and ``pai`` are aliases taking the same path
(:mod:`edgeprune.cli.aliases`).
"""

from __future__ import annotations

import functools
import inspect
from pathlib import Path
from typing import Optional

import typer
from rich.text import Text
from typer.core import TyperGroup

from edgeprune import api
from edgeprune.cli import app, method_flags
from edgeprune.cli.common import TASK_OPTION, console, parse_kv, table
from edgeprune.errors import ConfigError
from edgeprune.methods.base import get_method, list_methods, method_class
from edgeprune.report.metric import Metric
from edgeprune.runs import report as run_report
from edgeprune.runs.store import RunStore
from edgeprune.runs.sweep import FORMAT, SweepResult

QUICK_HELP = ("Try the command first: at most 1,000 training and 1,000 test images (stratified), 10 batches per epoch in every "
              "training stage, fewer calibration batches; the figures are not the real ones (the report says so).")
DRY_RUN_HELP = "Print the plan (candidates, epochs, batches, estimated time) and stop: nothing is trained or written."
PRUNE_HELP = "Prune a model with METHOD over budgets × seeds; front, report, plot and chosen.pt in the run directory."
SWEEP_PARAMETERS = frozenset(inspect.signature(api.sweep).parameters)


def with_weights(spec: str, model_args: dict, weights: Path | None, checkpoint: Path | None) -> dict:
    """``model_args`` plus ``weights=PATH`` for ``--weights`` (torchvision: and timm: specs only)."""
    if weights is None:
        return model_args
    if not spec.startswith(("torchvision:", "timm:")):
        raise ConfigError(f"--weights applies to torchvision: and timm: models, not {spec!r}; for an edgeprune "
                          "checkpoint use --checkpoint, for a Hugging Face folder use --model hf:PATH")
    if checkpoint is not None:
        raise ConfigError("--weights and --checkpoint both set; give one (--checkpoint is a model trained on this data)")
    if "weights" in model_args:
        raise ConfigError("--weights and --arg weights=... both set; give one")
    if not weights.is_file():
        raise ConfigError(f"--weights {str(weights)!r} is not a file; pass a local .pt/.pth/.safetensors state dict")
    return {**model_args, "weights": str(weights)}


def parse_budgets(text: str | None) -> list[str] | None:
    """``--budget`` 'a,b' -> ['a', 'b'] (each checked by the method: a number or a typed budget)."""
    if text is None:
        return None
    values = [b.strip() for b in text.split(",") if b.strip()]
    if not values:
        raise ConfigError(f"--budget {text!r} must name at least one budget")
    return values


def default_out(prefix: str, model: str, dataset: str) -> Path:
    return Path("runs") / f"{prefix}-{Path(model.split(':')[0]).stem}-{dataset.split(':')[0]}"


def run_prune(method: str, model: str, dataset: str, *, out: Path, options: dict, **settings) -> SweepResult | None:
    """``edgeprune.sweep`` of a model spec (trained first unless ``checkpoint``), then the front printed; None for
    a dry run. ``settings``: the API's keywords; ``options``: the method's (checked by the API, once)."""
    clash = sorted(set(options) & SWEEP_PARAMETERS)
    if clash:
        raise ConfigError(f"{clash[0]!r} is not an option of method {method!r}; see `edgeprune prune {method} --help`")
    result = api.sweep(model, dataset, method=method, out=out, **settings, **options)
    if isinstance(result, dict):  # the dry run's plan, printed
        return None
    ok = [r for r in result.records if r.get("kind") == "candidate" and r.get("status") == "ok"]
    if not ok:
        failed = next((r for r in result.records if r.get("status") == "failed"), None)
        raise ConfigError(f"every candidate failed (run directory {str(out)!r}); the first: "
                          f"{failed['error'] if failed else 'no candidate was planned'}")
    print_result(result)
    return result


def print_result(result) -> None:
    """The front, the input model and the chosen one, in the metric the run's records name."""
    dense = result.summary["dense"]
    metric = Metric.of(dense)
    rows = [[g["label"], f"{100 * g['removed']:.2f}", metric.number(g[metric.val]),
             "–" if g.get(metric.test) is None else metric.number(g[metric.test])] for g in result.front]
    console.print(table(f"Front ({metric.phrase} vs non-zero weights removed)",
                        ["setting", "removed %", metric.column("val"), metric.column("test")], rows))
    console.print(f"input model: {metric.words('val')} {metric.text(dense[metric.val])}" +
                  (f", {metric.words('test')} {metric.text(dense[metric.test])}" if metric.test in dense else ""))
    if result.chosen:
        console.print(Text.assemble("chosen: ", (str(result.chosen["id"]), "bold"), f" → {result.run_dir / 'chosen.pt'}"))
    console.print(f"plot: {result.run_dir / 'front.png'}   report: {result.run_dir / 'report.md'}")
    edge = result.summary.get("edge")
    if edge:
        chosen = edge.get("models", {}).get("chosen", {})
        timed = [(key, title) for key, title in edge.get("runtimes", {}).items() if f"{key}_ms_b1" in chosen]
        if timed:
            parts = [f"{title} {chosen[f'{key}_ms_b1']:.3f} ms" + (f" (x{edge[f'speedup_{key}_b1']:.2f})"
                                                                    if f"speedup_{key}_b1" in edge else "")
                     for key, title in timed]
            console.print(f"on the device (batch 1, 1 thread; x: speed-up vs input): chosen {', '.join(parts)}"
                          f"{_int8_headline(edge)} (report.md, edge.png)")
        else:
            console.print(f"on the device: {edge.get('error') or chosen.get('error') or 'not measured'}")


class MethodGroup(TyperGroup):
    """``edgeprune prune``: one sub-command per registered method; a missing or unknown METHOD is one line."""

    def parse_args(self, ctx, args):
        if not args or (args[0].startswith("-") and args[0] not in ("--help", "-h")):
            raise ConfigError(f"missing METHOD: edgeprune prune METHOD --model ...; methods: {', '.join(list_methods())}")
        return super().parse_args(ctx, args)

    def resolve_command(self, ctx, args):
        if args and args[0] not in self.commands:
            method_class(args[0])  # an unknown method: one line naming the registered ones
        return super().resolve_command(ctx, args)


prune_app = typer.Typer(cls=MethodGroup, rich_markup_mode="markdown", add_completion=False)
app.add_typer(prune_app, name="prune")


@prune_app.callback()
def prune_command():
    """Prune a model with METHOD over budgets × seeds; front, report, plot and chosen.pt in the run directory.

    METHOD is a method of `edgeprune methods`; `edgeprune prune METHOD --help` lists its options."""


def prune_flags(
    model: str = typer.Option(..., "--model", "-m", help="Model spec: zoo name, hf:, hf-config:, timm:, torchvision: or path/to/file.py:factory."),
    dataset: str = typer.Option("digits", "--dataset", "-d", help="Data set spec."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Folder holding the data sets."),
    budget: str = typer.Option(None, "--budget", "-b", help="Budget(s), comma-separated: the method's sparsity or ratio, or for structured, vbp and reconvene latency<=2.5ms[@b32], size<=1.5MB[@int8|@sparse], macs<=40%, params<=100k; default: the method's."),
    seeds: int = typer.Option(1, "--seeds", help="Seeds per budget (> 0)."),
    finetune: Optional[int] = typer.Option(None, "--finetune", help="Fine-tune (or, for reconvene, training) epochs; 0 = none; default: the method's."),
    kd: Optional[bool] = typer.Option(None, "--kd/--no-kd", help="Distil from the input model while fine-tuning (default: the method's)."),
    schedule: Optional[str] = typer.Option(None, "--schedule", help="Masked candidates: oneshot (prune, then fine-tune) or gradual (cubic schedule during fine-tuning); default: the measured default (docs/mix_and_match.md)."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="Trained model; without it the model is trained first (--dense-epochs)."),
    dense_epochs: int = typer.Option(5, "--dense-epochs", help="Epochs of training when no checkpoint is given (> 0)."),
    arg: Optional[list[str]] = typer.Option(None, "--arg", help="Model argument key=value (repeatable)."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Local weights (.pt/.pth/.safetensors state dict) for a torchvision: or timm: model; the classifier stays new for the data set's classes and is trained (--dense-epochs)."),
    option: Optional[list[str]] = typer.Option(None, "--option", "-O", help="Method option key=value (repeatable), e.g. -O criteria=[magnitude]; the same as the method's own flags."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run directory (re-running resumes it)."),
    executor: str = typer.Option("local", help="local | ray (each candidate a Ray task)."),
    ray_address: Optional[str] = typer.Option(None, help="Ray cluster to join (HOST:PORT, ray://HOST:PORT or auto); default: start a local Ray."),
    workers: Optional[int] = typer.Option(None, help="Candidates in flight at once with --executor ray (> 0)."),
    cpus_per_candidate: Optional[int] = typer.Option(None, help="CPUs (torch threads) per candidate (> 0)."),
    gpus_per_candidate: Optional[float] = typer.Option(None, help="GPUs per candidate (>= 0, fractions allowed with ray)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    edge_report: bool = typer.Option(False, "--edge-report", help="Report the input model, the chosen one and its INT8 form in every installed runtime (ONNX Runtime; ExecuTorch, OpenVINO, LiteRT with their extras): bytes, batch-1 latency (1 thread), test accuracy; under a minute per run."),
    edge_device: Optional[str] = typer.Option(None, "--edge-device", help="Also time the edge report's models on this device (a saved name, ssh://user@host, cmd:TEMPLATE; checked before any work); implies --edge-report."),
    quick: bool = typer.Option(False, "--quick", help=QUICK_HELP),
    dry_run: bool = typer.Option(False, "--dry-run", help=DRY_RUN_HELP),
    task: Optional[str] = TASK_OPTION,
):
    """The flags every `edgeprune prune METHOD` takes (their signature only)."""


def with_scratch(method: str, options: dict, dense_epochs: int | None, finetune: int | None) -> dict:
    """A structured front the shell trains the input model for holds the scratch baseline by default: the narrowed
    architecture trained from scratch as long as the input model and its fine-tune together (with a --checkpoint
    the input's epochs are unknown: none unless asked for with -O scratch_epochs=N)."""
    cls, _ = method_class(method).variant(dict(options))
    if cls.name != "structured" or "scratch_epochs" in options or dense_epochs is None:
        return options
    return {**options, "scratch_epochs": dense_epochs + (cls.finetune_epochs if finetune is None else finetune)}


def prune_method(method: str, *, model, dataset, data_dir, budget, seeds, finetune, kd, schedule, checkpoint, dense_epochs,
                 arg, weights, option, out, executor, ray_address, workers, cpus_per_candidate, gpus_per_candidate, quiet,
                 edge_report, edge_device, quick, dry_run, task, **flags) -> None:
    options = method_flags.given(method_class(method), flags, parse_kv(option, "--option"))
    options = with_scratch(method, options, None if checkpoint else dense_epochs, finetune)
    runner = {"kind": executor, "ray_address": ray_address, "workers": workers,
              "cpus_per_candidate": cpus_per_candidate, "gpus_per_candidate": gpus_per_candidate}
    run_prune(method, model, dataset, out=out or default_out(f"prune-{method}", model, dataset), options=options,
              data_dir=data_dir, budgets=parse_budgets(budget), seeds=seeds, finetune=finetune, kd=kd, schedule=schedule,
              checkpoint=checkpoint, train_input=dense_epochs, model_args=with_weights(model, parse_kv(arg), weights, checkpoint),
              executor=runner, progress=not quiet, edge_report=edge_device or edge_report, quick=quick, dry_run=dry_run,
              task=task)


for _name, _summary in list_methods().items():
    prune_app.command(_name)(method_flags.command(
        functools.partial(prune_method, _name), prune_flags, method_flags.parameters(method_class(_name)),
        f"{_summary}\n\nThe shared flags, then the options of {_name}."))


def _int8_headline(edge: dict) -> str:
    """``; INT8 fastest in LiteRT 0.015 ms (x2.13), test accuracy 98.1% (FP32 98.3%)``, or nothing."""
    ints = edge.get("models", {}).get("chosen INT8", {})
    timed = [key for key in edge.get("runtimes", {}) if f"{key}_ms_b1" in ints]
    if not timed:
        return ""
    key = min(timed, key=lambda k: ints[f"{k}_ms_b1"])
    text = f"; INT8 fastest in {edge['runtimes'][key]} {ints[f'{key}_ms_b1']:.3f} ms"
    text += f" (x{edge[f'speedup_int8_{key}_b1']:.2f})" if f"speedup_int8_{key}_b1" in edge else ""
    score = edge.get("int8", {}).get("scores", {}).get(key)
    if score:
        metric = Metric(edge["int8"]["metric"])
        text += f", test {metric.label} {metric.text(score['int8'])} (FP32 {metric.text(score['fp32'])})"
    return text


@app.command()
def report(run_dir: Path = typer.Argument(..., help="A run directory of `edgeprune prune` (or its aliases search, vbp, pai)."),
           edge: bool = typer.Option(False, "--edge", help="Add the input model, the chosen one and its INT8 form in every installed runtime: bytes, batch-1 latency (1 thread), test accuracy (edge.png; cached in edge.json)."),
           device: Optional[str] = typer.Option(None, "--device", help="With --edge: also time both models on this device (`edgeprune devices list`, ssh://..., cmd:...).")):
    """Re-render a run's report (report.md, front.png, summary.json, chosen.pt) from results.jsonl."""
    if device is not None and not edge:
        raise ConfigError("--device needs --edge (it times the edge report's files on the device)")
    config = RunStore(run_dir).config()
    if config.get("format") == FORMAT:
        summary = run_report.render(run_dir, edge=edge, device=device)
        print_result(SweepResult(run_dir, [], summary["front"], summary["chosen"], summary))
    else:
        raise ConfigError(f"{str(run_dir)!r} was made by the `search`/`vbp`/`pai` pipelines of an earlier release, whose "
                          "report was written by the run itself; re-run the command (now an alias of `prune`)")


@app.command("methods")
def methods_command():
    """The registered methods and what their budget means."""
    rows = []
    for name in list_methods():
        m = get_method(name)
        lo, hi = m.budget_range
        measured = f"; or {', '.join(m.measured_kinds)}" if m.measured_kinds else ""
        rows.append([name, f"{m.budget_name} in [{lo:g}, {hi:g}), default {m.default_budget:g}{measured}", m.summary])
    console.print(table("Methods (edgeprune prune METHOD)", ["method", "budget", "what it does"], rows))

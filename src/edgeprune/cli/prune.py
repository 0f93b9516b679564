"""``edgeprune prune METHOD``: any registered method on any model, one run directory, one report.

:func:`run_prune` is the one path every pruning command takes; ``search``, ``vbp`` and ``pai`` are aliases
that translate their flags into it (see :mod:`edgeprune.cli.aliases`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.text import Text

from edgeprune import data as data_lib
from edgeprune import models as model_lib
from edgeprune import tasks as tasks_lib
from edgeprune.api import sweep
from edgeprune.cli import app
from edgeprune.cli.common import TASK_OPTION, console, parse_kv, table
from edgeprune.data.splits import QUICK_LIMIT, QUICK_TEST_LIMIT
from edgeprune.errors import CheckpointError, ConfigError
from edgeprune.methods.base import get_method, list_methods
from edgeprune.methods.dense import train_dense
from edgeprune.prune.gradual import schedule_of
from edgeprune.report.metric import Metric
from edgeprune.runs import inputs as inputs_lib
from edgeprune.runs import report as run_report
from edgeprune.runs.executor import make_executor
from edgeprune.runs.store import RunStore
from edgeprune.runs.sweep import (
    FORMAT,
    SweepResult,
    check_run_dir,
    estimate_line,
    make_plan,
    print_plan,
    quick_method,
    stage_plan,
    sweep_identity,
)
from edgeprune.train import TrainConfig, default_config, log_line, quick_config
from edgeprune.utils.io import read_json

QUICK_HELP = ("Try the command first: at most 1,000 training and 1,000 test images (stratified), 10 batches per epoch in every "
              "training stage, fewer calibration batches; the figures are not the real ones (the report says so).")
DRY_RUN_HELP = "Print the plan (candidates, epochs, batches, estimated time) and stop: nothing is trained or written."


def task_of(spec) -> tasks_lib.Task | None:
    """The task ``--task`` names (ConfigError naming what is allowed, before any work); None: the data's own."""
    return None if spec is None else tasks_lib.get(spec)


def trained_input(spec: str, model_args: dict, checkpoint: Path | None, splits, dense: TrainConfig, out: Path,
                  progress: bool, task: tasks_lib.Task | None = None):
    """The model to prune: the user's checkpoint, or ``spec`` trained on the data for ``task`` (kept in OUT/dense/)."""
    task = task or tasks_lib.Classification()
    own_task = None if isinstance(task, tasks_lib.Classification) else task.name  # classifiers' metrics.json name none
    if checkpoint is not None:
        model = model_lib.load(checkpoint)
        build = model.edgeprune_build
        if build.get("spec") != spec:
            raise CheckpointError(f"checkpoint {str(checkpoint)!r} holds a {build.get('spec')!r} model, not --model {spec!r}")
        if (build.get("num_classes"), build.get("in_channels")) != (splits.num_classes, splits.in_channels):
            raise CheckpointError(
                f"checkpoint {str(checkpoint)!r} is for {build.get('num_classes')} classes / {build.get('in_channels')} "
                f"channels; data set {splits.name!r} has {splits.num_classes} / {splits.in_channels}")
        return model
    own = out / "dense" / "model.pt"
    if own.is_file():  # trained by an earlier run of this command into the same --out
        made = read_json(out / "dense" / "metrics.json")
        now = {"model": spec, "model_kwargs": model_args, "dataset": splits.name, "task": own_task, "epochs": dense.epochs,
               "max_batches": dense.max_batches}  # a quick run's input model is not a full run's
        then = {**{k: made.get(k) for k in now}, **{k: made.get("config", {}).get(k) for k in ("epochs", "max_batches")}}
        for key in now:
            if then[key] != now[key]:
                raise ConfigError(f"{str(own)!r} was trained with {key} {then[key]!r}, not {now[key]!r}; "
                                  "use another --out or delete its dense/ folder")
        return model_lib.load(own)
    model, _ = train_dense(spec, splits, dense, out / "dense", model_kwargs=model_args, progress=progress, task=task)
    return model


def needs_training(checkpoint: Path | None, out: Path) -> bool:
    return checkpoint is None and not (out / "dense" / "model.pt").is_file()


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


def run_prune(method: str, model: str, dataset: str = "digits", *, data_dir: Path | None = None, budgets=None,
              seeds=1, finetune=None, kd: bool | None = None, checkpoint: Path | None = None, dense_epochs: int = 5,
              model_args: dict | None = None, options: dict | None = None, out: Path | None = None,
              executor=None, schedule: str | None = None, progress: bool = True,
              edge_report: bool = False, quick: bool = False, dry_run: bool = False,
              task: str | tasks_lib.Task | None = None) -> SweepResult | None:
    """Check everything, train the input model if no checkpoint is given, sweep, print the front.

    The plan (and, first, the input model's training) is printed before the work when ``progress``;
    ``dry_run`` prints it and returns None without training or writing anything. ``task``: ``--task`` (a
    preset or file.py:factory); None: the data set's own, else classification."""
    plan = schedule_of(schedule)
    wanted = task_of(task)
    m = get_method(method, **(options or {}))
    m = quick_method(m) if quick else m
    budget_list = inputs_lib.budgets_of(m, budgets)
    seed_list = inputs_lib.seeds_of(seeds)
    if dense_epochs <= 0:
        raise ConfigError(f"--dense-epochs must be > 0, got {dense_epochs}")
    model_args = model_args or {}
    splits = data_lib.load(dataset, root=data_dir, limit=QUICK_LIMIT if quick else None,
                           test_limit=QUICK_TEST_LIMIT if quick else None)
    probe = inputs_lib.resolve(model, splits, task=wanted, model_args=model_args)  # the spec builds and takes the data
    with tasks_lib.using(probe.task):
        m.check(probe.model, probe.example)
        train = inputs_lib.train_config(m, probe.model, finetune)
        train = quick_config(train) if quick and train is not None else train
        distil = m.kd if kd is None else bool(kd)
        run_dir = out or default_out(f"prune-{method}", model, dataset)
        # refuse another method's or configuration's folder before the input model is trained into it
        check_run_dir(run_dir, sweep_identity(m, budget_list, seed_list, train, distil, plan, quick))
        dense_config = default_config(model, epochs=dense_epochs)
        dense_config = quick_config(dense_config) if quick else dense_config
        first = needs_training(checkpoint, run_dir)
        dense = stage_plan(probe.model, splits, dense_config) if first and (progress or dry_run) else None
        if dry_run:
            chosen = probe if first else inputs_lib.resolve(
                trained_input(model, model_args, checkpoint, splits, dense_config, run_dir, False, probe.task), splits,
                task=probe.task)
            state = m.prepare(chosen.model, chosen.data, chosen.example)
            cands = m.candidates(state, budget_list, seed_list)
            print_plan(make_plan(m, chosen, budget_list, seed_list, cands, train, distil, dense=dense, quick=quick))
            return None
        if dense is not None:
            log_line(f"plan: {m.name} — first the input model {model} on {splits.name}: dense training "
                     f"{dense['epochs']} epoch(s) × {dense['batches_per_epoch']} batches of {dense['batch_size']}; "
                     "the candidates' plan follows")
            log_line(estimate_line({"estimate_seconds": dense["seconds"], "dense": dense}).replace("in total", "for it"))
        runner = executor or make_executor("local")
        with runner:
            trained = trained_input(model, model_args, checkpoint, splits, dense_config, run_dir, progress, probe.task)
            result = sweep(trained, splits, method=m.name, budgets=budget_list, seeds=seed_list, out=run_dir,
                           executor=runner, task=probe.task, finetune=train or 0, kd=kd, schedule=plan,
                           progress=progress, edge_report=edge_report, quick=quick, **m.options.model_dump())
    ok = [r for r in result.records if r.get("kind") == "candidate" and r.get("status") == "ok"]
    if not ok:
        failed = next((r for r in result.records if r.get("status") == "failed"), None)
        raise ConfigError(f"every candidate failed (run directory {str(run_dir)!r}); the first: "
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
        if "et_ms_b1" in chosen:
            ups = "".join(f", x{edge[k]:.2f} vs input" for k in ("speedup_et_b1",) if k in edge)
            console.print(f"on the device: chosen .pte {chosen['pte_bytes'] / 1e3:,.1f} kB, ExecuTorch "
                          f"{chosen['et_ms_b1']:.3f} ms b1{ups}; ONNX {chosen['onnx_bytes'] / 1e3:,.1f} kB, "
                          f"ONNX Runtime {chosen['ort_ms_b1']:.3f} ms b1 (report.md, edge.png)")
        else:
            console.print(f"on the device: {edge.get('error') or chosen.get('error') or 'not measured'}")


@app.command("prune")
def prune_command(
    method: str = typer.Argument(..., help="A method of `edgeprune methods`."),
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
    option: Optional[list[str]] = typer.Option(None, "--option", "-O", help="Method option key=value (repeatable), e.g. -O criteria=[magnitude]."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run directory (re-running resumes it)."),
    executor: str = typer.Option("local", help="local | ray (each candidate a Ray task)."),
    ray_address: Optional[str] = typer.Option(None, help="Ray cluster to join (HOST:PORT, ray://HOST:PORT or auto); default: start a local Ray."),
    workers: Optional[int] = typer.Option(None, help="Candidates in flight at once with --executor ray (> 0)."),
    cpus_per_candidate: Optional[int] = typer.Option(None, help="CPUs (torch threads) per candidate (> 0)."),
    gpus_per_candidate: Optional[float] = typer.Option(None, help="GPUs per candidate (>= 0, fractions allowed with ray)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    edge_report: bool = typer.Option(False, "--edge-report", help="Report the chosen and the input model's ONNX and ExecuTorch (.pte) bytes and batch-1 latency (1 thread); needs the [edge] extra, seconds per run."),
    quick: bool = typer.Option(False, "--quick", help=QUICK_HELP),
    dry_run: bool = typer.Option(False, "--dry-run", help=DRY_RUN_HELP),
    task: Optional[str] = TASK_OPTION,
):
    """Prune a model with METHOD over budgets × seeds; front, report, plot and chosen.pt in the run directory."""
    wanted = task_of(task)  # a bad --task is refused before an executor starts
    runner = make_executor(executor, ray_address=ray_address, workers=workers,
                           cpus_per_candidate=cpus_per_candidate, gpus_per_candidate=gpus_per_candidate)
    run_prune(method, model, dataset, data_dir=data_dir, budgets=parse_budgets(budget),
              seeds=seeds, finetune=finetune, kd=kd, checkpoint=checkpoint, dense_epochs=dense_epochs,
              model_args=with_weights(model, parse_kv(arg), weights, checkpoint), options=parse_kv(option, "--option"),
              out=out, executor=runner, schedule=schedule, progress=not quiet, edge_report=edge_report,
              quick=quick, dry_run=dry_run, task=wanted)


@app.command()
def report(run_dir: Path = typer.Argument(..., help="A run directory of `edgeprune prune` (or its aliases search, vbp, pai)."),
           edge: bool = typer.Option(False, "--edge", help="Add the chosen and the input model's ONNX and ExecuTorch (.pte) bytes and batch-1 latency, 1 thread (edge.png; cached in edge.json); needs the [edge] extra.")):
    """Re-render a run's report (report.md, front.png, summary.json, chosen.pt) from results.jsonl."""
    config = RunStore(run_dir).config()
    if config.get("format") == FORMAT:
        summary = run_report.render(run_dir, edge=edge)
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

"""``edgeprune search``, ``vbp`` and ``pai``: the commands of earlier releases, kept as aliases of
``edgeprune prune METHOD``. Each keeps its own spellings of the budget, the training and the run folder
(:func:`search_flags`, :func:`vbp_flags`, :func:`pai_flags`); the method's options are the flags made from its
declared options (:mod:`edgeprune.cli.method_flags`), renamed where an old spelling differs. Each then takes
:func:`~edgeprune.cli.prune.run_prune`, so the run directory, records, report, ``status`` and ``export`` are those
of ``prune``.

Flags that no longer apply (``--int8``, ``--limit``, ``--latency-*``, ``--onnx``, ``--reinit``,
``--ranges derived``) are gone: Typer refuses them in one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edgeprune.cli import app, method_flags
from edgeprune.cli.common import parse_float_list, parse_kv
from edgeprune.cli.prune import DRY_RUN_HELP, QUICK_HELP, TASK_OPTION, default_out, run_prune
from edgeprune.errors import ConfigError
from edgeprune.methods.base import method_class
from edgeprune.utils.io import read_yaml

SEARCH_HELP = "Alias of `edgeprune prune mix_and_match`: ten strategies per criterion, Pareto report."
VBP_HELP = "Alias of `edgeprune prune vbp`: prune the lowest-variance MLP neurons, fold their means, KD fine-tune."
PAI_HELP = ("Alias of `edgeprune prune reconvene`: PaI mask at initialisation, Reconvene (structured) and UPaI, "
            "trained from scratch.")
PAI_RENAMED = {"synflow_rounds": "rounds"}  # option -> the old flag's name
PAI_MODES = {"both": ["reconvene", "unstructured"], "reconvene": ["reconvene"], "unstructured": ["unstructured"]}


def load_recipe(path: Path) -> dict:
    """A YAML recipe (safe_load): a mapping of the search flags (``model``, ``criteria``, ``epochs``...); the one
    checked reader names the file and line of any damage (not UTF-8, invalid YAML, not a mapping)."""
    return read_yaml(path, "recipe")


RECIPE_OPTIONS = ("criteria", "strategies", "range_rules", "calib_batches")  # mix_and_match options a recipe may set
RECIPE_KEYS = ("model", "dataset", "data_dir", "checkpoint", "criteria", "strategies", "range_rules",
               "target_sparsity", "seeds", "epochs", "dense_epochs", "calib_batches", "kd", "model_args", "task")


def _given(**values) -> dict:
    return {k: v for k, v in values.items() if v is not None}


def search_flags(
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model spec (required unless in the recipe)."),
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="Data set spec (default digits)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Folder holding the data sets."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="Trained dense model; without it the dense model is trained first."),
    target_sparsity: Optional[str] = typer.Option(None, help="Global sparsity (or several, comma-separated) every strategy is calibrated to."),
    seeds: Optional[int] = typer.Option(None, help="Seeds per setting (> 0)."),
    epochs: Optional[int] = typer.Option(None, help="Fine-tuning epochs per candidate (>= 0)."),
    dense_epochs: Optional[int] = typer.Option(None, help="Epochs of dense training when no checkpoint is given."),
    kd: Optional[bool] = typer.Option(None, "--kd/--no-kd", help="Distil from the dense model while fine-tuning."),
    arg: Optional[list[str]] = typer.Option(None, "--arg", help="Model argument key=value (repeatable)."),
    recipe: Optional[Path] = typer.Option(None, "--recipe", help="YAML recipe with the same settings; flags override it."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run directory (re-running resumes it)."),
    executor: str = typer.Option("local", help="local | ray (each candidate a Ray task)."),
    ray_address: Optional[str] = typer.Option(None, help="Ray cluster to join (HOST:PORT, ray://HOST:PORT or auto)."),
    workers: Optional[int] = typer.Option(None, help="Candidates in flight at once with --executor ray (> 0)."),
    cpus_per_candidate: Optional[int] = typer.Option(None, help="CPUs (torch threads) per candidate (> 0)."),
    gpus_per_candidate: Optional[float] = typer.Option(None, help="GPUs per candidate (>= 0)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    quick: bool = typer.Option(False, "--quick", help=QUICK_HELP),
    dry_run: bool = typer.Option(False, "--dry-run", help=DRY_RUN_HELP),
    task: Optional[str] = TASK_OPTION,
):
    """The flags of `edgeprune search` besides mix_and_match's options (their signature only)."""


def search(*, recipe, model, dataset, data_dir, checkpoint, target_sparsity, seeds, epochs, dense_epochs, kd, arg, out,
           executor, ray_address, workers, cpus_per_candidate, gpus_per_candidate, quiet, quick, dry_run, task, **flags):
    settings = load_recipe(recipe) if recipe else {}
    unknown = sorted(set(settings) - set(RECIPE_KEYS))
    if unknown:
        raise ConfigError(f"recipe {str(recipe)!r}: unknown setting {unknown[0]!r}; allowed: {', '.join(RECIPE_KEYS)}")
    settings |= _given(model=model, dataset=dataset, data_dir=data_dir, checkpoint=checkpoint, target_sparsity=target_sparsity,
                       seeds=seeds, epochs=epochs, dense_epochs=dense_epochs, kd=kd, model_args=parse_kv(arg) or None, task=task)
    if "model" not in settings:
        raise ConfigError("--model is required (or a recipe with a 'model' key)")
    budgets = settings.get("target_sparsity")
    if isinstance(budgets, str):
        budgets = parse_float_list(budgets, "--target-sparsity")
    options = {k: settings[k] for k in RECIPE_OPTIONS if k in settings} | method_flags.given(method_class("mix_and_match"), flags)
    runner = {"kind": executor, "ray_address": ray_address, "workers": workers, "cpus_per_candidate": cpus_per_candidate,
              "gpus_per_candidate": gpus_per_candidate}
    spec, data = str(settings["model"]), str(settings.get("dataset", "digits"))
    run_prune("mix_and_match", spec, data, out=out or default_out("search", spec, data), options=options,
              data_dir=settings.get("data_dir"), budgets=budgets, seeds=settings.get("seeds", 1),
              finetune=settings.get("epochs"), kd=settings.get("kd"),
              checkpoint=Path(settings["checkpoint"]) if settings.get("checkpoint") else None,
              train_input=settings.get("dense_epochs", 5), model_args=settings.get("model_args") or {}, executor=runner,
              progress=not quiet, quick=quick, dry_run=dry_run, task=settings.get("task"))


def vbp_flags(
    model: str = typer.Option(..., "--model", "-m", help="Model spec with MLP blocks: vit, hf-config:deit, timm:…, path/to/file.py:factory."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="Data set spec, e.g. mnist, cifar10, digits."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", "-c", help="Trained model; without it a dense model is trained first (RUN/dense)."),
    ratio: float = typer.Option(0.5, help="Fraction of all MLP hidden neurons to prune, in [0, 1)."),
    ratios: Optional[str] = typer.Option(None, help="Several ratios, comma-separated (overrides --ratio), e.g. 0.1,0.3,0.5."),
    epochs: int = typer.Option(10, help="KD fine-tune epochs after pruning (>= 0; 0 = none)."),
    batch_size: int = typer.Option(32, help="Fine-tune batch size."),
    lr: float = typer.Option(1.5e-5, help="Fine-tune learning rate (AdamW, cosine)."),
    weight_decay: float = typer.Option(0.01, help="Fine-tune weight decay."),
    patience: Optional[int] = typer.Option(3, help="Early stopping: fine-tune epochs without validation improvement."),
    max_batches: Optional[int] = typer.Option(None, help="Cap on fine-tune batches per epoch (quick runs)."),
    dense_epochs: int = typer.Option(10, help="Epochs of dense training when no --checkpoint is given."),
    arg: Optional[list[str]] = typer.Option(None, "--arg", help="Model argument key=value (repeatable), e.g. --arg dim=64."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Folder holding the data sets; default $EDGEPRUNE_DATA or ./data."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run folder; default runs/vbp-MODEL-DATASET."),
    seed: int = typer.Option(0, help="Seed for the fine-tune and random selection."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    quick: bool = typer.Option(False, "--quick", help=QUICK_HELP),
    dry_run: bool = typer.Option(False, "--dry-run", help=DRY_RUN_HELP),
    task: Optional[str] = TASK_OPTION,
):
    """The flags of `edgeprune vbp` besides vbp's options (their signature only)."""


def vbp(*, model, dataset, checkpoint, ratio, ratios, epochs, batch_size, lr, weight_decay, patience, max_batches,
        dense_epochs, arg, data_dir, out, seed, quiet, quick, dry_run, task, **flags):
    budgets = parse_float_list(ratios, "--ratios") if ratios is not None else [ratio]
    finetune = 0 if epochs == 0 else {"epochs": epochs, "batch_size": batch_size, "lr": lr,
                                      "weight_decay": weight_decay, "patience": patience, "max_batches": max_batches}
    run_prune("vbp", model, dataset, out=out or default_out("vbp", model, dataset),
              options=method_flags.given(method_class("vbp"), flags), data_dir=data_dir, budgets=budgets, seeds=[seed],
              finetune=finetune, checkpoint=checkpoint, train_input=dense_epochs, model_args=parse_kv(arg),
              progress=not quiet, quick=quick, dry_run=dry_run, task=task)


def pai_flags(
    model: str = typer.Option(..., "--model", "-m", help="Model spec, e.g. vgg11, vgg16, resnet20, lenet5."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="Data set spec, e.g. mnist, cifar10, digits."),
    sparsity: float = typer.Option(0.9, help="Global sparsity p of the PaI mask over Conv/Linear weights, in [0, 1)."),
    mode: str = typer.Option("both", help="reconvene | unstructured | both."),
    epochs: int = typer.Option(10, help="Training epochs from scratch (> 0), the same for every model (dense included)."),
    seeds: int = typer.Option(1, help="Number of seeds (0..K-1): initialisation, scores and training order."),
    batch_size: int = typer.Option(128, help="Training batch size (> 0)."),
    lr: Optional[float] = typer.Option(None, help="Learning rate (> 0); default by model family."),
    max_batches: Optional[int] = typer.Option(None, help="Cap on training batches per epoch (quick runs)."),
    arg: Optional[list[str]] = typer.Option(None, "--arg", help="Model argument key=value (repeatable)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Folder holding the data sets; default $EDGEPRUNE_DATA or ./data."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run folder; default runs/pai-MODEL-DATASET."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    quick: bool = typer.Option(False, "--quick", help=QUICK_HELP),
    dry_run: bool = typer.Option(False, "--dry-run", help=DRY_RUN_HELP),
    task: Optional[str] = TASK_OPTION,
):
    """The flags of `edgeprune pai` besides reconvene's options (their signature only)."""


def pai(*, model, dataset, sparsity, mode, epochs, seeds, batch_size, lr, max_batches, arg, data_dir, out, quiet, quick,
        dry_run, task, **flags):
    if mode not in PAI_MODES:
        raise ConfigError(f"--mode must be one of reconvene, unstructured, both, got {mode!r}")
    if epochs <= 0:
        raise ConfigError(f"--epochs must be > 0, got {epochs}")
    train = _given(epochs=epochs, batch_size=batch_size, lr=lr, max_batches=max_batches)
    options = {"modes": PAI_MODES[mode], **method_flags.given(method_class("reconvene"), flags)}
    run_prune("reconvene", model, dataset, out=out or default_out("pai", model, dataset), options=options,
              data_dir=data_dir, budgets=[sparsity], seeds=seeds, finetune=train, train_input=epochs,
              model_args=parse_kv(arg), progress=not quiet, quick=quick, dry_run=dry_run, task=task)


def _alias(name: str, run, flags, method: str, doc: str, **renamed) -> None:
    params = method_flags.parameters(method_class(method), **renamed)
    app.command(name)(method_flags.command(run, flags, params, doc))


_alias("search", search, search_flags, "mix_and_match", SEARCH_HELP)
_alias("vbp", vbp, vbp_flags, "vbp", VBP_HELP)
_alias("pai", pai, pai_flags, "reconvene", PAI_HELP, rename=PAI_RENAMED, exclude=("modes",))

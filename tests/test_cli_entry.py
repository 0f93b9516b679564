"""The thin entry path (issue 28.5): `edgeprune prune METHOD` has a flag for every option the method declares (its
help from the declaration), a flag and `-O` are the same setting, a bad value is one line and exit 2 with nothing
written, and the inputs of a CLI run are resolved and checked once (by edgeprune.api, below which the CLI does not go)."""

import json
import re

import pytest

import edgeprune
from edgeprune.methods.base import method_class
from edgeprune.runs import inputs as inputs_lib
from edgeprune.runs import request as request_lib
from helpers import assert_one_line_error

TINY = ["--dataset", "digits", "--dense-epochs", "1", "--finetune", "0", "-q"]
TINY_VIT = ["--model", "vit", "--arg", "dim=16", "--arg", "depth=2", "--arg", "num_heads=2", *TINY]
BOX = re.compile(r"[│╭╮╰╯─]")

# method, its flags, the options they set, model flags
RUNS = [
    ("vbp", ["--selection", "magnitude", "--no-compensation", "--calib-batches", "2"],
     {"selection": "magnitude", "compensation": False, "calib_batches": 2}, [*TINY_VIT, "--budget", "0.25"]),
    ("mix_and_match", ["--criteria", "magnitude", "--strategies", "min,early_heavy", "--baselines", "", "--calib-batches", "1"],
     {"criteria": ["magnitude"], "strategies": ["min", "early_heavy"], "baselines": [], "calib_batches": 1},
     ["--model", "lenet300", *TINY]),
    ("snip", ["--calib-batches", "1", "--calib-batch-size", "16"], {"calib_batches": 1, "calib_batch_size": 16},
     ["--model", "lenet300", *TINY]),
]


def records(run):
    return [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("method,flags,options,model", RUNS, ids=[r[0] for r in RUNS])
def test_generated_flags_set_the_method_options(run_cli, tmp_path, method, flags, options, model):
    run = tmp_path / "run"
    code, _, err = run_cli("prune", method, *model, *flags, "--out", run)
    assert code == 0, err
    config = json.loads((run / "config.json").read_text())
    assert {k: config["options"][k] for k in options} == options
    candidates = [r for r in records(run) if r["kind"] == "candidate"]
    assert candidates and all(r["status"] == "ok" for r in candidates)
    if method == "mix_and_match":
        assert sorted(r["setting"]["strategy"] for r in candidates) == ["early_heavy", "min"]
    before = (run / "results.jsonl").read_bytes()
    as_o = [x for key, value in options.items() for x in ("-O", f"{key}={json.dumps(value)}")]
    code, _, err = run_cli("prune", method, *model, *as_o, "--out", run)
    assert code == 0, err  # the same options through -O: the same run, resumed, nothing new
    assert (run / "results.jsonl").read_bytes() == before


def _flat(text: str) -> str:
    return " ".join(BOX.sub(" ", text).split())


@pytest.mark.parametrize("method", sorted(edgeprune.list_methods()))
def test_help_lists_every_declared_option_with_its_help_and_default(run_cli, monkeypatch, method):
    monkeypatch.setenv("COLUMNS", "250")
    code, out, err = run_cli("prune", method, "--help")
    assert code == 0, err
    shown = _flat(out)
    fields = method_class(method).Options.model_fields
    assert fields
    for name, field in fields.items():
        flag = "--" + name.replace("_", "-")
        assert flag in shown, flag
        assert field.description and " ".join(field.description.rstrip(".").split()[:5]) in shown, name
        if field.default is not None:
            assert re.search(rf"{re.escape(flag)}\b.*?Default: ", shown), name


def test_every_declared_option_has_a_description():
    for method in edgeprune.list_methods():
        for name, field in method_class(method).Options.model_fields.items():
            assert field.description, f"{method}: option {name!r} has no description (its --help would be empty)"


@pytest.mark.parametrize("method,args,words", [
    ("vbp", ["--selection", "loudest"], ["selection", "loudest", "variance"]),
    ("vbp", ["--calib-batches", "-1"], ["calib_batches", "-1"]),
    ("vbp", ["--min-keep", "few"], ["--min-keep", "integer"]),  # typed as declared: Typer refuses it
    ("mix_and_match", ["--criteria", "magnitude,taylor"], ["taylor", "magnitude"]),
    ("mix_and_match", ["--criteria", ","], ["criteria"]),
    ("structured", ["--drop-blocks", "1,x"], ["drop_blocks", "x"]),
    ("structured", ["--round-to", "0"], ["round_to", "0"]),
    ("reconvene", ["--modes", "sideways"], ["modes", "sideways"]),
    ("snip", ["--calib-batches", "2", "-O", "calib_batches=3"], ["calib_batches", "given twice"]),
    ("snip", ["-O", "out=elsewhere"], ["out", "snip"]),
    ("nope", [], ["nope", "allowed", "vbp"]),
])
def test_a_bad_value_is_one_line_and_nothing_is_written(run_cli, tmp_path, method, args, words):
    run = tmp_path / "run"
    model = TINY_VIT if method == "vbp" else ["--model", "lenet5", *TINY]
    code, _, err = run_cli("prune", method, *model, *args, "--out", run)
    assert_one_line_error(code, err, *words)
    assert not run.exists()


def counting(monkeypatch, module, name: str, counts: dict):
    real = getattr(module, name)

    def counted(*args, **kwargs):
        counts[name] = counts.get(name, 0) + 1
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)


@pytest.mark.parametrize("argv", [
    ["prune", "magnitude", "--model", "lenet300", "--budget", "0.5,0.7", *TINY],
    ["vbp", "--model", "vit", "--dataset", "digits", "--arg", "dim=16", "--arg", "depth=2", "--arg", "num_heads=2",
     "--dense-epochs", "1", "--epochs", "0", "--ratio", "0.25", "-q"],
    ["search", "--model", "lenet300", "--dataset", "digits", "--criteria", "magnitude", "--strategies", "min",
     "--baselines", "", "--dense-epochs", "1", "--epochs", "0", "-q", "--dry-run"],
], ids=["prune", "vbp-alias", "search-alias-dry-run"])
def test_the_cli_checks_its_inputs_once(run_cli, tmp_path, monkeypatch, argv):
    counts: dict = {}
    counting(monkeypatch, request_lib, "resolve_request", counts)  # the one place every input is checked
    counting(monkeypatch, request_lib, "get_method", counts)  # the method's options
    for name in ("resolve", "budgets_of", "seeds_of", "train_config"):  # the model, data, budgets, seeds, fine-tune
        counting(monkeypatch, inputs_lib, name, counts)
    code, _, err = run_cli(*argv, "--out", tmp_path / "run")
    assert code == 0, err
    assert counts == {"resolve_request": 1, "get_method": 1, "resolve": 1, "budgets_of": 1, "seeds_of": 1,
                      "train_config": 1}


def test_the_api_checks_its_inputs_once(monkeypatch):
    counts: dict = {}
    counting(monkeypatch, request_lib, "resolve_request", counts)
    counting(monkeypatch, inputs_lib, "resolve", counts)
    pruned = edgeprune.prune("lenet300", "digits", method="magnitude", budget=0.5, finetune=0)
    assert pruned.record["status"] == "ok" and counts == {"resolve_request": 1, "resolve": 1}


@pytest.mark.parametrize("alias,flags", [("search", ["--criteria", "--baselines", "--calib-batches"]),
                                         ("vbp", ["--selection", "--no-compensation", "--per-layer", "--min-keep"]),
                                         ("pai", ["--score", "--rounds", "--keep", "--round-to"])])
def test_the_aliases_take_the_generated_flags_in_their_old_spellings(run_cli, monkeypatch, alias, flags):
    monkeypatch.setenv("COLUMNS", "250")
    code, out, err = run_cli(alias, "--help")
    assert code == 0, err
    assert all(flag in _flat(out) for flag in flags)
    assert alias != "pai" or "--synflow-rounds" not in out and "--modes" not in out  # renamed; set by --mode


def test_a_renamed_alias_flag_is_refused_under_the_option_it_sets(run_cli, tmp_path):
    code, _, err = run_cli("pai", "--model", "resnet20", "--dataset", "digits", "--rounds", "0", "--out", tmp_path / "r", "-q")
    assert_one_line_error(code, err, "synflow_rounds", "0")
    assert not (tmp_path / "r").exists()


def test_train_input_and_checkpoint_need_a_model_spec(tmp_path):
    from edgeprune import models
    from edgeprune.errors import ConfigError

    model = models.create("lenet300", num_classes=10, in_channels=1, image_size=8)
    with pytest.raises(ConfigError, match="model spec"):
        edgeprune.sweep(model, "digits", method="magnitude", out=tmp_path / "r", train_input=1)
    with pytest.raises(ConfigError, match="train_input.*> 0, got 0"):
        edgeprune.sweep("lenet300", "digits", method="magnitude", out=tmp_path / "r", train_input=0)
    assert not (tmp_path / "r").exists()


def test_an_executor_is_named_by_its_flags_as_a_dict():
    from edgeprune.errors import ConfigError
    from edgeprune.runs.executor import LocalExecutor, executor_of

    runner, own = executor_of({"kind": "local", "cpus_per_candidate": 1})
    assert isinstance(runner, LocalExecutor) and runner.threads == 1 and own
    assert executor_of(runner) == (runner, False)  # the caller's own: used as it is, closed by the caller
    with pytest.raises(ConfigError, match="'thread' is not allowed; allowed: kind, ray_address"):
        executor_of({"kind": "local", "thread": 2})
    with pytest.raises(ConfigError, match="slurm"):
        executor_of({"kind": "slurm"})

"""Square brackets in help texts and printed values are text, not Rich markup: `--help` of every command shows
``pip install 'edgeprune[edge]'`` whole, and a checkpoint named ``m[zoo].pt`` keeps its name in tables."""

import re

import pytest

from edgeprune import models
from edgeprune.cli import every_command

BRACKETED = re.compile(r"\[[^\[\]]+\]")
BOX = re.compile(r"[│╭╮╰╯─┃┏┓┗┛━┡┩╇┳└┘┴]")


def _commands(command, path=()):
    """(path, command) for the root and every sub-command, walking the click tree Typer builds."""
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _commands(sub, (*path, name))


def _bracketed_in_source(command) -> set[str]:
    texts = [command.help or "", *(getattr(p, "help", None) or "" for p in command.params)]
    return {" ".join(m.split()) for text in texts for m in BRACKETED.findall(text)}


def _flat(text: str) -> str:
    return " ".join(BOX.sub(" ", text).split())


HELP_PAGES = list(_commands(every_command()))


def test_some_help_text_has_brackets():
    """The check below is not empty: the help strings do hold bracketed words (the [edge] extra at least)."""
    found = set().union(*(_bracketed_in_source(c) for _, c in HELP_PAGES))
    assert "[edge]" in " ".join(found)


@pytest.mark.parametrize("path,command", HELP_PAGES, ids=[" ".join(p) or "edgeprune" for p, _ in HELP_PAGES])
def test_help_renders_bracketed_words_literally(run_cli, monkeypatch, path, command):
    monkeypatch.setenv("COLUMNS", "250")  # no option text folded mid-word
    code, out, err = run_cli(*path, "--help")
    assert code == 0, err
    shown = _flat(out)
    missing = [word for word in _bracketed_in_source(command) if word not in shown]
    assert not missing, f"`edgeprune {' '.join(path)} --help` lost {missing}"


def test_printed_values_keep_their_brackets(run_cli, tmp_path):
    model = models.create("lenet300", num_classes=10, in_channels=1, image_size=8)
    path = models.save(model, tmp_path / "m[zoo].pt")
    code, out, err = run_cli("measure", path)
    assert code == 0, err
    assert "m[zoo].pt" in _flat(out).replace(" ", "")  # a long temporary path may be folded at any character

"""The CLI's command table (edgeprune.cli.COMMANDS), which `edgeprune --help` lists without importing the
command modules, matches the commands those modules register: same names, modules and help (issue 32.2)."""

import inspect
import subprocess
import sys

import pytest

from edgeprune.cli import COMMANDS, every_command


def first_paragraph(text: str) -> str:
    return " ".join(inspect.cleandoc(text).split("\n\n")[0].split())


def test_the_table_lists_every_registered_command_with_its_module_and_help():
    registered = every_command().commands
    assert sorted(registered) == sorted(COMMANDS), "a command is missing from (or extra in) edgeprune.cli.COMMANDS"
    for name, (module, help_text) in COMMANDS.items():
        command = registered[name]
        assert command.callback.__module__ == f"edgeprune.cli.{module}", name
        assert first_paragraph(help_text) == first_paragraph(command.help), f"COMMANDS[{name!r}] help differs from the command's"


def test_help_lists_every_command_with_its_help(run_cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    code, out, err = run_cli("--help")
    assert code == 0, err
    for name, (_, help_text) in COMMANDS.items():
        shown = first_paragraph(help_text).replace("`", "")  # Markdown code, shown as plain text
        assert f" {name} " in out and shown in " ".join(out.split()), name


@pytest.mark.slow
def test_a_command_and_its_help_load_their_module_in_a_fresh_interpreter():
    def edgeprune(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "edgeprune", *args], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return " ".join(done.stdout.split())

    assert "mix_and_match" in edgeprune("methods")
    assert "run_dir" in edgeprune("status", "--help")  # the real command's argument, not the listing's entry


def test_a_mistyped_command_gets_the_close_names_of_commands_not_yet_loaded():
    done = subprocess.run([sys.executable, "-m", "edgeprune", "prnue"], capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.startswith("error: No such command 'prnue'. Did you mean 'prune'?")

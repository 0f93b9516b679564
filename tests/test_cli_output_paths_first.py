"""An output path that cannot be written is refused (one line, exit 2) before anything is measured or
exported: no table printed first, nothing written."""

from __future__ import annotations

import pytest

from edgeprune import models as model_lib
from helpers import assert_one_line_error


@pytest.fixture
def checkpoint(tmp_path):
    path = tmp_path / "model.pt"
    model_lib.save(model_lib.create("lenet5", num_classes=10, in_channels=1, image_size=8), path)
    return path


def test_bench_json_that_is_a_folder_is_refused_before_measuring(checkpoint, run_cli, tmp_path):
    folder = tmp_path / "figures"
    folder.mkdir()
    code, out, err = run_cli("bench", checkpoint, "--batch", "1", "--runs", "2", "--json", folder)
    assert_one_line_error(code, err, "--json", str(folder), "directory")
    assert out == "" and not list(folder.iterdir())


def test_bench_json_under_a_file_is_refused_before_measuring(checkpoint, run_cli):
    code, out, err = run_cli("bench", checkpoint, "--batch", "1", "--runs", "2", "--json", checkpoint / "b.json")
    assert_one_line_error(code, err, "--json", "is a file")
    assert out == ""


def test_export_out_that_is_a_file_is_refused_before_exporting(checkpoint, run_cli, tmp_path):
    target = tmp_path / "taken"
    target.write_text("mine")
    code, out, err = run_cli("export", checkpoint, "--out", target)
    assert_one_line_error(code, err, "--out", str(target), "is a file")
    assert out == "" and target.read_text() == "mine"

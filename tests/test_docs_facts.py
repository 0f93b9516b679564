"""Facts the docs state that the code decides: the demo's test-set size, the pinned torch version, and what
the input check refuses (only classifiers today); each read from the docs and checked against the real thing."""

import re
from pathlib import Path

import pytest
import torch
from torch import nn

from edgeprune import data as data_lib
from edgeprune.cli import demo
from edgeprune.errors import ModelError
from edgeprune.runs.inputs import resolve

REPO = Path(__file__).resolve().parents[1]
USER_DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def test_readme_and_demo_state_the_digits_test_set_size():
    test_images = len(data_lib.load("digits").test)  # what `edgeprune demo` evaluates on
    for where, text in [("README.md", (REPO / "README.md").read_text()), ("cli/demo.py", demo.__doc__)]:
        stated = [int(n) for n in re.findall(r"digits'?(?: test set has)? (\d+)(?: test)? images", text)]
        assert stated, f"{where} no longer states the digits test-set size"
        assert set(stated) == {test_images}, f"{where} says {stated} test images; the demo's data has {test_images}"


def test_docs_name_the_pinned_torch_version():
    pin = re.search(r"^torch==(\S+)", (REPO / "constraints.txt").read_text(), re.M).group(1)
    named = {(doc.name, m) for doc in USER_DOCS for m in re.findall(r"(?<![\w-])torch[ =]=?\s?(\d+\.\d+(?:\.\d+)?)\b", doc.read_text())}
    assert named, "the docs no longer name a torch version"
    wrong = {(doc, v) for doc, v in named if not (pin == v or pin.startswith(v + "."))}
    assert not wrong, f"constraints.txt pins torch {pin}; docs name {sorted(wrong)}"


class SegmentationNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 10, 1)

    def forward(self, x):
        return self.conv(x)  # one score map per class: [B, classes, H, W], not logits [B, classes]


@pytest.mark.parametrize("doc", ["README.md", "docs/zoo.md"])
def test_docs_say_only_classifiers_with_the_refusal_the_input_check_gives(doc):
    with pytest.raises(ModelError) as info:
        resolve(SegmentationNet(), "digits", example_input=torch.zeros(1, 1, 8, 8))
    refusal = re.search(r"expected logits \[batch, classes\]", str(info.value)).group(0)
    text = " ".join((REPO / doc).read_text().split())
    assert "only image classifiers" in text.lower(), f"{doc} must say only classifiers are supported"
    assert refusal in text, f"{doc} must quote the refusal of the input check"

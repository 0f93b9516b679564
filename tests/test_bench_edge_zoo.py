"""benchmarks/edge_zoo.py: one script for the three edge stages reads each stage's note and names its runtime."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import edge_zoo  # noqa: E402


def test_the_notes_of_every_edge_stage_are_read():
    et = edge_zoo.parse_note("max diff 2.4e-07 (max |logit| 0.2), 2 ops outside the delegate (mean x2)")
    assert et == {"max_abs_diff": 2.4e-07, "max_abs_logit": 0.2, "outside_delegate": 2, "outside_top": "mean x2"}
    assert edge_zoo.parse_note("max diff 4.5e-08 (max |logit| 0.16)") == {"max_abs_diff": 4.5e-08, "max_abs_logit": 0.16}
    assert edge_zoo.parse_note("did not finish within 300 s of CPU time") == {}


def test_a_litert_section_names_its_runtime_and_the_refusals_reason():
    rows = [{"case": "lenet5", "status": "pass", "max_abs_diff": 2e-7, "max_abs_logit": 0.2, "seconds": 3.0},
            {"case": "vit", "status": "refused", "seconds": 1.0,
             "note": "model 'VisionTransformer' cannot be converted to LiteRT: aten::foo has no lowering"}]
    text = edge_zoo.section(rows, 300.0, "litert")
    assert text.startswith("## LiteRT export") and "--stage litert" in text and "delegate" not in text
    assert "1 of 2 exported with parity; 1 refused: vit (aten::foo has no lowering)" in text

"""A structured front without a scratch baseline says so in the report (issue 30): the front alone cannot tell
whether training the narrower model from scratch would do as well; a weight-level front has no such section."""

from edgeprune.report.compare import NO_SCRATCH
from edgeprune.runs.report import render
from edgeprune.runs.store import RunStore

TITLE = "## Pruning vs training the small model from scratch"


def _report(tmp_path, method: str, scratch: bool) -> str:
    store = RunStore(tmp_path / method).open({"method": method, "model": {"name": "resnet20"},
                                              "data": {"name": "synthetic"}, "budgets": ["macs<=50%"], "seeds": [0]})
    store.append({"kind": "dense", "id": "dense", "val_acc": 0.9, "params": 1000, "nonzeros": 1000, "macs": 100})
    settings = [("balanced", {"strategy": "balanced"})] + [("scratch", {"strategy": "uniform", "scratch": True})] * scratch
    for name, setting in settings:
        store.append({"kind": "candidate", "status": "ok", "id": f"{method}-{name}", "method": method, "budget": 0.5,
                      "budget_name": "macs<=50%", "budget_text": "macs<=50%", "seed": 0, "setting": setting,
                      "val_acc": 0.8, "params": 500, "nonzeros": 500, "macs": 49})
    render(store.root)
    return (store.root / "report.md").read_text()


def test_a_structured_front_without_scratch_says_it_is_not_measured(tmp_path):
    report = _report(tmp_path, "structured", scratch=False)
    assert TITLE in report and NO_SCRATCH in report and "scratch_epochs=N" in report


def test_with_a_scratch_baseline_the_section_compares_instead(tmp_path):
    report = _report(tmp_path, "structured", scratch=True)
    assert TITLE in report and NO_SCRATCH not in report and "Budget 0.5" in report


def test_a_weight_level_front_has_no_scratch_section(tmp_path):
    assert TITLE not in _report(tmp_path, "mix_and_match", scratch=False)

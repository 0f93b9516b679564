"""How a report names, orders and prints the primary metric its records name.

Records of a classifier name no metric (top-1 accuracy: ``val_acc``, ``test_acc``); records of other tasks name
theirs (``metric``: ``miou``, ``mse``...) and its direction (``metric_higher``). A :class:`Metric` gives the
record keys, the label (a small table: the name when the table does not know it), the direction, and the text:
metrics in [0, 1] (accuracy, mIoU, mAP, pixel accuracy) as percentages, others (MSE, MAE, a user's own) as
plain numbers with 4 significant digits. A classifier's metric keeps the words reports always used.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgeprune.tasks import metric_of

LABELS = {"acc": "accuracy", "miou": "mIoU", "map": "mAP@[.5:.95]", "map50": "mAP@.5", "map75": "mAP@.75", "mse": "MSE",
          "mae": "MAE", "pixel_acc": "pixel accuracy"}
FRACTIONS = frozenset({"acc", "miou", "map", "map50", "map75", "pixel_acc"})  # in [0, 1]: shown as percentages
NON_NEGATIVE = FRACTIONS | {"mse", "mae"}


AGREE = "agree_"  # a metric read against the input model's predictions (data without labels: tasks.agreement)


def _own(name: str) -> str:
    return "acc" if name == "agree" else name.removeprefix(AGREE)


def label_of(name: str) -> str:
    if name == "agree" or name.startswith(AGREE):
        return f"{'top-1' if name == 'agree' else LABELS.get(_own(name), _own(name))} agreement with the input model"
    return LABELS.get(name, name)


def number(name: str, value: float) -> str:
    """``value`` of metric ``name`` without its unit: ``45.12`` (a percentage) or ``0.4123``."""
    return f"{100 * value:.2f}" if _own(name) in FRACTIONS else f"{value:.4g}"


@dataclass(frozen=True)
class Metric:
    name: str = "acc"
    higher: bool = True
    named: bool = False  # the records name it (any task but classification)

    @classmethod
    def of(cls, record: dict) -> "Metric":
        name, higher = metric_of(record)
        return cls(name, higher, "metric" in record)

    # -- record keys --------------------------------------------------------------------------------
    @property
    def val(self) -> str:
        return f"val_{self.name}"

    @property
    def test(self) -> str:
        return f"test_{self.name}"

    @property
    def pruned(self) -> str:
        return f"val_{self.name}_pruned"

    @property
    def ci(self) -> str:
        return f"test_{self.name}_ci"

    # -- words --------------------------------------------------------------------------------------
    @property
    def label(self) -> str:
        return label_of(self.name)

    @property
    def percent(self) -> bool:
        return _own(self.name) in FRACTIONS

    @property
    def unit(self) -> str:
        return "%" if self.percent else ""

    @property
    def scale(self) -> float:
        """Plots draw ``scale * value``."""
        return 100.0 if self.percent else 1.0

    @property
    def direction(self) -> str:
        return "higher is better" if self.higher else "lower is better"

    def number(self, value: float) -> str:
        return number(self.name, value)

    def text(self, value: float) -> str:
        """``45.12%`` or ``0.4123``."""
        return self.number(value) + self.unit

    def words(self, what: str) -> str:
        """``what`` naming the metric: ``validation`` for a classifier (accuracy goes without saying), else
        ``validation mIoU``."""
        return what if not self.named else f"{what} {self.label}"

    def column(self, what: str, after: str = "") -> str:
        """A table header: ``val %`` for a classifier, ``val mIoU %`` / ``val MSE`` (``after``: ``val MSE after pruning``)."""
        return f"{self.words(what)}{after}" + (" %" if self.percent else "")

    @property
    def phrase(self) -> str:
        """``validation accuracy``, ``validation mIoU``: titles and headings."""
        return f"validation {self.label}"

    @property
    def axis(self) -> str:
        if not self.named:
            return "validation top-1 (%)"
        return f"validation {self.label}" + (" (%)" if self.percent else "") + ("" if self.higher else ", lower is better")

    def clamp(self, lo: float, hi: float) -> tuple[float, float]:
        """An interval cut to the metric's range where it is known (a t-interval over two seeds is wide)."""
        if _own(self.name) in NON_NEGATIVE:
            lo, hi = max(lo, 0.0), max(hi, 0.0)
        if self.percent:
            lo, hi = min(lo, 1.0), min(hi, 1.0)
        return lo, hi

    # -- order --------------------------------------------------------------------------------------
    def score(self, value: float) -> float:
        """``value`` signed so that larger is better."""
        return value if self.higher else -value

    def slack(self, reference: float, tolerance: float) -> float:
        """How much worse than ``reference`` counts as within ``tolerance``: absolute for metrics in [0, 1]
        (1 pp at 0.01), relative to the reference for the others (1 % of the input model's MSE at 0.01)."""
        return tolerance if self.percent else tolerance * abs(reference)

    def within(self, value: float, reference: float, tolerance: float) -> bool:
        return self.score(value) >= self.score(reference) - self.slack(reference, tolerance)

    def tolerance_text(self, tolerance: float) -> str:
        if self.percent:
            return f"{100 * tolerance:.1f} pp"
        return f"{100 * tolerance:.1f} % (relative)"


ACCURACY = Metric()

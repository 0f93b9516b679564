"""How sure a report may be: intervals for accuracies and for paired differences of two models.

* :func:`wilson` — 95 % Wilson score interval of one accuracy, k correct out of n test images.
* :func:`paired` — two models on the SAME test images: the accuracy difference a − b, its 95 % interval
  from a paired bootstrap over the images (deterministic: fixed seed) and McNemar's exact p-value
  (only the images where the models disagree count).
* :func:`over_seeds` — several seeds: a t-interval on the per-seed paired differences (wide with 3 seeds).
* :func:`verdict` — the words a report uses: "no significant difference" when the interval covers zero.

Per-image correctness travels in records as :func:`pack` / :func:`unpack` (a bit string, base64).
Pure Python + numpy: no scipy.
"""

from __future__ import annotations

import base64
import math
import statistics
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

Z95 = 1.959963984540054
# two-sided 95 % quantiles of Student's t for 1..30 degrees of freedom (beyond: the normal quantile)
T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
       2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of the proportion k / n (default 95 %); (0, 1) when n == 0."""
    if n <= 0:
        return (0.0, 1.0)
    if not 0 <= k <= n:
        raise ValueError(f"k must be in [0, n], got k={k}, n={n}")
    p = k / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def mcnemar_p(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value: b images only model A got right, c only model B."""
    m = b + c
    if m == 0:
        return 1.0
    k = min(b, c)
    # integer division first: 2.0 ** m overflows a float beyond 1,023 discordant images
    tail = Fraction(sum(math.comb(m, i) for i in range(k + 1)), 2 ** m)
    return min(1.0, float(2 * tail))


@dataclass
class Difference:
    """a − b (accuracy points as fractions) with its 95 % interval; ``how`` names the method."""

    diff: float
    lo: float
    hi: float
    how: str
    p: float | None = None  # McNemar's exact p (one seed)
    n: int = 0  # test images
    seeds: int = 1

    @property
    def significant(self) -> bool:
        return self.lo > 0.0 or self.hi < 0.0

    def as_dict(self) -> dict:
        return {"diff": self.diff, "lo": self.lo, "hi": self.hi, "how": self.how, "p": self.p, "n": self.n,
                "seeds": self.seeds, "significant": self.significant}


def _check_pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired comparison needs two 1-D correctness vectors of one length, got {a.shape} and {b.shape}")
    return a, b


def paired(a, b, *, resamples: int = 4000, seed: int = 0) -> Difference:
    """Accuracy of A minus accuracy of B on the same images (bool correctness vectors), paired bootstrap.

    Resampling n images with replacement only moves the counts of the three kinds of image (only A right,
    only B right, both equal), so the bootstrap draws those counts from a multinomial: exact and fast.
    """
    a, b = _check_pair(a, b)
    n = a.size
    if n == 0:
        return Difference(0.0, -1.0, 1.0, "paired bootstrap", 1.0, 0)
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, [only_a / n, only_b / n, 1 - (only_a + only_b) / n], size=resamples)
    diffs = (counts[:, 0] - counts[:, 1]) / n
    lo, hi = np.quantile(diffs, [0.025, 0.975])
    return Difference((only_a - only_b) / n, float(lo), float(hi), "paired bootstrap over test images",
                      mcnemar_p(only_a, only_b), n)


def t_interval(values: list[float]) -> tuple[float, float, float]:
    """(mean, lo, hi): 95 % t-interval of the mean of ``values`` (at least 2)."""
    if len(values) < 2:
        raise ValueError("a t-interval needs at least two values")
    mean = statistics.fmean(values)
    df = len(values) - 1
    t = T95[df - 1] if df <= len(T95) else Z95
    half = t * statistics.stdev(values) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def over_seeds(pairs: list[tuple], *, resamples: int = 4000, seed: int = 0) -> Difference:
    """Paired differences over seeds: ``pairs`` of (correct_a, correct_b), one per seed, on the same images.

    One seed: :func:`paired`. Several: the seed-mean difference with the wider of two 95 % intervals — a
    paired bootstrap over the test images (the same images resampled for every seed: test-set noise) and
    a t-interval on the per-seed differences (training noise; wide with 3 seeds).
    """
    if not pairs:
        raise ValueError("over_seeds needs at least one (a, b) pair")
    if len(pairs) == 1:
        return paired(*pairs[0], resamples=resamples, seed=seed)
    checked = [_check_pair(a, b) for a, b in pairs]
    if len({a.size for a, _ in checked}) != 1:
        raise ValueError("every seed must be measured on the same test images")
    per_image = np.mean([a.astype(np.int8) - b.astype(np.int8) for a, b in checked], axis=0)  # in [-1, 1]
    n = per_image.size
    values, counts = np.unique(per_image, return_counts=True)
    draws = np.random.default_rng(seed).multinomial(n, counts / n, size=resamples)
    b_lo, b_hi = np.quantile(draws @ values / n, [0.025, 0.975])
    mean, t_lo, t_hi = t_interval([float(a.mean() - b.mean()) for a, b in checked])
    return Difference(mean, float(min(b_lo, t_lo)), float(max(b_hi, t_hi)),
                      f"{len(pairs)} seeds: paired bootstrap over test images and t-interval over seeds, the wider",
                      None, n, len(pairs))


def accuracy_interval(corrects: list) -> tuple[float, float, float]:
    """(mean, lo, hi) test accuracy over seeds (bool vectors on the same images): the Wilson interval of the
    mean count, widened by the t-interval over seeds when there are several."""
    accs = [float(np.mean(c)) for c in corrects]
    n = int(np.asarray(corrects[0]).size)
    mean = statistics.fmean(accs)
    lo, hi = wilson(round(mean * n), n)
    if len(accs) > 1:
        _, t_lo, t_hi = t_interval(accs)
        lo, hi = min(lo, t_lo), max(hi, t_hi)
    return mean, max(0.0, lo), min(1.0, hi)


def verdict(d: Difference, a: str, b: str) -> str:
    """One sentence: which is better, or "no significant difference", with the interval in points."""
    text = f"{100 * d.diff:+.2f} pp (95 % CI {100 * d.lo:+.2f} to {100 * d.hi:+.2f}; {d.how}"
    text += f", McNemar p = {d.p:.3g})" if d.p is not None else ")"
    if not d.significant:
        return f"no significant difference between {a} and {b}: {text}"
    better, worse = (a, b) if d.diff > 0 else (b, a)
    return f"{better} is better than {worse}: {text}"


def fmt_acc(k: int, n: int) -> str:
    """``97.25 % [96.91, 97.56]``: accuracy with its Wilson 95 % interval."""
    lo, hi = wilson(k, n)
    return f"{100 * k / n:.2f} % [{100 * lo:.2f}, {100 * hi:.2f}]" if n else "–"


# -- per-image correctness in a record ---------------------------------------------------------------

def pack(correct) -> dict:
    """A bool vector as ``{"n": n, "bits": base64 of the packed bits}`` (JSON-able, n/8 bytes)."""
    correct = np.asarray(correct, dtype=bool).ravel()
    return {"n": int(correct.size), "bits": base64.b64encode(np.packbits(correct).tobytes()).decode("ascii")}


def unpack(packed: dict) -> np.ndarray:
    """The bool vector of :func:`pack`."""
    raw = np.frombuffer(base64.b64decode(packed["bits"]), dtype=np.uint8)
    return np.unpackbits(raw)[: int(packed["n"])].astype(bool)

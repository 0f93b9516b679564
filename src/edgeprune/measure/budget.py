"""Budgets in the user's units, parsed and checked before any work starts.

    parse("latency<=2.5ms")      # ONNX Runtime latency, batch 1 (FP32)
    parse("latency<=40ms@b32")   # ... at batch 32
    parse("latency<=2ms@executorch")   # latency in ExecuTorch (XNNPACK) instead of ONNX Runtime
    parse("latency<=3ms@openvino")     # latency in OpenVINO (CPU plugin; @ov for short)
    parse("latency<=3ms@litert")       # latency in LiteRT, formerly TensorFlow Lite (its interpreter; @tflite too)
    parse("latency<=8ms@pi5")    # timed on a device saved with `edgeprune devices add pi5 ...` (edgeprune.devices)
    parse("size<=1.5MB")         # bytes of the exported ONNX file (FP32); "size<=400KB@int8": INT8 file
    parse("size<=400KB@sparse")  # bytes of the compressed sparse artifact (.epz: zeros cost little)
    parse("macs<=40%")           # MACs per image, relative to the input model (or absolute: "macs<=20M")
    parse("params<=100k")        # parameter count (or relative: "params<=50%")
    parse("latency<=50%")        # every kind may be relative to the input model's measured value
    parse(0.8) / parse("sparsity=0.8")   # a sparsity, as always: returned as a plain float

A typed budget is a :class:`Budget`: a ``float`` (its limit, in ms, bytes, a count or a fraction of the
input model's value) that also knows its kind. It formats (``f"{b:g}"``, ``str(b)``) as the text the user
gave, so ids and reports show ``latency<=2.5ms`` rather than ``2.5``; JSON stores the number.
"""

from __future__ import annotations

import difflib
import re

from edgeprune.errors import ConfigError

KINDS = ("sparsity", "latency", "size", "macs", "params")
ALLOWED = ("a sparsity in [0, 1) (0.8 or sparsity=0.8), latency<=2.5ms (optionally @b32, @executorch, @openvino, @litert, @DEVICE), size<=1.5MB "
           "(B/KB/MB/GB, optionally @int8, @sparse), macs<=20M, params<=100k, or any of them relative to the input "
           "model (latency<=50%)")
_SIZE_UNITS = {"b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "kib": 2**10, "mib": 2**20, "gib": 2**30}
_TIME_UNITS = {"ms": 1.0, "s": 1e3, "us": 1e-3}
_COUNT_UNITS = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "b": 1e9}
_PATTERN = re.compile(r"^(latency|size|macs|params)\s*<=?\s*([0-9]*\.?[0-9]+(?:e[+-]?\d+)?)\s*([a-z%]*)\s*"
                      r"((?:@\s*[a-z0-9_-]+\s*)*)$")
RUNTIMES = {"onnxruntime": "onnxruntime", "ort": "onnxruntime", "executorch": "executorch", "et": "executorch",
            "openvino": "openvino", "ov": "openvino", "litert": "litert", "tflite": "litert"}
RECORD_PREFIX = {"onnxruntime": "ort", "executorch": "et", "openvino": "ov", "litert": "lrt"}  # ort_latency_ms_b1, et_...
SUFFIXES = ("host", "int8", "fp32", "sparse", *RUNTIMES)  # words a budget's @ already means: no device is named so
# what each kind measures, as a record field
QUANTITY = {"sparsity": "sparsity", "latency": "ort_latency_ms", "size": "onnx_bytes", "macs": "macs",
            "params": "params"}


class Budget(float):
    """A budget: its float value is the limit; ``kind``, ``relative`` (a fraction of the input model's
    value), ``batch``, ``runtime`` and ``device`` (latency; None: this machine), ``precision`` ("fp32" or "int8", size), ``sparse`` (size: of
    the compressed sparse artifact, not the ONNX file) and ``text`` say what it limits."""

    def __new__(cls, limit: float, kind: str, *, relative: bool = False, batch: int = 1, precision: str = "fp32",
                runtime: str = "onnxruntime", sparse: bool = False, device: str | None = None, text: str | None = None):
        obj = super().__new__(cls, limit)
        obj.kind, obj.relative, obj.batch, obj.precision = kind, relative, int(batch), precision
        obj.runtime, obj.sparse, obj.device = runtime, bool(sparse), device
        obj.text = text or f"{kind}<={float(limit):g}"
        return obj

    def __getnewargs_ex__(self):
        return (float(self), self.kind), {"relative": self.relative, "batch": self.batch, "precision": self.precision,
                                          "runtime": self.runtime, "sparse": self.sparse, "device": self.device,
                                          "text": self.text}

    def __format__(self, spec: str) -> str:
        """``f"{b:g}"`` gives a file-name-safe tag (``macs40pct``, ``latency2.5ms-b32``); ``f"{b}"`` the text."""
        if spec == "":
            return self.text
        if spec == "g":
            return self.text.replace("<=", "").replace("<", "").replace("%", "pct").replace("@", "-")
        return float.__format__(self, spec)

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Budget({self.text!r})"

    def _key(self):
        return (self.kind, float(self), self.relative, self.batch, self.precision, self.runtime, self.sparse, self.device)

    def __eq__(self, other):  # two budgets: same kind and limit; a plain number (a run's JSON): same limit
        return self._key() == other._key() if isinstance(other, Budget) else float.__eq__(self, other)

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        return float.__hash__(self)

    @property
    def quantity(self) -> str:
        """The record field this budget limits (``ort_latency_ms_b32`` for a batch-32 latency)."""
        name = QUANTITY[self.kind]
        if self.kind == "latency":
            name = f"{RECORD_PREFIX[self.runtime]}_latency_ms_b{self.batch}"
            return f"{name}_{self.device}" if self.device else name
        if self.kind == "size" and self.sparse:
            name = "epz_bytes"
        return f"{name}_int8" if self.kind == "size" and self.precision == "int8" else name

    @property
    def key(self) -> str:
        """What a method must be able to change to meet this budget: the kind, ``size@sparse`` for the artifact."""
        return "size@sparse" if self.kind == "size" and self.sparse else self.kind

    def limit(self, dense_value: float) -> float:
        """The absolute limit, given the input model's value of the quantity."""
        return float(self) * dense_value if self.relative else float(self)

    def describe(self, value: float) -> str:
        """``value`` of the quantity in the budget's units (for messages)."""
        if self.kind == "latency":
            return f"{value:.3g} ms"
        if self.kind == "size":
            return f"{value / 1e6:.4g} MB ({int(value):,} bytes)"
        return f"{value:,.0f}"


def parse(value) -> float:
    """A plain float (sparsity) or a :class:`Budget`; ConfigError naming the value and what is allowed."""
    if isinstance(value, Budget):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _sparsity(float(value), value)
    if not isinstance(value, str):
        raise ConfigError(f"budget {value!r} is not allowed; allowed: {ALLOWED}")
    shown = value.strip().replace(" ", "")
    text = shown.lower()
    if text.startswith("sparsity"):
        number = text[len("sparsity"):].lstrip("<=")
        return _sparsity(_number(number, value), value)
    try:
        return _sparsity(float(text), value)
    except ValueError:
        pass
    match = _PATTERN.match(text)
    if match is None:
        raise ConfigError(f"budget {value!r} is not allowed; allowed: {ALLOWED}")
    kind, number, unit, suffixes = match.groups()
    number = float(number)
    batch, precision, runtime, sparse, device = 1, "fp32", "onnxruntime", False, None
    for suffix in (t.strip() for t in suffixes.split("@") if t.strip()):
        if re.fullmatch(r"b\d+", suffix) and kind == "latency":
            batch = int(suffix[1:])
        elif suffix in RUNTIMES and kind == "latency":
            runtime = RUNTIMES[suffix]
        elif suffix in ("int8", "fp32") and kind == "size":
            precision = suffix
        elif suffix == "sparse" and kind == "size":
            sparse = True
        elif suffix == "host" and kind == "latency":
            pass  # this machine: the default
        elif kind == "latency" and _misspelt_runtime(suffix):
            raise ConfigError(f"budget {value!r}: @{suffix} is not a runtime; did you mean @{_misspelt_runtime(suffix)}? "
                              f"(runtimes: {', '.join(RUNTIMES)})")
        elif kind == "latency" and device is None and re.fullmatch(r"[a-z][a-z0-9_-]*", suffix) and suffix not in SUFFIXES:
            device = suffix  # a saved device's name: checked when the request is resolved (edgeprune.devices)
        else:
            raise ConfigError(f"budget {value!r}: @{suffix} does not apply to {kind}; allowed: {ALLOWED}")
    if unit == "%":
        limit, relative = number / 100.0, True
    elif kind == "latency":
        if unit not in _TIME_UNITS:
            raise ConfigError(f"budget {value!r}: latency needs a unit (ms, s or us); allowed: {ALLOWED}")
        limit, relative = number * _TIME_UNITS[unit], False
    elif kind == "size":
        if unit not in _SIZE_UNITS:
            raise ConfigError(f"budget {value!r}: size needs a unit (B, KB, MB, GB, KiB, MiB); allowed: {ALLOWED}")
        limit, relative = number * _SIZE_UNITS[unit], False
    elif unit in _COUNT_UNITS:
        limit, relative = number * _COUNT_UNITS[unit], False
    else:
        raise ConfigError(f"budget {value!r}: unknown unit {unit!r} for {kind}; allowed: {ALLOWED}")
    if limit <= 0 or (relative and limit > 1.0) or batch <= 0:
        raise ConfigError(f"budget {value!r} must be a positive limit (a percentage at most 100%); allowed: {ALLOWED}")
    return Budget(limit, kind, relative=relative, batch=batch, precision=precision, runtime=runtime, sparse=sparse,
                  device=device, text=shown)


def _misspelt_runtime(suffix: str) -> str | None:
    """The runtime ``suffix`` almost spells (``openvinox``: ``openvino``), read as a typo rather than a device's name."""
    close = difflib.get_close_matches(suffix, [name for name in RUNTIMES if len(name) > 3], n=1, cutoff=0.9)
    return close[0] if close and suffix not in RUNTIMES else None


def _number(text: str, original) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"budget {original!r} is not allowed; allowed: {ALLOWED}") from None


def _sparsity(number: float, original) -> float:
    if not 0.0 <= number < 1.0:
        raise ConfigError(f"budget {original!r}: a sparsity must be in [0, 1); allowed: {ALLOWED}")
    return number


def kind_of(budget) -> str:
    """"sparsity" for a plain number, else the Budget's kind."""
    return budget.kind if isinstance(budget, Budget) else "sparsity"


__all__ = ["Budget", "parse", "kind_of", "KINDS", "ALLOWED"]

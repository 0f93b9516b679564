"""Budgets in the user's units: parsed into typed budgets up front; a malformed one is one line naming it
and what is allowed."""

import json
import pickle

import pytest

import edgeprune.methods.catalog  # noqa: F401  (fills the method registry)
from edgeprune.errors import ConfigError
from edgeprune.measure.budget import Budget, parse


@pytest.mark.parametrize("text,kind,limit,relative,batch,quantity", [
    ("latency<=2.5ms", "latency", 2.5, False, 1, "ort_latency_ms_b1"),
    ("latency<=40ms@b32", "latency", 40.0, False, 32, "ort_latency_ms_b32"),
    ("latency<=50%", "latency", 0.5, True, 1, "ort_latency_ms_b1"),
    ("size<=1.5MB", "size", 1.5e6, False, 1, "onnx_bytes"),
    ("size <= 400 KiB @int8", "size", 400 * 1024, False, 1, "onnx_bytes_int8"),
    ("macs<=40%", "macs", 0.4, True, 1, "macs"),
    ("macs<=20M", "macs", 20e6, False, 1, "macs"),
    ("params<=100k", "params", 1e5, False, 1, "params"),
])
def test_typed_budgets(text, kind, limit, relative, batch, quantity):
    b = parse(text)
    assert isinstance(b, Budget) and (b.kind, b.relative, b.batch, b.quantity) == (kind, relative, batch, quantity)
    assert float(b) == pytest.approx(limit)
    assert f"{b}" == text.replace(" ", "") and "<" not in f"{b:g}" and "%" not in f"{b:g}"  # ids are file names
    assert json.loads(json.dumps({"budget": b}))["budget"] == pytest.approx(limit)
    assert pickle.loads(pickle.dumps(b)) == b


@pytest.mark.parametrize("value", [0.8, "0.8", "sparsity=0.8"])
def test_a_sparsity_stays_a_plain_number(value):
    b = parse(value)
    assert type(b) is float and b == 0.8


@pytest.mark.parametrize("value,needle", [
    ("latency<=2.5", "needs a unit"), ("size<=1.5", "needs a unit"), ("size<=1MB@b32", "@b32"),
    ("latency<=2ms@int8", "@int8"), ("macs<=140%", "at most 100%"), ("speed>=2x", "speed>=2x"),
    (1.5, "[0, 1)"), ("sparsity=1.2", "[0, 1)"), (None, "None"), ("params<=0", "positive"),
])
def test_malformed_budgets_are_one_line_naming_what_is_allowed(value, needle):
    with pytest.raises(ConfigError) as exc:
        parse(value)
    message = str(exc.value)
    assert needle in message and "allowed:" in message and "latency<=2.5ms" in message and "\n" not in message


def test_a_run_directory_tells_typed_budgets_of_the_same_number_apart(tmp_path):
    from edgeprune.methods.base import get_method
    from edgeprune.runs.sweep import check_run_dir, sweep_identity
    from edgeprune.utils.io import write_json

    m = get_method("mix_and_match", granularity="channel")
    write_json(tmp_path / "config.json", sweep_identity(m, [m.check_budget("macs<=50%")], [0], None, True))
    check_run_dir(tmp_path, sweep_identity(m, [m.check_budget("macs<=50%")], [0], None, True))
    with pytest.raises(ConfigError, match="budgets"):
        check_run_dir(tmp_path, sweep_identity(m, [m.check_budget("latency<=50%")], [0], None, True))


@pytest.mark.parametrize("text,quantity,runtime,batch", [
    ("latency<=2ms@executorch", "et_latency_ms_b1", "executorch", 1),
    ("latency<=2ms@b32@et", "et_latency_ms_b32", "executorch", 32),
    ("latency<=2ms@ort", "ort_latency_ms_b1", "onnxruntime", 1),
])
def test_a_latency_budget_names_its_runtime(text, quantity, runtime, batch):
    b = parse(text)
    assert (b.quantity, b.runtime, b.batch, str(b)) == (quantity, runtime, batch, text)
    assert pickle.loads(pickle.dumps(b)) == b and (b == parse("latency<=2ms")) == (runtime == "onnxruntime")


def test_a_runtime_only_applies_to_latency():
    with pytest.raises(ConfigError, match="@executorch does not apply to size"):
        parse("size<=1MB@executorch")

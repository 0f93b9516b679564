"""Malformed recipes are refused with a one-line ConfigError naming the field (hypothesis)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from edgeprune.errors import ConfigError
from edgeprune.methods.mix_and_match import SearchConfig

FIELDS = list(SearchConfig.model_fields)
junk = st.one_of(st.text(max_size=5), st.integers(-5, 0), st.floats(allow_nan=True), st.lists(st.integers(), max_size=2), st.none())


@settings(max_examples=60, deadline=None)
@given(key=st.text(min_size=1, max_size=12).filter(lambda k: k not in FIELDS))
def test_unknown_keys_are_named(key):
    try:
        SearchConfig.build({"model": "lenet5", key: 1})
    except ConfigError as exc:
        assert repr(key) in str(exc) and "\n" not in str(exc)
    else:
        raise AssertionError("accepted an unknown key")


@settings(max_examples=80, deadline=None)
@given(field=st.sampled_from(["seeds", "epochs", "calib_batches", "target_sparsity", "criteria", "ranges", "kd"]), value=junk)
def test_wrong_values_name_the_field_or_are_valid(field, value):
    try:
        cfg = SearchConfig.build({"model": "lenet5", field: value})
    except ConfigError as exc:
        assert field in str(exc) and "\n" not in str(exc)
    else:  # accepted only when it is a valid value of that field
        assert getattr(cfg, field) is not None or value is None

"""``Layer`` validation, which every traced record goes through, checked against its stated rules.

``Layer.__post_init__`` takes a fast test for the common values and the field-by-field checks
otherwise; whatever path runs, a record must be accepted exactly when the rules written
below (from the ``Layer`` docstring) accept it, with values drawn to hit both paths
(bools, lists, floats, NaN, negatives, None).
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings, strategies as st

from dnnergy.workload.layer import Layer, OpKind

LETTERS = ("N", "C", "H", "W", "M", "R", "S", "E", "F", "groups")
COUNTS = ("macs", "ops", "weights", "biases", "ifmap", "ofmap")
PAIRS = {"stride": 1, "padding": 0, "dilation": 1}  # pair -> least element
BITS = ("w_bits", "i_bits", "o_bits")
DENSITIES = ("w_density", "i_density", "o_density", "mac_density", "mult_density")

ints = st.one_of(st.integers(-2, 6), st.booleans(), st.just(2.0), st.just(float("nan")))


def _accepted(fields: dict) -> bool:
    """The rules of a valid record, written from the docstring, independent of the implementation."""
    def whole(v):
        return isinstance(v, int)

    if not all(whole(fields[k]) and fields[k] >= 1 for k in LETTERS):
        return False
    if not all(whole(fields[k]) and fields[k] >= 0 for k in COUNTS):
        return False
    for pair, least in PAIRS.items():
        value = fields[pair]
        if len(value) != 2 or not all(whole(v) and v >= least for v in value):
            return False
    if fields["kind"] in (OpKind.CONV, OpKind.FC, OpKind.MATMUL) and (fields["C"] % fields["groups"] or fields["M"] % fields["groups"]):
        return False
    if not all(fields[k] is None or (whole(fields[k]) and fields[k] >= 1) for k in BITS):
        return False
    coded = fields["w_coded_bits"]
    if coded is not None and (isinstance(coded, bool) or not whole(coded) or coded < 0):
        return False
    return all(not math.isnan(fields[k]) and 0.0 <= fields[k] <= 1.0 for k in DENSITIES)


@st.composite
def records(draw) -> dict:
    """Field values, each usually valid (so that one bad field at a time is common)."""
    def maybe(valid, invalid):
        return draw(st.one_of(valid, invalid) if draw(st.integers(0, 9)) == 0 else valid)

    fields = {"name": "l", "op": "aten.x", "kind": draw(st.sampled_from(list(OpKind)))}
    for letter in LETTERS:
        fields[letter] = maybe(st.integers(1, 4), ints)
    for count in COUNTS:
        fields[count] = maybe(st.integers(0, 100), ints)
    for pair, least in PAIRS.items():
        pairs = st.tuples(st.integers(least, 3), st.integers(least, 3))
        bad = st.one_of(st.lists(ints, min_size=1, max_size=3), st.lists(st.integers(least, 3), min_size=2, max_size=2),
                        st.tuples(ints, ints))
        fields[pair] = maybe(pairs, bad)
    for bits in BITS:
        fields[bits] = maybe(st.one_of(st.none(), st.integers(1, 16)), ints)
    fields["w_coded_bits"] = maybe(st.one_of(st.none(), st.integers(0, 1000)), ints)
    for density in DENSITIES:
        fields[density] = maybe(st.just(1.0), st.one_of(st.floats(-0.5, 1.5), st.just(float("nan")), st.booleans(), st.integers(0, 1)))
    return fields


@settings(max_examples=400, deadline=None)
@given(fields=records())
def test_a_record_is_accepted_exactly_when_the_rules_accept_it(fields):
    if _accepted(fields):
        layer = Layer(**fields)
        assert isinstance(layer.kind, OpKind) and all(getattr(layer, k) is v for k, v in fields.items() if k != "kind")
    else:
        with pytest.raises(ValueError, match="Layer 'l'"):
            Layer(**fields)


def test_the_first_bad_field_in_rule_order_is_named():
    # a bad letter is reported before a bad density, whichever check path ran
    with pytest.raises(ValueError, match="C must be a positive int"):
        Layer(name="l", op="aten.x", kind="conv", C=0, w_density=2.0)
    with pytest.raises(ValueError, match="w_density must be in"):
        Layer(name="l", op="aten.x", kind="conv", C=True, w_density=2.0)  # a bool letter passes (it is an int), as before
    with pytest.raises(ValueError, match="groups must divide"):
        Layer(name="l", op="aten.x", kind="conv", C=3, M=4, groups=2, w_bits=0)

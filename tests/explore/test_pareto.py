"""Pareto fronts against a brute-force dominance check."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dnnergy.errors import UserInputError
from dnnergy.explore import dominates, pareto_front


def test_hand_made_points():
    points = [
        {"energy": 1.0, "accuracy": 0.80},  # front: cheapest
        {"energy": 2.0, "accuracy": 0.90},  # front: most accurate
        {"energy": 3.0, "accuracy": 0.85},  # dominated by the second
        {"energy": 2.0, "accuracy": 0.90},  # duplicate of the second: kept
        {"energy": 1.5, "accuracy": 0.80},  # dominated by the first
    ]
    assert pareto_front(points) == [points[0], points[1], points[3]]
    assert dominates(points[1], points[2]) and not dominates(points[1], points[3])


def test_other_objectives_and_attributes():
    class P:
        def __init__(self, macs, latency, accuracy):
            self.macs, self.latency_s, self.accuracy = macs, latency, accuracy

    a, b, c = P(10, 1.0, 0.9), P(5, 2.0, 0.9), P(10, 2.0, 0.8)
    assert pareto_front([a, b, c], minimize=("macs", "latency_s"), maximize=("accuracy",)) == [a, b]


@pytest.mark.parametrize(
    "points, kwargs, match",
    [
        ([{"energy": 1.0}], {}, "no field 'accuracy'"),
        ([{"energy": float("nan"), "accuracy": 1.0}], {}, "NaN"),
        ([], {"minimize": "energy"}, "sequences of field names"),
        ([], {"minimize": (), "maximize": ()}, "at least one objective"),
    ],
)
def test_invalid(points, kwargs, match):
    with pytest.raises(UserInputError, match=match):
        pareto_front(points, **kwargs)


coords = st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(0, 6))


@settings(max_examples=200, deadline=None)
@given(st.lists(coords, max_size=25))
def test_front_equals_brute_force_dominance(raw):
    points = [{"energy": e, "macs": m, "accuracy": a} for e, m, a in raw]

    def beats(p, q):  # p dominates q: no worse everywhere, better somewhere
        no_worse = p["energy"] <= q["energy"] and p["macs"] <= q["macs"] and p["accuracy"] >= q["accuracy"]
        better = p["energy"] < q["energy"] or p["macs"] < q["macs"] or p["accuracy"] > q["accuracy"]
        return no_worse and better

    expected = [q for q in points if not any(beats(p, q) for p in points)]
    assert pareto_front(points, minimize=("energy", "macs"), maximize=("accuracy",)) == expected

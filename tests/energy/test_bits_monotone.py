"""Property: the estimate never rises when a bitwidth or a density falls (every preset, every DRAM code).

Fewer bits move fewer bits through every memory level and make the arithmetic no more
expensive; fewer non-zeros gate more MACs and code into fewer DRAM bits. A counter-example
would mean some pricing step rewards wider or denser data.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dnnergy import estimate
from dnnergy.energy import code_ratio, get_code, list_codes
from dnnergy.hardware import load_hardware
from dnnergy.workload import Layer, TensorStats, Workload, formulas

CONV = Layer("conv", op="aten.convolution", **formulas.conv([1, 4, 8, 8], [6, 4, 3, 3], [1, 6, 6, 6], 1, 0, 1, 1))
POOL = Layer("pool", op="aten.max_pool2d", **formulas.pool([1, 6, 6, 6], [1, 6, 3, 3], 2, 2, 0))
FC = Layer("fc", op="aten.mm", **formulas.fc(1, 54, 10))
SETUPS = [("eyeriss", "row_stationary"), ("horowitz45", "weights_once")]
KNOBS = ("w_bits", "i_bits", "o_bits", "w_density", "i_density", "o_density")

bits = st.integers(1, 32)
density = st.floats(0.0, 1.0)
layer_fields = st.fixed_dictionaries({"w_bits": bits, "i_bits": bits, "o_bits": bits,
                                      "w_density": density, "i_density": density, "o_density": density})


def total(fields, hardware, dataflow, coding):
    layers = tuple(layer.replace(**fields) for layer in (CONV, POOL, FC))
    return estimate(Workload(layers, "toy"), hardware, dataflow, coding=coding).total


@pytest.mark.parametrize("coding", list_codes())
@pytest.mark.parametrize(("preset", "dataflow"), SETUPS)
@settings(max_examples=100, deadline=None)
@given(fields=layer_fields, knob=st.sampled_from(KNOBS), fraction=st.floats(0.0, 1.0))
def test_estimate_never_rises_when_bits_or_density_fall(preset, dataflow, coding, fields, knob, fraction):
    hardware = load_hardware(preset)
    high = fields[knob]
    low = max(1, int(high * fraction)) if knob.endswith("bits") else high * fraction
    lower = {**fields, knob: low}
    assert total(lower, hardware, dataflow, coding) <= total(fields, hardware, dataflow, coding) * (1 + 1e-9)


@pytest.mark.parametrize(("preset", "dataflow"), SETUPS)
def test_the_knobs_are_priced(preset, dataflow):
    # not vacuous: halving each knob alone lowers the estimate strictly, except the ofmap
    # density under weights_once (seed 002: output zeros gate nothing and reach no DRAM)
    dense = {"w_bits": 16, "i_bits": 16, "o_bits": 16, "w_density": 1.0, "i_density": 1.0, "o_density": 1.0}
    for knob in KNOBS:
        half = {**dense, knob: dense[knob] // 2 if knob.endswith("bits") else 0.5}
        lower, base = total(half, preset, dataflow, "rlc"), total(dense, preset, dataflow, "rlc")
        assert lower == base if (dataflow, knob) == ("weights_once", "o_density") else lower < base, knob


@st.composite
def measured(draw, numel):
    """Stats of a sparse tensor of ``numel`` values: i.i.d. zeros, or evenly spaced non-zeros (short runs only)."""
    x = np.zeros(numel, np.int64)
    if draw(st.booleans()):
        x[:: draw(st.integers(1, 40))] = 1
    else:
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        x[rng.random(numel) < draw(st.floats(0.0, 1.0))] = 1
    return TensorStats.of(x)


@pytest.mark.parametrize("coding", list_codes())
@pytest.mark.parametrize(("preset", "dataflow"), SETUPS)
@settings(max_examples=40, deadline=None)
@given(data=st.data(), fraction=st.floats(0.0, 1.0), datum=st.sampled_from("wio"))
def test_estimate_never_rises_when_a_measured_density_falls(preset, dataflow, coding, data, fraction, datum):
    # the density falls below the measured stats' (pruning after profiling): the stats are stale
    layer = FC.replace(w_stats=data.draw(measured(FC.weights)), i_stats=data.draw(measured(FC.ifmap)),
                       o_stats=data.draw(measured(FC.ofmap)))
    layer = layer.replace(w_density=layer.w_stats.density, i_density=layer.i_stats.density, o_density=layer.o_stats.density)
    field = f"{datum}_density"
    lower = layer.replace(**{field: getattr(layer, field) * fraction})
    hardware = load_hardware(preset)
    energy = [estimate(Workload((one,), "toy"), hardware, dataflow, coding=coding).total for one in (lower, layer)]
    assert energy[0] <= energy[1] * (1 + 1e-9)


@pytest.mark.parametrize("coding", list_codes())
@settings(max_examples=150, deadline=None)
@given(stats=measured(540), fraction=st.floats(0.0, 2.0), bits=st.integers(1, 32))
def test_the_dram_ratio_is_monotone_around_measured_stats(coding, stats, fraction, bits):
    # e.g. 20 non-zeros every 28th of 540 values code into 7 words (448 bits), fewer than the
    # expected 21.9 pairs of i.i.d. zeros at half the density: pruning must not raise the ratio
    code = get_code(coding)
    measured_ratio = code_ratio(code, 540, bits, stats.density, stats)
    density = min(1.0, stats.density * fraction)
    ratio = code_ratio(code, 540, bits, density, stats)
    assert ratio <= measured_ratio if density <= stats.density else ratio >= measured_ratio

"""The value objects of the workload: ``TensorStats``, ``Layer``, ``UnsupportedOp``, ``Workload``.

Each field the constructors validate gets a valid case and an invalid case with the
message checked; the ``Workload`` views are checked against sums computed here.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dnnergy.workload import MAC_KINDS, Datum, Layer, OpKind, TensorStats, UnsupportedOp, Workload


def conv_layer(**changes) -> Layer:
    """A 3x3 conv from 4 to 8 channels on a 6x6 map, padding 1: 1*8*4*9*6*6 = 10368 MACs."""
    fields = dict(
        name="conv1", kind=OpKind.CONV, op="aten.convolution", module="features.0",
        N=1, C=4, H=6, W=6, M=8, R=3, S=3, E=6, F=6, padding=(1, 1),
        macs=10368, weights=288, biases=8, ifmap=144, ofmap=288,
    )
    fields.update(changes)
    return Layer(**fields)


def small_workload() -> Workload:
    conv = conv_layer()
    relu = Layer(name="relu", kind=OpKind.ACTIVATION, op="aten.relu", N=1, C=8, H=6, W=6, M=8, E=6, F=6, ops=288, ifmap=288, ofmap=288)
    pool = Layer(name="pool", kind=OpKind.POOL, op="aten.mean", N=1, C=8, H=6, W=6, M=8, R=6, S=6, groups=8, ops=288, ifmap=288, ofmap=8)
    # fc: 8 -> 10, 1*8*10 = 80 MACs, 80 weights + 10 biases
    fc = Layer(name="fc", kind=OpKind.FC, op="aten.addmm", N=1, C=8, M=10, macs=80, weights=80, biases=10, ifmap=8, ofmap=10)
    # q @ k^T between activations: 2 heads of 3x4 @ 4x3 = 2*3*4*3 = 72 MACs; the 24-element k is not a parameter
    qk = Layer(name="qk", kind=OpKind.MATMUL, op="aten.bmm", N=3, C=8, M=6, groups=2, macs=72, weights=24, weight_is_param=False, ifmap=24, ofmap=18)
    return Workload(
        layers=(conv, relu, pool, fc, qk),
        name="tiny",
        input_shapes=((1, 4, 6, 6),),
        unsupported=(UnsupportedOp("aten._fft_r2c", 2, ("head",)), UnsupportedOp("aten.convolution (3-D convolution)", 1, ("c3",), 1000)),
        ignored=(("aten.view", 3),),
    )


# -- TensorStats -----------------------------------------------------------------------------

def test_tensor_stats_valid_and_density():
    stats = TensorStats(numel=10, nonzeros=4, zero_runs=((0, 2), (3, 2)), trailing_zeros=0)
    assert stats.density == 0.4  # 4 / 10
    assert TensorStats(numel=0, nonzeros=0).density == 1.0  # empty tensor counts as dense


def test_tensor_stats_rejects_negative_numel():
    with pytest.raises(ValueError, match="TensorStats.*numel"):
        TensorStats(numel=-1, nonzeros=0)


def test_tensor_stats_rejects_more_nonzeros_than_elements():
    with pytest.raises(ValueError, match="TensorStats.*nonzeros"):
        TensorStats(numel=3, nonzeros=4)


def test_tensor_stats_rejects_negative_nonzeros():
    with pytest.raises(ValueError, match="TensorStats.*nonzeros"):
        TensorStats(numel=3, nonzeros=-1)


# -- Layer ------------------------------------------------------------------------------------

def test_layer_valid_record_and_derived_views():
    layer = conv_layer()
    assert layer.kind is OpKind.CONV and layer.is_mac
    assert layer.params == 288 + 8  # weights + biases
    assert layer.nonzero_macs == 10368  # dense: 10368 * 1.0 * 1.0
    sparse = layer.replace(w_density=0.5, i_density=0.25)
    assert sparse.nonzero_macs == 10368 * 0.5 * 0.25  # = 1296
    assert layer.w_density == 1.0  # replace made a copy


def test_layer_kind_accepts_its_string_value():
    assert conv_layer(kind="fc").kind is OpKind.FC


def test_layer_rejects_unknown_kind():
    with pytest.raises(ValueError, match="not a valid OpKind"):
        conv_layer(kind="conv3d")


@pytest.mark.parametrize("letter", ["N", "C", "H", "W", "M", "R", "S", "E", "F", "groups"])
@pytest.mark.parametrize("bad", [0, -2, 2.0])
def test_layer_rejects_non_positive_or_non_int_letters(letter, bad):
    with pytest.raises(ValueError, match=rf"Layer 'conv1': {letter} must be a positive int"):
        conv_layer(**{letter: bad})


@pytest.mark.parametrize("count", ["macs", "ops", "weights", "biases", "ifmap", "ofmap"])
@pytest.mark.parametrize("bad", [-1, 1.5])
def test_layer_rejects_negative_or_non_int_counts(count, bad):
    with pytest.raises(ValueError, match=rf"Layer 'conv1': {count} must be a non-negative int"):
        conv_layer(**{count: bad})


@pytest.mark.parametrize("pair", ["stride", "padding", "dilation"])
def test_layer_rejects_pairs_of_the_wrong_length(pair):
    with pytest.raises(ValueError, match=rf"Layer 'conv1': {pair} must be a \(vertical, horizontal\) pair"):
        conv_layer(**{pair: (1, 1, 1)})


@pytest.mark.parametrize("pair", ["stride", "dilation"])
def test_layer_rejects_zero_stride_and_dilation(pair):
    # A stride or dilation of 0 has no meaning; the record must not exist.
    with pytest.raises(ValueError, match=rf"Layer 'conv1': {pair}"):
        conv_layer(**{pair: (0, 1)})


def test_layer_rejects_negative_padding():
    with pytest.raises(ValueError, match=r"Layer 'conv1': padding"):
        conv_layer(padding=(-1, 0))


def test_layer_groups_must_divide_channels_of_mac_layers():
    assert conv_layer(groups=4).groups == 4  # C=4, M=8: 4 divides both
    with pytest.raises(ValueError, match=r"groups must divide C and M \(C=4, M=8, groups=3\)"):
        conv_layer(groups=3)


def test_layer_groups_are_free_for_non_mac_layers():
    # pooling keeps groups=C by convention; only MAC kinds check divisibility
    pool = Layer(name="p", kind=OpKind.POOL, op="aten.avg_pool2d", C=6, M=6, groups=4)
    assert pool.groups == 4 and not pool.is_mac


@pytest.mark.parametrize("bits", ["w_bits", "i_bits", "o_bits"])
@pytest.mark.parametrize("bad", [0, -8, 8.0])
def test_layer_rejects_bad_bitwidths(bits, bad):
    with pytest.raises(ValueError, match=rf"Layer 'conv1': {bits} must be a positive int or None"):
        conv_layer(**{bits: bad})


@pytest.mark.parametrize("density", ["w_density", "i_density", "o_density", "mac_density"])
@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_layer_rejects_densities_outside_unit_interval(density, bad):
    with pytest.raises(ValueError, match=rf"Layer 'conv1': {density} must be in \[0, 1\]"):
        conv_layer(**{density: bad})


def test_layer_replace_validates_like_a_new_record():
    layer = conv_layer()
    assert layer.replace(w_bits=4).w_bits == 4
    with pytest.raises(ValueError, match="w_bits must be a positive int"):
        layer.replace(w_bits=0)
    with pytest.raises(TypeError):
        layer.replace(not_a_field=1)


def test_layer_is_immutable():
    layer = conv_layer()
    with pytest.raises(AttributeError):
        layer.macs = 1  # type: ignore[misc]


def test_layer_to_dict_is_plain_data():
    stats = TensorStats(numel=288, nonzeros=72)
    record = conv_layer(w_stats=stats).to_dict()
    assert record["kind"] == "conv"
    assert record["padding"] == [1, 1]
    assert record["w_stats"] == 0.25  # 72 / 288
    assert record["params"] == 296  # 288 weights + 8 biases
    json.dumps(record)  # no enums or dataclasses left


def test_activation_matmul_second_operand_is_not_a_parameter():
    qk = small_workload()["qk"]
    assert qk.weights == 24 and qk.params == 0


def test_enum_values():
    assert {k.value for k in MAC_KINDS} == {"conv", "fc", "matmul"}
    assert [d.value for d in Datum] == ["ifmap", "weight", "ofmap"]


@given(
    macs=st.integers(0, 10**12),
    w=st.floats(0, 1),
    i=st.floats(0, 1),
)
def test_nonzero_macs_never_exceed_macs(macs, w, i):
    layer = conv_layer(macs=macs, w_density=w, i_density=i)
    assert 0 <= layer.nonzero_macs <= macs


# -- Workload ---------------------------------------------------------------------------------

def test_workload_totals_and_views():
    wl = small_workload()
    assert len(wl) == 5 and [l.name for l in wl] == ["conv1", "relu", "pool", "fc", "qk"]
    assert wl.macs == 10368 + 80 + 72  # = 10520, only CONV/FC/MATMUL carry MACs
    assert wl.params == (288 + 8) + (80 + 10)  # qk's operand is an activation: 386
    assert wl.weights == 288 + 80
    assert wl.batch == 1
    assert [l.name for l in wl.mac_layers()] == ["conv1", "fc", "qk"]
    assert [l.name for l in wl.of_kind(OpKind.POOL, OpKind.ACTIVATION)] == ["relu", "pool"]
    assert wl.of_kind(OpKind.EMBEDDING) == ()
    assert wl["fc"].macs == 80 and wl[0].name == "conv1"
    with pytest.raises(KeyError, match="no layer 'nope'"):
        wl["nope"]


def test_workload_unsupported_share():
    wl = small_workload()
    assert wl.unsupported_macs == 1000
    share = wl.unsupported_share()
    assert share["aten._fft_r2c"] is None  # MACs unknown
    assert share["aten.convolution (3-D convolution)"] == pytest.approx(1000 / (10520 + 1000))


def test_workload_rejects_duplicate_layer_names():
    layer = conv_layer()
    with pytest.raises(ValueError, match=r"Workload 'dup': layer names must be unique \(repeated: \['conv1'\]\)"):
        Workload(layers=(layer, layer.replace(module="other")), name="dup")


def test_replace_layers_changes_only_named_layers():
    wl = small_workload()
    changed = wl.replace_layers({"conv1": {"w_density": 0.3, "w_bits": 4}, "fc": {"w_bits": 8}})
    assert changed["conv1"].w_density == 0.3 and changed["conv1"].w_bits == 4
    assert changed["fc"].w_bits == 8
    assert changed["relu"] is wl["relu"]
    assert wl["conv1"].w_density == 1.0  # the original is untouched
    assert changed.unsupported == wl.unsupported and changed.name == wl.name


def test_replace_layers_with_an_unknown_layer_raises_key_error():
    with pytest.raises(KeyError, match=r"no layers \['conv9'\]"):
        small_workload().replace_layers({"conv9": {"w_bits": 8}})


def test_replace_layers_validates_the_new_values():
    with pytest.raises(ValueError, match="w_density must be in"):
        small_workload().replace_layers({"conv1": {"w_density": 2.0}})


def test_with_all_applies_to_every_layer():
    assert {l.w_bits for l in small_workload().with_all(w_bits=8)} == {8}


def test_to_json_round_trips_through_json_loads():
    wl = small_workload().replace_layers({"conv1": {"w_stats": TensorStats(numel=288, nonzeros=144)}})
    data = json.loads(wl.to_json())
    assert data["name"] == "tiny" and data["source"] == "torch"
    assert data["input_shapes"] == [[1, 4, 6, 6]]
    assert data["totals"]["macs"] == 10520 and data["totals"]["params"] == 386 and data["totals"]["layers"] == 5
    assert data["totals"]["ifmap"] == 144 + 288 + 288 + 8 + 24
    assert [r["name"] for r in data["layers"]] == ["conv1", "relu", "pool", "fc", "qk"]
    assert data["layers"][0]["w_stats"] == 0.5
    assert data["layers"][4]["weight_is_param"] is False
    assert data["ignored"] == {"aten.view": 3}
    fft, conv3d = data["unsupported"]
    assert fft == {"op": "aten._fft_r2c", "count": 2, "modules": ["head"], "macs": None, "share_of_macs": None}
    assert conv3d["macs"] == 1000 and conv3d["share_of_macs"] == pytest.approx(1000 / 11520)
    # every layer field survives: rebuilding the layers from JSON gives the same records
    rebuilt = [
        Layer(**{k: tuple(v) if isinstance(v, list) else v for k, v in r.items() if k not in ("params", "w_stats")})
        for r in data["layers"]
    ]
    assert rebuilt == [l.replace(w_stats=None) for l in wl]


def test_to_frame_has_one_row_per_layer_and_every_field():
    frame = small_workload().to_frame()
    expected = {field.name for field in dataclasses.fields(Layer)} | {"params"}
    assert {"name", "kind", "N", "M", "macs", "w_density", "w_stats"} <= expected
    assert set(frame.columns) == expected
    assert len(frame) == 5
    assert frame["macs"].sum() == 10520
    assert list(frame["kind"]) == ["conv", "activation", "pool", "fc", "matmul"]


def test_empty_workload():
    wl = Workload(layers=())
    assert wl.macs == 0 and wl.params == 0 and wl.batch == 1 and wl.unsupported_share() == {}
    assert json.loads(wl.to_json())["layers"] == []

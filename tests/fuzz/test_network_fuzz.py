"""Fuzzing as part of the tests (issue 14): generated networks never break dnnergy.

Hypothesis draws tiny networks (``_networks.py``: 1-D/2-D/3-D and transposed convolutions
with random kernel, stride, padding including ``"same"``, dilation and groups; Linear;
BatchNorm, LayerNorm, GroupNorm; max, average and adaptive pools; scaled dot-product
attention with grouped-query heads and ``nn.MultiheadAttention``; einsums with size-1
summed indices; LSTM, GRU, RNN; residual and concat branches; 1 x 1 maps; batch > 1) and
checks (``_checks.py``):

* ``trace`` counts each block's MACs (and pooling ops) as the closed form written in
  ``_networks.py``; a block without a dataflow model (3-D convolution) is listed in
  ``Workload.unsupported`` with its MACs, never counted as 0;
* ``estimate`` on every hardware preset and every dataflow gives finite, non-negative
  energies whose ``by_level``/``by_datum``/``by_layer`` views sum to the total (rel 1e-9);
* the ONNX round trip (TorchScript exporter, ``from_onnx``) has the traced MACs per block
  and in all.

Only :class:`dnnergy.DnnergyError` may be raised on purpose, and none is expected here: the
networks are valid. ``derandomize=True`` makes CI draw the same examples every run.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from _checks import check_counts, check_estimates, check_onnx, export_onnx, trace_net
from _networks import FAMILIES



def fuzz(examples: int) -> settings:
    """Reproducible settings: the same ``examples`` networks every run, no deadline (the first trace imports torch's kernels)."""
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("family", FAMILIES)
def test_trace_counts_every_block_as_its_closed_form(family):
    @fuzz(10)
    @given(FAMILIES[family])
    def check(net):
        check_counts(net, trace_net(net))

    check()


@pytest.mark.parametrize("family", FAMILIES)
def test_estimate_on_every_preset_and_dataflow_is_finite_and_adds_up(family):
    @fuzz(4)
    @given(FAMILIES[family])
    def check(net):
        assert check_estimates(trace_net(net), repr(net)) >= 10  # 3 presets x 3 dataflows, and once without non-MAC layers

    check()


@pytest.mark.parametrize("family", FAMILIES)
def test_onnx_round_trip_has_the_traced_macs(family):
    @fuzz(6)
    @given(FAMILIES[family])
    def check(net):
        traced = trace_net(net)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "net.onnx"
            if net.onnx and export_onnx(net, path):
                check_estimates(check_onnx(net, traced, path), f"{net} (ONNX)")

    check()

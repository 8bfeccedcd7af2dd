"""k-means weight sharing: k-means against scikit-learn, centroid gradients in closed form, the stored form, UCNN counts."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import dnnergy
from dnnergy.compress import Transforms
from dnnergy.compress.artifact import build_architecture
from dnnergy.compress.sharing import (
    SharedWeights,
    kmeans_1d,
    linear_centroids,
    reuse_counts,
    share_weights,
)
from dnnergy.errors import UserInputError
from dnnergy.io import read_container

LINEAR = {"factory": "torch.nn:Linear", "kwargs": {"in_features": 30, "out_features": 12}}


def _linear(seed: int = 0, zero_below: float = 0.05) -> nn.Linear:
    torch.manual_seed(seed)
    model = build_architecture(LINEAR)
    with torch.no_grad():
        model.weight[model.weight.abs() < zero_below] = 0.0  # pruned weights
    return model


def test_linear_init_spans_the_range():
    assert linear_centroids(np.array([-1.0, 0.2, 3.0]), 3).tolist() == [-1.0, 1.0, 3.0]


@pytest.mark.parametrize("seed,clusters", [(0, 4), (1, 8), (2, 16)])
def test_kmeans_matches_scikit_learn_with_the_same_linear_init(seed, clusters):
    sklearn_cluster = pytest.importorskip("sklearn.cluster")
    values = np.random.default_rng(seed).normal(size=400)
    init = linear_centroids(values, clusters)
    ours, assign = kmeans_1d(values, init)
    peer = sklearn_cluster.KMeans(clusters, init=init.reshape(-1, 1), n_init=1, algorithm="lloyd", tol=0.0,
                                  max_iter=300).fit(values.reshape(-1, 1))
    np.testing.assert_allclose(ours, peer.cluster_centers_.ravel(), rtol=1e-10, atol=1e-12)
    assert assign.tolist() == peer.labels_.tolist()


def test_sharing_keeps_zeros_and_uses_at_most_the_codebook():
    model = _linear()
    zeros = model.weight.detach() == 0
    shared = share_weights(model, bits=2)["weight"]
    weight = model.weight.detach()
    assert torch.equal(weight == 0, zeros)
    assert len(torch.unique(weight[~zeros])) <= 4 == 1 << 2
    assert model.dnnergy_hints["w_density"] == pytest.approx(float((~zeros).float().mean()))
    assert model.dnnergy_hints["w_coded_bits"] == shared.stored_bits()["total"]


def test_centroid_gradient_is_the_sum_of_member_gradients():
    model = _linear(seed=3)
    shared = share_weights(model, bits=2)["weight"]
    x, y = torch.randn(16, 30), torch.randint(0, 12, (16,))
    # the raw gradient of the loss with respect to each weight, on a plain copy with the same values
    plain = nn.Linear(30, 12)
    plain.load_state_dict(model.state_dict())
    nn.functional.cross_entropy(plain(x), y).backward()
    raw = plain.weight.grad.reshape(-1)
    members = [shared.positions[shared.assign == k] for k in range(shared.clusters)]
    expected = torch.stack([raw[idx].sum() for idx in members])  # Han et al. Eq. 3, by hand
    before = shared.centroids.clone()

    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    nn.functional.cross_entropy(model(x), y).backward()
    flat = model.weight.grad.reshape(-1)
    for k, idx in enumerate(members):
        assert torch.allclose(flat[idx], expected[k].expand(len(idx)), atol=1e-6)  # each member sees the cluster sum
    assert torch.count_nonzero(flat[model.weight.detach().reshape(-1) == 0]) == 0  # pruned weights get nothing
    optimizer.step()
    Transforms.of(model).after_step(model)
    assert torch.allclose(shared.centroids, before - 0.1 * expected, atol=1e-6)
    assert torch.equal(model.weight.detach(), shared.values())


def test_fine_tuning_keeps_the_weights_in_the_codebook(tmp_path):
    from dnnergy.data import Dataset
    from dnnergy.train import FINE_TUNE, fine_tune

    model = _linear(seed=4)
    shared = share_weights(model, bits=3)["weight"]
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 30, generator=generator), torch.randint(0, 12, (64,), generator=generator)
    split = torch.utils.data.TensorDataset(x, y)
    data = Dataset("toy", split, split, split, (30,), 12)
    old = shared.centroids.clone()
    fine_tune(model, data, dataclasses.replace(FINE_TUNE, epochs=1, lr=1e-2), hooks=[Transforms.of(model)])
    assert not torch.equal(shared.centroids, old)  # the centroids learned
    assert torch.equal(model.weight.detach(), shared.values())  # every member is its centroid, zeros stay zero


def test_saved_file_holds_the_coded_streams_and_reloads_exactly(tmp_path):
    model = _linear(seed=5)
    share_weights(model, bits=3, width=3)
    first = dnnergy.save(tmp_path / "a.dnnergy", model)
    second = dnnergy.save(tmp_path / "b.dnnergy", model)
    assert first.read_bytes() == second.read_bytes()  # byte-for-byte deterministic
    tensors = read_container(first).tensors
    assert "state/weight" not in tensors and "state/bias" in tensors  # no dense copy of the shared weight
    assert tensors["transform.0.data"].dtype == torch.uint8
    loaded = dnnergy.load(first).model
    x = torch.randn(8, 30)
    assert torch.equal(loaded(x), model(x))
    data = bytearray(first.read_bytes())
    data[len(data) - 3] ^= 0x01
    (tmp_path / "bad.dnnergy").write_bytes(bytes(data))
    with pytest.raises(UserInputError, match="checksum"):
        dnnergy.load(tmp_path / "bad.dnnergy")


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from([0.0, 0.3, 0.9, 1.0]), st.integers(1, 4), st.integers(1, 5))
def test_state_round_trip_on_random_sparsities(seed, zero_fraction, bits, width):
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(7, 9, generator=generator)
    weight[torch.rand(7, 9, generator=generator) < zero_fraction] = 0
    positions = torch.nonzero(weight.reshape(-1), as_tuple=True)[0]
    if positions.numel() == 0:
        return
    clusters = min(1 << bits, positions.numel())
    assign = torch.randint(0, clusters, (positions.numel(),), generator=generator)
    shared = SharedWeights("w", torch.randn(clusters, generator=generator), assign, positions, shape=(7, 9), width=width)
    params, tensors = shared.state()
    again = SharedWeights.from_state("w", params, tensors)
    assert torch.equal(again.values(), shared.values())


def test_reuse_counts_distinct_values_per_filter():
    # rows (output channels): [a, b, a, a] and [b, b, 0, c] -> 2 + 2 multiplies instead of 4 + 3
    positions = torch.tensor([0, 1, 2, 3, 4, 5, 7])
    assign = torch.tensor([0, 1, 0, 0, 1, 1, 2])
    shared = SharedWeights("w", torch.tensor([0.5, -0.25, 1.0]), assign, positions, shape=(2, 4))
    reuse = reuse_counts(shared)
    assert (reuse.nonzeros, reuse.multiplies) == (7, 4)
    assert reuse.mult_density == pytest.approx(4 / 7)


def test_energy_prices_dram_weights_from_the_coded_bits_and_ucnn_reuse():
    from dnnergy.energy import estimate

    model = _linear(seed=6)
    shared = share_weights(model, bits=2, ucnn=True)["weight"]
    hints = model.dnnergy_hints
    assert hints["mult_density"] == pytest.approx(reuse_counts(shared).mult_density)
    workload = dnnergy.trace(model, (1, 30))
    plain = workload.replace_layers({workload.layers[0].name: {"w_coded_bits": None, "mult_density": 1.0}})
    coded = estimate(workload, "horowitz45", "weights_once", coding="none")
    dense = estimate(plain, "horowitz45", "weights_once", coding="none")

    def dram_weights(report):
        return sum(r.energy for r in report.records if r.datum == "weight" and r.level == "DRAM")

    # weights_once fetches every weight once: 360 weights x 32 bits raw; coded: exactly the stored bits
    assert dram_weights(coded) / dram_weights(dense) == pytest.approx(hints["w_coded_bits"] / (30 * 12 * 32))
    layer = workload.layers[0]
    mac = next(r.energy for r in coded.records if r.level == "MAC")
    from dnnergy.hardware import load_hardware

    cost = load_hardware("horowitz45").mac
    add, full = cost.op_energy(32), cost.energy(32, 32)
    executed = layer.macs * layer.w_density  # one sample, dense input
    assert mac == pytest.approx(executed * (add + (full - add) * hints["mult_density"]))


def test_bad_parameters_are_refused():
    with pytest.raises(UserInputError, match="bits must be a positive int"):
        share_weights(_linear(), bits=0)
    with pytest.raises(UserInputError, match="shape"):
        SharedWeights("w", torch.ones(2), torch.zeros(1), torch.tensor([0]), shape=(3,)).apply(torch.zeros(4))
    with pytest.raises(UserInputError, match="positions must be increasing"):
        SharedWeights("w", torch.ones(2), torch.zeros(2), torch.tensor([2, 1]), shape=(3,))

"""Deep Compression end to end on a digits MLP: sizes against hand accounting, the file, exact reload, the CLI."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import textwrap

import numpy as np
import pytest
import torch

import dnnergy
from dnnergy.cli import main as cli_main
from dnnergy.coding import huffman_decode
from dnnergy.compress import (
    CompressionContext,
    Transforms,
    check_params,
    get_method,
    run,
)
from dnnergy.compress.artifact import build_architecture
from dnnergy.compress.sharing import SharedWeights
from dnnergy.data import load_dataset
from dnnergy.errors import UserInputError
from dnnergy.io import read_container
from dnnergy.train import FINE_TUNE, train

FACTORY = """
import torch.nn as nn

def dc_mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 10))

dc_mlp.input_shape = (1, 1, 8, 8)
"""


@pytest.fixture(scope="module")
def factory(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dc_factory")
    (folder / "dc_models.py").write_text(textwrap.dedent(FACTORY))
    sys.path.insert(0, str(folder))
    yield "dc_models:dc_mlp"
    sys.path.remove(str(folder))
    sys.modules.pop("dc_models", None)


@pytest.fixture(scope="module")
def compressed(factory):
    data = load_dataset("digits")
    torch.manual_seed(0)
    model = build_architecture(factory)
    train(model, data, epochs=6, lr=3e-3, batch_size=32)
    context = CompressionContext.build(data, hardware="horowitz45", dataflow="weights_once", max_accuracy_drop=0.05,
                                       fine_tuning=dataclasses.replace(FINE_TUNE, epochs=1))
    result = run(model.eval(), "deep-compression", context, sparsity=(0.5, 0.8), bits=3, width=3)
    return result, data


def _entropy_bits(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum() * counts.sum())


def test_alias_and_stages(compressed):
    result, _ = compressed
    assert get_method("deep-compression") is get_method("deep_compression")
    record = result.record
    assert record.method == "deep_compression"
    assert [s.layer for s in record.steps][-1] == "share"
    assert record.after.energy < record.before.energy
    assert record.after.nonzero_weights < record.before.nonzero_weights


def test_sizes_match_hand_accounting_and_entropy_bounds(compressed):
    result, _ = compressed
    sizes, layers = result.record.info["sizes"], result.record.info["share"]["layers"]
    for name, param in result.model.named_parameters():
        if name not in layers:
            continue
        info = layers[name]
        values = param.detach().reshape(-1)
        nonzero = torch.nonzero(values, as_tuple=True)[0].numpy()
        clusters = len(torch.unique(values[values != 0]))
        width = info["width"]
        # fixed-width accounting by hand: fillers are one per 2**width positions of each gap
        gaps = np.diff(nonzero, prepend=-1) - 1
        entries = nonzero.size + int((gaps // (1 << width)).sum())
        assert info["entries"] == entries and info["nonzeros"] == nonzero.size and info["clusters"] == clusters
        index_bits = math.ceil(math.log2(clusters + 1))
        assert info["paper_fixed"] == entries * (index_bits + width) + 32 * clusters
        # Huffman: the entropy bound H <= L < H + 1 per symbol, for both streams
        shared = next(t for t in Transforms.of(result.model).of_kind(SharedWeights) if t.parameter == name)
        for stream in (shared.coded().indices, shared.coded().runs):
            if np.count_nonzero(stream.counts) > 1:
                h = _entropy_bits(stream.counts)
                assert h - 1e-6 <= stream.bits < h + stream.length
        assert info["total"] == info["indices"] + info["positions"] + 32 * clusters
    biases = sum(p.numel() for n, p in result.model.named_parameters() if n.endswith("bias")) * 32
    assert sizes["other"] == biases
    assert sizes["total"] == sizes["weights"] + sizes["indices"] + sizes["codebooks"] + biases
    assert sizes["dense"] == (64 * 48 + 48 + 48 * 10 + 10) * 32  # 3,600 parameters at 32 bits


def test_file_stores_coded_streams_and_reloads_exactly(compressed, tmp_path):
    result, data = compressed
    path = dnnergy.save(tmp_path / "dc.dnnergy", result.model, result.record)
    again = dnnergy.save(tmp_path / "dc2.dnnergy", result.model, result.record)
    assert path.read_bytes() == again.read_bytes()
    container = read_container(path)
    assert not any(k in container.tensors for k in ("state/1.weight", "state/3.weight"))
    # the bytes stored are the coded streams: their lengths are the info's bit counts, rounded up to bytes
    layers = result.record.info["share"]["layers"]
    for i, record in enumerate(container.header["transforms"]):
        info = layers[record["parameter"]]
        assert container.tensors[f"transform.{i}.data"].numel() == (info["indices"] + 7) // 8 + (info["positions"] + 7) // 8
    loaded = dnnergy.load(path)
    x = data.test.tensors[0]
    assert torch.equal(loaded.model(x), result.model.eval()(x))
    for name, param in loaded.model.named_parameters():
        assert torch.equal(param, dict(result.model.named_parameters())[name])
    # decoding the stored cluster indices gives back the model's clusters (symbol 0 = filler zero)
    shared = Transforms.of(loaded.model).of_kind(SharedWeights)[0]
    symbols = huffman_decode(shared.coded().indices)
    assert (symbols[symbols > 0] - 1).tolist() == shared.assign.tolist()
    flipped = bytearray(path.read_bytes())
    flipped[-10] ^= 0x40
    (tmp_path / "flipped.dnnergy").write_bytes(bytes(flipped))
    with pytest.raises(UserInputError, match="corrupted"):
        dnnergy.load(tmp_path / "flipped.dnnergy")


def test_energy_prices_the_stored_bits(compressed):
    result, _ = compressed
    workload = dnnergy.trace(result.model, (1, 1, 8, 8))
    layers = result.record.info["share"]["layers"]
    for layer in workload.mac_layers():
        assert layer.w_coded_bits == layers[f"{layer.module}.weight"]["total"]
        assert layer.w_density == pytest.approx(layers[f"{layer.module}.weight"]["nonzeros"] / layer.weights)


def test_bad_parameters_fail_before_any_work():
    with pytest.raises(UserInputError, match="prune must name a pruning method"):
        check_params("deep_compression", {"prune": "share"})
    with pytest.raises(UserInputError, match="unknown compression method"):
        check_params("deep_compression", {"prune": "nothing"})
    with pytest.raises(UserInputError, match="bits must be a positive int"):
        check_params("deep-compression", {"bits": 0})
    with pytest.raises(UserInputError, match="sparsity"):
        check_params("deep_compression", {"sparsity": 1.5})


def test_cli_compresses_with_the_alias(factory, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DNNERGY_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "cli.dnnergy"
    try:
        cli_main(["compress", factory, "--method", "deep-compression", "--data", "digits", "--max-accuracy-drop", "5",
                  "--epochs", "1", "--sparsity", "0.5", "--bits", "3", "--out", str(out), "--json"])
    except SystemExit as exc:
        assert not exc.code, capsys.readouterr().err
    record = json.loads(capsys.readouterr().out)
    assert record["method"] == "deep_compression" and record["params"]["bits"] == 3
    assert "state/1.weight" not in read_container(out).tensors

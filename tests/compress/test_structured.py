"""Structured pruning with physical removal: equivalence with masked models, records, selection criteria."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from dnnergy.compress.importance import contribution_gram, greedy_removal_order, norm_importance
from dnnergy.compress.reconstruct import input_gram
from dnnergy.compress.removal import (
    ChannelSurgeon,
    PruneStep,
    StructuredRecord,
    channel_groups,
    load_pruned,
    prune_channels,
    replay,
    save_pruned,
)
from dnnergy.compress.structured import StructuredConfig, lowest_channels, prune_structured
from dnnergy.errors import UserInputError


def _randomize_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g))
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(n, generator=g))
            m.bias.data.copy_(torch.randn(n, generator=g))
    return model.eval()


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)).eval()


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.conv2, self.bn2 = nn.Conv2d(4, 6, 3), nn.BatchNorm2d(6)
        self.fc = nn.Linear(6 * 4 * 4, 3)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        return self.fc(x.flatten(1))


class ResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem, self.bn0 = nn.Conv2d(2, 5, 3, padding=1), nn.BatchNorm2d(5)
        self.c1, self.bn1 = nn.Conv2d(5, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.c2, self.bn2 = nn.Conv2d(4, 5, 3, padding=1), nn.BatchNorm2d(5)
        self.fc = nn.Linear(5, 3)

    def forward(self, x):
        x = torch.relu(self.bn0(self.stem(x)))
        y = self.bn2(self.c2(torch.relu(self.bn1(self.c1(x)))))
        x = torch.relu(x + y)
        return self.fc(x.mean(dim=(2, 3)))


class DepthwiseNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.expand, self.bn1 = nn.Conv2d(3, 6, 1), nn.BatchNorm2d(6)
        self.dw, self.bn2 = nn.Conv2d(6, 6, 3, padding=1, groups=6), nn.BatchNorm2d(6)
        self.project = nn.Conv2d(6, 4, 1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        x = torch.relu(self.bn1(self.expand(x)))
        x = torch.relu(self.bn2(self.dw(x)))
        return self.fc(self.project(x).mean(dim=(2, 3)))


def _make(cls) -> nn.Module:
    torch.manual_seed(1)
    return _randomize_bn(cls())


# Each case: model, input shape, plan, and the masked twin built by hand: zero the input
# columns that read the removed channels in every consumer (then nobody sees them).
def _masked_mlp(model):
    model[2].weight.data[:, [1, 4]] = 0
    model[4].weight.data[:, [0]] = 0


def _masked_cnn(model):
    model.conv2.weight.data[:, [0, 2]] = 0
    model.fc.weight.data[:, 1 * 16:2 * 16] = 0  # channel 1 of conv2 = flattened features 16..31 (4 x 4 map)


def _masked_res(model):
    model.c1.weight.data[:, [1, 3]] = 0  # residual channels read by the block...
    model.fc.weight.data[:, [1, 3]] = 0  # ...and by the classifier
    model.c2.weight.data[:, [2]] = 0  # c1's channel 2


def _masked_dw(model):
    model.project.weight.data[:, [0, 3]] = 0  # expand channels 0, 3 flow through dw 0, 3 into project


CASES = {
    "mlp": (mlp, (2, 8), {"0": [1, 4], "2": [0]}, _masked_mlp),
    "cnn_bn": (lambda: _make(CNN), (2, 1, 6, 6), {"conv1": [0, 2], "conv2": [1]}, _masked_cnn),
    "residual": (lambda: _make(ResNet), (2, 2, 5, 5), {"stem": [1, 3], "c1": [2]}, _masked_res),
    "depthwise": (lambda: _make(DepthwiseNet), (2, 3, 5, 5), {"expand": [0, 3]}, _masked_dw),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_physically_pruned_equals_masked(case):
    build, shape, plan, mask = CASES[case]
    model = build()
    x = torch.randn(shape, generator=torch.Generator().manual_seed(3))
    pruned, record = prune_channels(model, x[:1], plan)
    masked = copy.deepcopy(model)
    mask(masked)
    with torch.no_grad():
        torch.testing.assert_close(pruned(x), masked(x), rtol=1e-5, atol=1e-5)
    removed = sum(len(v) for v in plan.values())
    assert record.removed == {k: len(v) for k, v in plan.items()}
    assert sum(p.numel() for p in pruned.parameters()) < sum(p.numel() for p in model.parameters())
    assert removed > 0


@pytest.mark.parametrize("case", sorted(CASES))
def test_pruned_model_saves_and_reloads_from_record(case, tmp_path):
    build, shape, plan, _ = CASES[case]
    model = build()
    x = torch.randn(shape, generator=torch.Generator().manual_seed(4))
    pruned, record = prune_channels(model, x[:1], plan)
    path = tmp_path / "pruned.pt"
    save_pruned(path, pruned, record)
    payload = torch.load(path, weights_only=True)  # plain data + tensors only
    assert payload["record"]["steps"][0]["module"] == next(iter(plan))
    fresh = build()  # the original architecture, fresh weights
    with torch.no_grad():
        for p in fresh.parameters():
            p.add_(1.0)
    reloaded, reloaded_record = load_pruned(path, fresh)
    assert reloaded_record == record
    with torch.no_grad():
        torch.testing.assert_close(reloaded(x), pruned(x))
    assert not list(tmp_path.glob("*.tmp"))


def test_mlp_shapes_after_removal():
    pruned, _ = prune_channels(mlp(), (1, 8), {"0": [1, 4], "2": [0]})
    # 8-6-5-3 minus 2 hidden-1 and 1 hidden-2 neurons: 8-4-4-3
    assert [(m.in_features, m.out_features) for m in pruned if isinstance(m, nn.Linear)] == [(8, 4), (4, 4), (4, 3)]


def test_output_layer_is_never_a_group():
    groups = channel_groups(mlp(), (1, 8))
    assert [g.root for g in groups] == ["0", "2"]  # "4" produces the outputs
    assert [g.size for g in groups] == [6, 5]


def test_residual_group_couples_stem_and_block_output():
    groups = {frozenset(m.name for m in g.producers()): g for g in channel_groups(_make(ResNet), (1, 2, 5, 5))}
    assert frozenset({"stem", "c2"}) in groups
    assert {m.name for m in groups[frozenset({"stem", "c2"})].consumers()} == {"c1", "fc"}


def test_replay_of_unknown_module_and_bad_indices_raise():
    model = mlp()
    with pytest.raises(UserInputError, match="no prunable Conv/Linear layer named 'nope'"):
        prune_channels(model, (1, 8), {"nope": [0]})
    with pytest.raises(UserInputError, match=r"in \[0, 6\)"):
        prune_channels(model, (1, 8), {"0": [6]})
    with pytest.raises(UserInputError, match="cannot remove all 6"):
        prune_channels(model, (1, 8), {"0": list(range(6))})
    with pytest.raises(UserInputError, match="replay expects a StructuredRecord"):
        replay(model, {"steps": []})


def test_load_rejects_foreign_files(tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"weights": torch.zeros(1)}, path)
    with pytest.raises(UserInputError, match="not a dnnergy structured checkpoint"):
        load_pruned(path, mlp())


# -- selection by norm -------------------------------------------------------------------


def _brute_force_lowest(weights: list[np.ndarray], p: int, k: int) -> list[int]:
    """Sum over coupled filters of each channel's L_p norm; the k lowest (stable) channels."""
    scores = []
    for j in range(weights[0].shape[0]):
        total = 0.0
        for w in weights:
            total += float(np.sum(np.abs(w[j]) ** p) ** (1.0 / p))
        scores.append(total)
    return sorted(int(i) for i in np.argsort(np.array(scores), kind="stable")[:k])


@pytest.mark.parametrize("criterion,p", [("l1", 1), ("l2", 2)])
def test_norm_selection_matches_brute_force(criterion, p):
    model = _make(ResNet)
    pruned, record = prune_structured(model, (1, 2, 5, 5), criterion=criterion, ratio=0.4)
    steps = {s.module: list(s.indices) for s in record.steps}
    stem = model.stem.weight.detach().numpy()
    c2 = model.c2.weight.detach().numpy()
    c1 = model.c1.weight.detach().numpy()
    residual_root = next(name for name in steps if name in ("stem", "c2"))
    assert steps[residual_root] == _brute_force_lowest([stem, c2], p, round(0.4 * 5))  # 2 of 5 residual channels
    assert steps["c1"] == _brute_force_lowest([c1], p, round(0.4 * 4))  # 2 of 4 (1.6 rounds to 2)
    assert pruned.stem.out_channels == 3 and pruned.c1.out_channels == 2 and pruned.fc.out_features == 3


def test_norm_importance_hand_example():
    layer = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Linear(2, 1))
    layer[0].weight.data = torch.tensor([[3.0, -4.0], [1.0, 0.0]])
    group = channel_groups(layer, (1, 2))[0]
    assert norm_importance(group, 1).tolist() == [7.0, 1.0]  # |3| + |-4|, |1|
    assert norm_importance(group, 2).tolist() == [5.0, 1.0]  # sqrt(9 + 16)


def test_lowest_channels_breaks_ties_by_position():
    assert lowest_channels(torch.tensor([3.0, 1.0, 2.0, 1.0]), 2) == [1, 3]


# -- selection by reconstruction error --------------------------------------------------------


def test_contribution_gram_gives_exact_output_error():
    model = _make(CNN)
    x = torch.randn(16, 1, 6, 6, generator=torch.Generator().manual_seed(5))
    surgeon = ChannelSurgeon(copy.deepcopy(model), x[:1])
    group = surgeon.group("conv1")
    grams = {c.name: input_gram(surgeon.model, c.name, x) for c in group.consumers()}
    gram = contribution_gram(group, grams)
    removed = [0, 3]
    # brute force: conv2's pre-activation with input channels 0 and 3 zeroed vs intact
    feats = torch.relu(model.bn1(model.conv1(x))).detach().double()
    w = model.conv2.weight.detach().double()
    full = torch.nn.functional.conv2d(feats, w)
    w_cut = w.clone()
    w_cut[:, removed] = 0
    error = float((torch.nn.functional.conv2d(feats, w_cut) - full).pow(2).sum())
    t = torch.zeros(4, dtype=torch.float64)
    t[removed] = 1
    assert float(t @ gram @ t) == pytest.approx(error, rel=1e-9)


def test_greedy_removal_order_hand_example():
    assert greedy_removal_order(torch.diag(torch.tensor([3.0, 1.0, 2.0], dtype=torch.float64))) == [1, 2, 0]
    # strongly anti-correlated channels 0 and 1 cancel: removing both costs 1 + 1 - 2*0.9 = 0.2
    gram = torch.tensor([[1.0, -0.9, 0.0], [-0.9, 1.0, 0.0], [0.0, 0.0, 0.5]], dtype=torch.float64)
    assert greedy_removal_order(gram)[:1] == [2]


def test_reconstruction_criterion_with_refit_beats_plain_removal():
    model = mlp()
    x = torch.randn(200, 8, generator=torch.Generator().manual_seed(6))
    plain, rec = prune_structured(model, x[:1], criterion="reconstruction", ratio=0.5, data=x)
    refit, _ = prune_structured(model, x[:1], criterion="reconstruction", ratio=0.5, data=x, reconstruct=True)
    with torch.no_grad():
        e_plain = float((plain(x) - model(x)).pow(2).sum())
        e_refit = float((refit(x) - model(x)).pow(2).sum())
    assert e_refit < e_plain
    assert rec.method == "structured.reconstruction"
    with pytest.raises(UserInputError, match="needs calibration data"):
        prune_structured(model, x[:1], criterion="reconstruction")


# -- selection by energy per accuracy ------------------------------------------------------------


def test_energy_criterion_reaches_target_and_replays():
    model = mlp()
    params = lambda m: float(sum(p.numel() for p in m.parameters()))  # noqa: E731 - a stand-in energy
    pruned, record = prune_structured(model, (1, 8), criterion="energy", energy_fn=params, evaluate_fn=lambda m: 1.0,
                                      energy_target=0.6, step=0.2)
    # 8*6+6 + 6*5+5 + 5*3+3 = 107 parameters; stop at or below 0.6 * 107 = 64.2 unless nothing is left to remove
    assert params(pruned) <= 0.6 * 107
    assert dict(record.info)["energy_after"] == params(pruned)
    rebuilt = replay(mlp(), record)
    assert [p.shape for p in rebuilt.parameters()] == [p.shape for p in pruned.parameters()]


def test_energy_criterion_respects_max_drop():
    model = mlp()
    calls = []

    def accuracy(m):  # every removal loses 5 points
        calls.append(1)
        removed = 11 - sum(l.out_features for l in m if isinstance(l, nn.Linear) and l.out_features != 3)
        return 1.0 - 0.05 * removed

    pruned, record = prune_structured(model, (1, 8), criterion="energy", energy_fn=lambda m: float(sum(p.numel() for p in m.parameters())),
                                      evaluate_fn=accuracy, energy_target=0.1, step=0.2, max_drop=0.1)
    assert 11 - sum(len(s.indices) for s in record.steps) >= 9  # at most 2 neurons (10 points) removed
    with pytest.raises(UserInputError, match="needs energy_fn"):
        prune_structured(model, (1, 8), criterion="energy")


# -- value objects ---------------------------------------------------------------------------------


def test_structured_config_valid_and_invalid():
    assert StructuredConfig(criterion="l2").criterion.value == "l2"
    with pytest.raises(ValueError, match="StructuredConfig: criterion must be one of"):
        StructuredConfig(criterion="random")
    with pytest.raises(ValueError, match=r"StructuredConfig: ratio must be in \[0, 1\]"):
        StructuredConfig(ratio=1.5)
    with pytest.raises(ValueError, match=r"StructuredConfig: step must be in \(0, 1\)"):
        StructuredConfig(step=0)
    with pytest.raises(ValueError, match="StructuredConfig: samples must be a positive int"):
        StructuredConfig(samples=0)
    with pytest.raises(ValueError, match="StructuredConfig: tolerance must be > 0"):
        StructuredConfig(tolerance=0)
    with pytest.raises(UserInputError, match="prune_structured"):
        prune_structured(mlp(), (1, 8), bogus=1)


def test_prune_step_and_record_valid_and_invalid():
    step = PruneStep("fc1", (3, 1))
    record = StructuredRecord(((1, 8),), (step,), method="manual", info=(("ratio", 0.5),))
    assert StructuredRecord.from_dict(record.to_dict()) == record
    assert record.input_dtypes == ("float32",)
    with pytest.raises(ValueError, match="PruneStep: module must be a non-empty"):
        PruneStep("", (1,))
    with pytest.raises(ValueError, match="indices must be a non-empty"):
        PruneStep("fc1", ())
    with pytest.raises(ValueError, match="indices must be unique"):
        PruneStep("fc1", (1, 1))
    with pytest.raises(ValueError, match="input_shapes must be non-empty"):
        StructuredRecord(((0, 8),))
    with pytest.raises(ValueError, match="input_dtypes must name one torch dtype"):
        StructuredRecord(((1, 8),), input_dtypes=("float99",))
    with pytest.raises(UserInputError, match="expected a dict with format"):
        StructuredRecord.from_dict({"format": "other"})

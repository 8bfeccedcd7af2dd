"""Structured pruning with physical removal: equivalence with masked models, records, selection criteria."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import sys
import textwrap

import numpy as np
import pytest
import torch
from torch import nn

import dnnergy
from dnnergy.compress import CompressionContext, EditLog, get_method, replay
from dnnergy.compress.edits import Edit, edit_log
from dnnergy.compress.importance import contribution_gram, greedy_removal_order, norm_importance
from dnnergy.compress.reconstruct import input_gram
from dnnergy.compress.removal import ChannelSurgeon, channel_groups, prune_channels
from dnnergy.compress.structured import StructuredConfig, lowest_channels
from dnnergy.data import synthetic
from dnnergy.errors import UserInputError
from dnnergy.io import read_container
from dnnergy.train import FINE_TUNE


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

#: architecture factory (in the temporary module ``structured_models``) of each case's model
FACTORIES = {"mlp": "mlp", "cnn_bn": "CNN", "residual": "ResNet", "depthwise": "DepthwiseNet"}


@pytest.fixture()
def models_module(tmp_path, monkeypatch):
    """This file's model definitions as an importable module, so ``dnnergy.load`` can rebuild them."""
    source = "import torch\nfrom torch import nn\n\n\n" + "\n\n".join(
        textwrap.dedent(inspect.getsource(obj)) for obj in (mlp, CNN, ResNet, DepthwiseNet))
    (tmp_path / "structured_models.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "structured_models"
    sys.modules.pop("structured_models", None)


def _context(shape, classes=3, n=60, **fields) -> CompressionContext:
    """A context on a small synthetic task with inputs of ``shape``; no fine-tuning unless asked."""
    return CompressionContext(synthetic(n=n, shape=shape, classes=classes), **{"fine_tuning": None, **fields})


@pytest.mark.parametrize("case", sorted(CASES))
def test_physically_pruned_equals_masked(case):
    build, shape, plan, mask = CASES[case]
    model = build()
    x = torch.randn(shape, generator=torch.Generator().manual_seed(3))
    pruned = prune_channels(model, x[:1], plan)
    masked = copy.deepcopy(model)
    mask(masked)
    with torch.no_grad():
        torch.testing.assert_close(pruned(x), masked(x), rtol=1e-5, atol=1e-5)
    removed = sum(len(v) for v in plan.values())
    assert edit_log(pruned).removed == {k: len(v) for k, v in plan.items()}
    assert sum(p.numel() for p in pruned.parameters()) < sum(p.numel() for p in model.parameters())
    assert removed > 0
    assert edit_log(model) is None  # the input model is untouched


@pytest.mark.parametrize("case", sorted(CASES))
def test_pruned_model_saves_and_reloads_from_record(case, tmp_path, models_module):
    build, shape, plan, _ = CASES[case]
    model = build()
    x = torch.randn(shape, generator=torch.Generator().manual_seed(4))
    pruned = prune_channels(model, x[:1], plan)
    with torch.no_grad():  # weights no fresh model has: only the saved state can reproduce them
        for p in pruned.parameters():
            p.add_(0.1)
    path = tmp_path / "pruned.dnnergy"
    dnnergy.save(path, pruned, architecture=f"{models_module}:{FACTORIES[case]}")
    header = read_container(path).header  # plain data + tensors only
    assert header["edits"]["edits"][0]["module"] == next(iter(plan))
    assert header["architecture"] == {"factory": f"{models_module}:{FACTORIES[case]}", "kwargs": {}}
    loaded = dnnergy.load(path)
    assert edit_log(loaded.model).to_dict() == edit_log(pruned).to_dict()
    assert loaded.input_shape == (1, *shape[1:])
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x), pruned.eval()(x), rtol=0, atol=0)
    assert not list(tmp_path.glob("*.tmp"))


def test_mlp_shapes_after_removal():
    pruned = prune_channels(mlp(), (1, 8), {"0": [1, 4], "2": [0]})
    # 8-6-5-3 minus 2 hidden-1 and 1 hidden-2 neurons: 8-4-4-3
    assert [(m.in_features, m.out_features) for m in pruned if isinstance(m, nn.Linear)] == [(8, 4), (4, 4), (4, 3)]


def test_edit_log_of_prune_channels_round_trips_and_replays():
    model = mlp()
    pruned = prune_channels(model, (1, 8), {"0": [4, 1], "2": [0]})
    log = edit_log(pruned)
    assert log.edits == [Edit("remove_channels", "0", {"indices": [1, 4]}), Edit("remove_channels", "2", {"indices": [0]})]
    expected = {"input_shapes": [[1, 8]], "input_dtypes": ["float32"],
                "edits": [{"kind": "remove_channels", "module": "0", "data": {"indices": [1, 4]}},
                          {"kind": "remove_channels", "module": "2", "data": {"indices": [0]}}]}
    assert log.to_dict() == expected
    assert EditLog.from_dict(expected) == log
    assert log.removed == {"0": 2, "2": 1}
    torch.manual_seed(123)  # a fresh model of the original architecture with other weights
    fresh = nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    rebuilt = replay(fresh, EditLog.from_dict(log.to_dict()))
    assert rebuilt is fresh
    rebuilt.load_state_dict(pruned.state_dict(), strict=True)
    x = torch.randn(16, 8, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), pruned(x), rtol=0, atol=0)
        # and both equal the original with hidden neurons 1, 4 and 0 silenced by hand
        h1 = torch.relu(model[0](x))
        h1[:, [1, 4]] = 0
        h2 = torch.relu(model[2](h1))
        h2[:, [0]] = 0
        torch.testing.assert_close(pruned(x), model[4](h2), rtol=1e-6, atol=1e-6)


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
    with pytest.raises(UserInputError, match="replay expects an EditLog"):
        replay(model, {"steps": []})


def test_load_rejects_foreign_files(tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"weights": torch.zeros(1)}, path)
    with pytest.raises(UserInputError, match="a PyTorch checkpoint, not a dnnergy file"):
        dnnergy.load(path)


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
    result = get_method("structured")(model, _context((2, 5, 5)), criterion=criterion, ratio=0.4)
    pruned = result.model
    steps = {e.module: list(e.data["indices"]) for e in edit_log(pruned).edits}
    stem = model.stem.weight.detach().numpy()
    c2 = model.c2.weight.detach().numpy()
    c1 = model.c1.weight.detach().numpy()
    residual_root = next(name for name in steps if name in ("stem", "c2"))
    assert steps[residual_root] == _brute_force_lowest([stem, c2], p, round(0.4 * 5))  # 2 of 5 residual channels
    assert steps["c1"] == _brute_force_lowest([c1], p, round(0.4 * 4))  # 2 of 4 (1.6 rounds to 2)
    assert pruned.stem.out_channels == 3 and pruned.c1.out_channels == 2 and pruned.fc.out_features == 3
    assert result.record.info == {"criterion": criterion, "removed": {residual_root: 2, "c1": 2}}
    assert model.stem.out_channels == 5 and edit_log(model) is None  # the input model is untouched


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
    context = _context((8,), n=300)  # 210 training images calibrate
    x = context.calibration(512)
    method = get_method("structured")
    plain = method(model, context, criterion="reconstruction", ratio=0.5)
    refit = method(model, context, criterion="reconstruction", ratio=0.5, reconstruct=True)
    with torch.no_grad():
        e_plain = float((plain.model(x) - model(x)).pow(2).sum())
        e_refit = float((refit.model(x) - model(x)).pow(2).sum())
    assert e_refit < e_plain
    assert plain.record.method == "structured" and plain.record.info["criterion"] == "reconstruction"
    # same channels removed (ratio 0.5: 3 of 6 and round(2.5) = 2 of 5), only the consumers' weights differ
    assert edit_log(plain.model).to_dict() == edit_log(refit.model).to_dict()
    assert edit_log(plain.model).removed == {"0": 3, "2": 2}


# -- selection by energy per accuracy ------------------------------------------------------------


def _parameters(m: nn.Module) -> float:  # a stand-in energy
    return float(sum(p.numel() for p in m.parameters()))


def test_energy_criterion_reaches_target_and_replays(monkeypatch):
    model = mlp()
    monkeypatch.setattr(CompressionContext, "evaluate", lambda self, m, split="val": 1.0)  # every trial is free
    context = _context((8,), energy=_parameters, max_accuracy_drop=0.0, reference_accuracy=1.0)
    result = get_method("structured")(model, context, criterion="energy", energy_target=0.6, step=0.2)
    pruned = result.model
    # 8*6+6 + 6*5+5 + 5*3+3 = 107 parameters; stop at or below 0.6 * 107 = 64.2 unless nothing is left to remove
    assert _parameters(model) == 107 and _parameters(pruned) <= 0.6 * 107
    assert result.record.after.energy == _parameters(pruned) and result.record.before.energy == 107
    rebuilt = replay(mlp(), edit_log(pruned))
    assert [p.shape for p in rebuilt.parameters()] == [p.shape for p in pruned.parameters()]


def test_energy_criterion_respects_max_drop(monkeypatch):
    model = mlp()

    def accuracy(self, m, split="val"):  # every removal loses 5 points
        removed = 11 - sum(l.out_features for l in m if isinstance(l, nn.Linear) and l.out_features != 3)
        return 1.0 - 0.05 * removed

    monkeypatch.setattr(CompressionContext, "evaluate", accuracy)
    context = _context((8,), energy=_parameters, max_accuracy_drop=0.1, reference_accuracy=1.0)
    result = get_method("structured")(model, context, criterion="energy", energy_target=0.1, step=0.2)
    removed = sum(edit_log(result.model).removed.values()) if edit_log(result.model) else 0
    assert removed == 2  # one neuron per trial, 5 points each: 1.0 -> 0.95 -> 0.90 (the floor) -> 0.85 rejected
    assert 11 - removed == sum(l.out_features for l in result.model if isinstance(l, nn.Linear)) - 3
    with pytest.raises(UserInputError, match=r"structured \(criterion 'energy'\) needs an energy objective"):
        get_method("structured")(model, _context((8,)), criterion="energy")


# -- the method's defaults: criterion and fine-tuning ------------------------------------------


def test_default_criterion_is_l1_with_a_ratio_and_energy_without(monkeypatch):
    model = mlp()
    context = _context((8,))
    result = get_method("structured")(model, context, ratio=0.5)
    assert result.record.info["criterion"] == "l1"
    w0, w2 = model[0].weight.detach().numpy(), model[2].weight.detach().numpy()
    expected = {"0": _brute_force_lowest([w0], 1, 3), "2": _brute_force_lowest([w2], 1, 2)}  # 0.5 * 6, round(2.5) = 2
    assert {e.module: list(e.data["indices"]) for e in edit_log(result.model).edits} == expected
    # without a ratio: the energy criterion, which needs an energy objective ...
    with pytest.raises(UserInputError, match=r"criterion 'energy'\) needs an energy objective"):
        get_method("structured")(model, context)
    # ... and with one, greedily removes by energy until the target
    monkeypatch.setattr(CompressionContext, "evaluate", lambda self, m, split="val": 1.0)
    energy = get_method("structured")(model, context.replace(energy=_parameters, reference_accuracy=1.0))
    assert energy.record.info["criterion"] == "energy"
    assert _parameters(energy.model) <= 0.5 * 107  # the default energy_target


@pytest.mark.parametrize("fine_tuning", [None, dataclasses.replace(FINE_TUNE, epochs=1)])
def test_fine_tunes_only_when_the_context_says_so(fine_tuning):
    model = mlp()
    events = []
    context = _context((8,), n=200, fine_tuning=fine_tuning, progress=events.append)
    result = get_method("structured")(model, context, criterion="l1", ratio=0.5)
    w0, w2 = model[0].weight.detach().numpy(), model[2].weight.detach().numpy()
    plain = prune_channels(model, (1, 8), {"0": _brute_force_lowest([w0], 1, 3), "2": _brute_force_lowest([w2], 1, 2)})
    assert [p.shape for p in result.model.parameters()] == [p.shape for p in plain.parameters()]
    same = all(torch.equal(a, b) for a, b in zip(result.model.parameters(), plain.parameters()))
    tuned = [e for e in events if e.kind == "fine_tuned"]
    if fine_tuning is None:
        assert same and not tuned and not result.record.summary.endswith("fine-tuned")
    else:
        assert not same and len(tuned) == 1 and result.record.summary.endswith(", fine-tuned")


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
    with pytest.raises(UserInputError, match="structured: no parameter 'bogus'"):
        get_method("structured")(mlp(), _context((8,)), bogus=1)
    with pytest.raises(UserInputError, match="StructuredConfig: criterion must be one of"):
        get_method("structured")(mlp(), _context((8,)), criterion="random", ratio=0.5)


def test_edit_and_edit_log_valid_and_invalid():
    edit = Edit("remove_channels", "fc1", {"indices": (3, 1)})
    log = EditLog(((1, 8),), edits=[edit])
    assert EditLog.from_dict(log.to_dict()) == log
    assert log.input_dtypes == ("float32",)
    assert edit.data == {"indices": [3, 1]}  # plain data
    with pytest.raises(ValueError, match="Edit: module must be a non-empty"):
        Edit("remove_channels", "", {"indices": [1]})
    with pytest.raises(ValueError, match="Edit: kind must be one of"):
        Edit("prune", "fc1", {"indices": [1]})
    with pytest.raises(ValueError, match="indices must be a non-empty"):
        Edit("remove_channels", "fc1", {"indices": []})
    with pytest.raises(ValueError, match="indices must be unique"):
        Edit("remove_channels", "fc1", {"indices": [1, 1]})
    with pytest.raises(ValueError, match="input_shapes must be non-empty"):
        EditLog(((0, 8),))
    with pytest.raises(ValueError, match="input_dtypes must name one torch dtype"):
        EditLog(((1, 8),), input_dtypes=("float99",))
    with pytest.raises(UserInputError, match="EditLog: invalid edit log"):
        EditLog.from_dict({"format": "other"})

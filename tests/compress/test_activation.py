"""Activation-side savings: Cnvlutin activation pruning and SnaPEA exact early termination."""

from __future__ import annotations

import inspect
import sys
import textwrap

import pytest
import torch
from torch import nn

import dnnergy
from dnnergy.compress import CompressionContext, get_method
from dnnergy.compress.activation import ActivationPruning, prune_activations
from dnnergy.compress.edits import Edit, edit_log
from dnnergy.data import synthetic
from dnnergy.explore import tradeoff
from dnnergy.compress.snapea import EarlyTermination, early_termination, simulate_early_termination, with_early_termination
from dnnergy.errors import UserInputError


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 5), nn.ReLU(), nn.Linear(5, 3)).eval()


# -- Cnvlutin activation pruning --------------------------------------------------------------


def test_activation_pruning_hand_example():
    out = ActivationPruning(0.5)(torch.tensor([-1.0, 0.2, 0.5, 0.7]))
    assert out.tolist() == [0.0, 0.0, 0.0, pytest.approx(0.7)]
    x = torch.randn(100)
    assert torch.equal(ActivationPruning(0.0)(x), torch.relu(x))
    with pytest.raises(UserInputError, match="ActivationPruning: threshold must be a finite number >= 0"):
        ActivationPruning(-0.1)


def test_prune_activations_matches_manual_forward_and_measured_density():
    model = mlp()
    x = torch.randn(64, 6, generator=torch.Generator().manual_seed(1))
    pruned = prune_activations(model, {"1": 0.3})
    with torch.no_grad():
        h = torch.relu(model[0](x))
        h = torch.where(h > 0.3, h, torch.zeros_like(h))
        expected = model[4](torch.relu(model[2](h)))
        torch.testing.assert_close(pruned(x), expected)
        density = float((h != 0).float().mean())  # what the next layer reads
    workload = dnnergy.trace(pruned, x, measure=True)
    assert workload["2"].i_density == pytest.approx(density)
    assert workload["2"].i_density < dnnergy.trace(model, x, measure=True)["2"].i_density


def test_prune_activations_errors():
    with pytest.raises(UserInputError, match="no ReLU modules named"):
        prune_activations(mlp(), {"9": 0.1})
    with pytest.raises(UserInputError, match="no nn.ReLU modules"):
        prune_activations(nn.Linear(2, 2), 0.1)


def test_prune_activations_logs_its_replacements_and_reloads(tmp_path, monkeypatch):
    model = mlp()
    pruned = prune_activations(model, {"3": 0.25})
    assert edit_log(pruned).edits == [Edit("replace_module", "3", {"kind": "activation_pruning", "kwargs": {"threshold": 0.25}})]
    assert edit_log(model) is None  # the input model is untouched
    (tmp_path / "activation_models.py").write_text("import torch\nfrom torch import nn\n\n\n" + textwrap.dedent(inspect.getsource(mlp)))
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        dnnergy.save(tmp_path / "pruned.dnnergy", pruned, architecture="activation_models:mlp")
        loaded = dnnergy.load(tmp_path / "pruned.dnnergy").model
    finally:
        sys.modules.pop("activation_models", None)
    assert isinstance(loaded[3], ActivationPruning) and loaded[3].threshold == 0.25 and isinstance(loaded[1], nn.ReLU)
    x = torch.rand(32, 6, generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), pruned(x), rtol=0, atol=0)


def test_sweep_energy_falls_with_threshold():
    model = mlp()
    x = torch.rand(64, 6, generator=torch.Generator().manual_seed(2))

    def nonzero_macs(m):  # the estimator's gated MACs: macs * w_density * i_density, measured on x
        return float(sum(layer.nonzero_macs for layer in dnnergy.trace(m, x, measure=True).mac_layers()))

    context = CompressionContext(synthetic(n=60, shape=(6,), classes=3), energy=nonzero_macs, fine_tuning=None, example=x)
    points = tradeoff(model, context, "activation", [0.0, 0.2, 0.5], latency=False)
    assert [p.strength for p in points] == [0.0, 0.2, 0.5] and {p.label for p in points} == {"activation"}
    assert points[0].energy == pytest.approx(nonzero_macs(model))  # threshold 0 is the ReLU itself
    assert [p.energy for p in points] == pytest.approx([nonzero_macs(prune_activations(model, t)) for t in (0.0, 0.2, 0.5)])
    assert points[0].energy >= points[1].energy >= points[2].energy
    assert points[0].energy > points[2].energy


#: validation accuracy scripted by the threshold of the model's pruning ReLUs (None: plain ReLUs)
SCRIPT = {None: 0.9, 0.05: 0.9, 0.1: 0.88, 0.2: 0.85, 0.3: 0.7, 0.5: 0.6}


@pytest.fixture()
def scripted(monkeypatch):
    """Methods see SCRIPT's accuracy for the threshold of the model's ActivationPruning modules."""
    tried = []

    def evaluate(self, model, split="val"):
        thresholds = {m.threshold for m in model.modules() if isinstance(m, ActivationPruning)}
        assert len(thresholds) <= 1
        tried.append(next(iter(thresholds), None))
        return SCRIPT[tried[-1]]

    monkeypatch.setattr(CompressionContext, "evaluate", evaluate)
    return tried


def test_activation_method_keeps_the_largest_threshold_within_the_budget(scripted):
    model = mlp()
    context = CompressionContext(synthetic(n=60, shape=(6,), classes=3), max_accuracy_drop=0.06, fine_tuning=None,
                                 reference_accuracy=0.9)
    # floor 0.84: 0.05 (0.90), 0.1 (0.88), 0.2 (0.85) are within; 0.3 (0.70) is not and ends the walk
    result = get_method("activation")(model, context)
    assert scripted == [0.05, 0.1, 0.2, 0.3]
    assert [(s.strength, s.accuracy, s.accepted) for s in result.record.steps] == [
        (0.05, 0.9, True), (0.1, 0.88, True), (0.2, 0.85, True), (0.3, 0.7, False)]
    assert [m.threshold for m in result.model.modules() if isinstance(m, ActivationPruning)] == [0.2, 0.2]
    assert result.record.info == {"threshold": 0.2}
    x = torch.rand(16, 6, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        torch.testing.assert_close(result.model(x), prune_activations(model, 0.2)(x))
    assert isinstance(model[1], nn.ReLU)  # the input model is untouched


def test_activation_method_without_a_threshold_in_budget_leaves_the_model(scripted):
    model = mlp()
    context = CompressionContext(synthetic(n=60, shape=(6,), classes=3), max_accuracy_drop=0.01, fine_tuning=None,
                                 reference_accuracy=0.95)
    result = get_method("activation")(model, context, threshold=(0.1, 0.2))  # 0.88 < 0.94 already
    assert [(s.strength, s.accepted) for s in result.record.steps] == [(0.1, False)]
    assert not any(isinstance(m, ActivationPruning) for m in result.model.modules())
    assert result.record.summary == "no threshold within the accuracy budget"
    single = get_method("activation")(model, context.replace(max_accuracy_drop=None), threshold=0.5)  # one value, no budget
    assert [m.threshold for m in single.model.modules() if isinstance(m, ActivationPruning)] == [0.5, 0.5]
    with pytest.raises(UserInputError, match="increasing schedule"):
        get_method("activation")(model, context, threshold=(0.3, 0.1))


# -- SnaPEA exact mode --------------------------------------------------------------------------


def _brute_force(weight: torch.Tensor, bias: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per output and row: accumulate positives, then negatives most-negative first, stop at the first negative sum."""
    executed = torch.zeros(rows.shape[0], weight.shape[0], dtype=torch.long)
    outputs = torch.zeros(rows.shape[0], weight.shape[0], dtype=torch.float64)
    for m in range(weight.shape[0]):
        w = weight[m].tolist()
        pos = [k for k in range(len(w)) if w[k] > 0]
        neg = sorted((k for k in range(len(w)) if w[k] < 0), key=lambda k: w[k])
        zero = [k for k in range(len(w)) if w[k] == 0]
        for r in range(rows.shape[0]):
            acc, count, stopped = float(bias[m]), 0, False
            for k in pos:
                acc += w[k] * float(rows[r, k])
                count += 1
            if acc < 0:
                stopped = True
            for k in neg:
                if stopped:
                    break
                acc += w[k] * float(rows[r, k])
                count += 1
                stopped = acc < 0
            if not stopped:
                count += len(zero)
            executed[r, m] = count
            outputs[r, m] = 0.0 if stopped else max(acc, 0.0)
    return outputs, executed


def test_early_termination_linear_matches_brute_force_and_full_relu():
    g = torch.Generator().manual_seed(3)
    layer = nn.Linear(7, 4).double()
    with torch.no_grad():  # small integers: every partial sum is exact in float64
        layer.weight.copy_(torch.randint(-4, 5, (4, 7), generator=g).double())
        layer.bias.copy_(torch.randint(-3, 4, (4,), generator=g).double())
    x = torch.randint(0, 4, (30, 7), generator=g).double()
    outputs, executed, _ = simulate_early_termination(layer, x)
    expected_out, expected_exec = _brute_force(layer.weight.detach(), layer.bias.detach(), x)
    assert torch.equal(executed, expected_exec)
    assert torch.equal(outputs, torch.relu(layer(x)).detach())  # exact, not approximately
    assert torch.equal(outputs, expected_out)
    assert int(executed.sum()) < 30 * 4 * 7


def test_early_termination_conv_matches_brute_force():
    g = torch.Generator().manual_seed(4)
    conv = nn.Conv2d(2, 3, 2, padding=1).double()
    with torch.no_grad():
        conv.weight.copy_(torch.randint(-3, 4, conv.weight.shape, generator=g).double())
        conv.bias.copy_(torch.randint(-2, 3, (3,), generator=g).double())
    x = torch.randint(0, 3, (2, 2, 3, 3), generator=g).double()
    outputs, executed, _ = simulate_early_termination(conv, x)
    rows = nn.functional.unfold(x, 2, padding=1).transpose(1, 2).reshape(-1, 8)  # (N*E*F, C*R*S)
    expected_out, expected_exec = _brute_force(conv.weight.detach().reshape(3, -1), conv.bias.detach(), rows)
    assert torch.equal(executed, expected_exec)
    full = torch.relu(conv(x)).detach().permute(0, 2, 3, 1).reshape(-1, 3)
    assert torch.equal(outputs, full)


def test_early_termination_folds_batchnorm_and_feeds_the_workload():
    torch.manual_seed(5)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 3)).eval()
    model[3].running_mean.uniform_(-1, 1)
    model[3].running_var.uniform_(0.5, 2)
    x = torch.rand(40, 6, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        h = torch.relu(model[0](x))
        reference = torch.relu(model[3](model[2](h))).double()
    outputs, _, _ = simulate_early_termination(model[2], h, model[3])
    torch.testing.assert_close(outputs, reference, rtol=1e-5, atol=1e-6)
    stats = early_termination(model, x)
    assert set(stats) == {"0", "2"}  # "5" has no ReLU after it
    assert stats["0"].macs == 40 * 6 * 8 and stats["2"].macs == 40 * 8 * 5
    workload = dnnergy.trace(model, x, measure=True)
    adjusted = with_early_termination(workload, stats)
    for name, s in stats.items():
        assert adjusted[name].mac_density == pytest.approx(s.executed_nonzero / s.nonzero_macs)
        assert adjusted[name].w_density == workload[name].w_density  # the stored weights are unchanged
    full, early = (dnnergy.estimate(w, "eyeriss").by_layer() for w in (workload, adjusted))
    assert all(early[name] <= full[name] for name in stats)
    with pytest.raises(UserInputError, match="has no layers"):
        with_early_termination(workload, {"zz": stats["0"]})


def test_early_termination_rejects_negative_inputs():
    with pytest.raises(UserInputError, match="non-negative inputs"):
        simulate_early_termination(nn.Linear(2, 2), torch.tensor([[-1.0, 1.0]]))


def test_early_termination_record_valid_and_invalid():
    record = EarlyTermination("fc", 100, 60, 80, 50)
    assert (record.skipped, record.executed_fraction, record.nonzero_fraction) == (40, 0.6, 0.625)
    with pytest.raises(ValueError, match="EarlyTermination: name must be"):
        EarlyTermination("", 1, 1, 1, 1)
    with pytest.raises(ValueError, match="need 0 <= executed <= macs"):
        EarlyTermination("fc", 10, 11, 5, 5)
    with pytest.raises(ValueError, match="need executed_nonzero <= nonzero_macs"):
        EarlyTermination("fc", 10, 5, 4, 6)

"""Training loop: determinism, hooks (masks keep zeros exactly zero), the loss, accuracy, evaluation, configs."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from dnnergy.compress import Masks
from dnnergy.data import load_dataset, synthetic
from dnnergy.errors import UserInputError
from dnnergy.train import (
    FINE_TUNE,
    TrainConfig,
    TrainHistory,
    TrainHook,
    evaluate,
    fine_tune,
    train,
)
from dnnergy.train.loop import _shift


def _mlp(inputs: int = 64, hidden: int = 16, classes: int = 10, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(inputs, hidden), nn.ReLU(), nn.Dropout(0.1), nn.Linear(hidden, classes))


@pytest.fixture(scope="module")
def toy():
    return synthetic(n=200, shape=(1, 4, 4), classes=4, seed=0, noise=0.25)


def test_same_seed_gives_identical_weights_and_leaves_global_state_alone(toy):
    a, b, c = _mlp(16, 8, 4), _mlp(16, 8, 4), _mlp(16, 8, 4)
    rng_before, threads_before = torch.get_rng_state(), torch.get_num_threads()
    ha = train(a, toy, epochs=2, batch_size=16, seed=3)
    hb = train(b, toy, epochs=2, batch_size=16, seed=3)
    train(c, toy, epochs=2, batch_size=16, seed=4)
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key
    assert ha.losses == hb.losses and ha.val_accuracy == hb.val_accuracy
    assert not torch.equal(a[1].weight, c[1].weight)  # another seed: other shuffles and dropout
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert torch.get_num_threads() == threads_before
    assert not a.training  # returned in eval mode


def test_small_mlp_learns_digits_well_above_chance():
    digits = load_dataset("digits")
    model = _mlp(64, 32, 10)
    history = train(model, digits, epochs=10, lr=3e-3, batch_size=32, seed=0)
    # Chance is 10 %; a 64-32-10 MLP separates sklearn's digits easily.
    assert evaluate(model, digits) > 0.8
    assert len(history.losses) == 10 and history.losses[-1] < history.losses[0]
    assert len(history.val_accuracy) == 10 and history.val_accuracy[-1] > 0.8


def test_sgd_learns_the_synthetic_task(toy):
    model = _mlp(16, 16, 4)
    train(model, toy.train, epochs=10, lr=0.1, batch_size=16, optimizer="sgd")
    # Chance is 25 %. Two uniform templates in 16 pixels differ by about 0.41 * 4 = 1.6 (norm),
    # so a sample lies 0.8 from the midplane, 3.3 noise sigmas (0.25): nearly error-free.
    assert evaluate(model, toy) > 0.9


@settings(max_examples=12, deadline=None)
@given(density=st.floats(0.0, 1.0), mask_seed=st.integers(0, 1000), optimizer=st.sampled_from(["adam", "sgd"]))
def test_masked_weights_stay_exactly_zero(toy, density, mask_seed, optimizer):
    model = _mlp(16, 8, 4)
    gen = torch.Generator().manual_seed(mask_seed)
    masks = {name: torch.rand(p.shape, generator=gen) < density
             for name, p in model.named_parameters() if name.endswith("weight")}
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    hook = Masks(model)
    hook.update(masks)
    # weight_decay would move a zero weight on its own: the mask must undo it every step.
    train(model, toy, epochs=1, batch_size=32, lr=0.05, optimizer=optimizer, weight_decay=0.1, hooks=[hook])
    for name, p in model.named_parameters():
        if name in masks:
            assert torch.all(p[~masks[name]] == 0.0), name
            kept = masks[name]
            if kept.any():
                assert not torch.equal(p[kept], before[name][kept]), name
        else:
            assert not torch.equal(p, before[name]), name  # biases are unmasked and train


def test_fine_tune_uses_gentle_defaults_and_masks(toy):
    model = _mlp(16, 8, 4)
    mask = torch.zeros(8, 16, dtype=torch.bool)
    mask[:, :4] = True
    masks = Masks(model)
    masks.set("1.weight", mask)
    history = fine_tune(model, toy, hooks=[masks])
    assert (history.config.epochs, history.config.lr) == (3, 3e-4) and history.config == FINE_TUNE
    assert torch.count_nonzero(model[1].weight) <= 8 * 4
    assert fine_tune(model, toy, None, epochs=1).config.epochs == 1


# -- hooks and the loss ----------------------------------------------------------------------
class _Recorder(TrainHook):
    """Records every hook point it sees, in order."""

    def __init__(self):
        self.events = []

    def on_start(self, model):
        self.events.append("on_start")

    def before_forward(self, model):
        self.events.append("before_forward")

    def after_backward(self, model):
        assert all(p.grad is not None for p in model.parameters())  # gradients are there to filter
        self.events.append("after_backward")

    def after_step(self, model):
        self.events.append("after_step")

    def on_end(self, model):
        self.events.append("on_end")


def _toy_tensors(n=50):
    gen = torch.Generator().manual_seed(0)
    return TensorDataset(torch.rand(n, 1, 4, 4, generator=gen), torch.randint(0, 4, (n,), generator=gen))


def test_hooks_see_every_point_once_per_minibatch_in_order():
    recorder = _Recorder()
    train(_mlp(16, 8, 4), _toy_tensors(50), epochs=3, batch_size=16, hooks=[recorder])
    # ceil(50 / 16) = 4 minibatches per epoch (16, 16, 16, 2), 3 epochs: 12 steps
    assert recorder.events == ["on_start", *["before_forward", "after_backward", "after_step"] * 12, "on_end"]


def test_hooks_run_in_the_order_given():
    seen = []

    class Named(TrainHook):
        def __init__(self, name):
            self.name = name

        def after_step(self, model):
            seen.append(self.name)

    train(_mlp(16, 8, 4), _toy_tensors(20), epochs=1, batch_size=10, hooks=[Named("a"), Named("b")])
    assert seen == ["a", "b", "a", "b"]  # ceil(20 / 10) = 2 steps


def test_on_end_runs_when_training_raises():
    recorder = _Recorder()
    calls = []

    def failing_loss(outputs, targets, inputs):
        calls.append(len(targets))
        if len(calls) == 2:
            raise RuntimeError("boom")
        return F.cross_entropy(outputs, targets)

    with pytest.raises(RuntimeError, match="boom"):
        train(_mlp(16, 8, 4), _toy_tensors(50), epochs=3, batch_size=16, hooks=[recorder], loss_fn=failing_loss)
    # the first minibatch completes; the second raises inside the loss, after its before_forward
    assert recorder.events == ["on_start", "before_forward", "after_backward", "after_step", "before_forward", "on_end"]


def test_loss_fn_gets_outputs_targets_and_the_minibatch_inputs():
    data = _toy_tensors(50)
    seen = []

    def loss(outputs, targets, inputs):
        seen.append((outputs.shape, targets.clone(), inputs.clone()))
        return F.cross_entropy(outputs, targets)

    train(_mlp(16, 8, 4), data, epochs=1, batch_size=16, loss_fn=loss)
    assert [o for o, _, _ in seen] == [torch.Size([16, 4])] * 3 + [torch.Size([2, 4])]  # 50 = 16 + 16 + 16 + 2
    images, labels = data.tensors  # random images: every row is unique, so an input row names its sample
    used = []
    for _, targets, inputs in seen:  # each batch's inputs are the training images of its targets
        rows = [int(torch.nonzero((images == image).flatten(1).all(1))[0]) for image in inputs]
        assert torch.equal(labels[rows], targets)
        used += rows
    assert sorted(used) == list(range(50))  # one epoch shows every sample once


def test_loss_equal_to_cross_entropy_gives_identical_weights(toy):
    default, explicit = _mlp(16, 8, 4), _mlp(16, 8, 4)
    ha = train(default, toy, epochs=2, batch_size=16, seed=1)
    hb = train(explicit, toy, epochs=2, batch_size=16, seed=1, loss_fn=lambda o, t, x: F.cross_entropy(o, t))
    for key, value in default.state_dict().items():
        assert torch.equal(value, explicit.state_dict()[key]), key
    assert ha.losses == hb.losses


def test_a_loss_that_ignores_the_targets_is_the_one_trained(toy):
    default, shrunk = _mlp(16, 8, 4), _mlp(16, 8, 4)
    x = toy.train.tensors[0]

    def mean_abs_logit(model):
        with torch.no_grad():
            return float(model.eval()(x).abs().mean())

    start = mean_abs_logit(shrunk)
    train(default, toy, epochs=3, batch_size=16, lr=1e-2)
    train(shrunk, toy, epochs=3, batch_size=16, lr=1e-2, loss_fn=lambda o, t, inputs: o.square().mean())
    assert not torch.equal(default[1].weight, shrunk[1].weight)
    # pushed towards zero logits, the outputs shrink; cross-entropy training makes them larger
    assert mean_abs_logit(shrunk) < 0.25 * start and mean_abs_logit(default) > start


class _Logits(nn.Module):
    """Returns its input as logits, so predictions are set by the test data."""

    def forward(self, x):
        return x


def test_evaluate_counts_correct_top1_in_every_input_form():
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.0, 0.0, 1.0], [5.0, 0.0, 0.0]])
    labels = torch.tensor([0, 1, 2, 2])  # argmax is 0, 1, 2, 0: 3 of 4 right = 0.75
    model = _Logits().train()
    assert evaluate(model, (logits, labels)) == 0.75
    assert evaluate(model, TensorDataset(logits, labels), batch_size=3) == 0.75
    assert evaluate(model, DataLoader(TensorDataset(logits, labels), batch_size=2)) == 0.75
    assert model.training  # mode restored
    with pytest.raises(UserInputError, match="evaluation data is empty"):
        evaluate(model, [])
    with pytest.raises(UserInputError, match="as many labels as images"):
        evaluate(model, (logits, labels[:3]))


def test_shift_translates_each_image_within_k_pixels():
    images = torch.arange(2 * 3 * 5 * 5, dtype=torch.float32).reshape(2, 3, 5, 5) + 1
    out = _shift(images, 1, torch.Generator().manual_seed(0))

    def moved(img, dy, dx):  # brute force: out[i, j] = img[i + dy, j + dx], zero outside
        res = torch.zeros_like(img)
        for i in range(5):
            for j in range(5):
                if 0 <= i + dy < 5 and 0 <= j + dx < 5:
                    res[:, i, j] = img[:, i + dy, j + dx]
        return res

    for img, got in zip(images, out):
        assert any(torch.equal(got, moved(img, dy, dx)) for dy in (-1, 0, 1) for dx in (-1, 0, 1))


def test_shift_augmentation_trains_and_needs_images(toy):
    model = _mlp(16, 8, 4)
    train(model, toy, epochs=1, shift=1)
    flat = TensorDataset(torch.rand(8, 16), torch.zeros(8, dtype=torch.int64))
    with pytest.raises(UserInputError, match=r"shift augmentation needs images \(N, C, H, W\), got shape \(8, 16\)"):
        train(model, flat, shift=1)


def test_train_rejects_bad_masks_hooks_and_options(toy):
    model = _mlp(16, 8, 4)
    with pytest.raises(UserInputError, match="model has no parameter 'nope.weight'"):
        Masks(model).set("nope.weight", torch.ones(1, dtype=torch.bool))
    with pytest.raises(UserInputError, match=r"mask for '1.weight' has shape \(16, 8\), parameter has \(8, 16\)"):
        Masks(model).set("1.weight", torch.ones(16, 8, dtype=torch.bool))
    with pytest.raises(UserInputError, match="hooks must be TrainHook instances \\(got dict\\)"):
        train(model, toy, hooks=[{"1.weight": torch.ones(8, 16)}])
    with pytest.raises(UserInputError, match=r"unknown option\(s\) masks"):  # the old keyword is gone, not ignored
        train(model, toy, masks={"1.weight": torch.ones(8, 16)})
    with pytest.raises(UserInputError, match="unknown option\\(s\\) learning_rate; TrainConfig fields are epochs, lr"):
        train(model, toy, learning_rate=0.1)
    with pytest.raises(UserInputError, match="config must be a TrainConfig"):
        train(model, toy, {"epochs": 1})
    with pytest.raises(UserInputError, match="no trainable parameters"):
        train(nn.Flatten(), toy)


def test_diverging_loss_is_reported(toy):
    model = _mlp(16, 8, 4)
    with pytest.raises(UserInputError, match="loss diverged .* in epoch 1; lower lr"):
        train(model, toy, epochs=1, lr=1e30, optimizer="sgd")


def test_train_config_valid_and_coerced():
    config = TrainConfig(epochs=2, lr=0.1, optimizer="sgd")
    assert config.optimizer.value == "sgd"
    assert config.as_dict()["optimizer"] == "sgd" and config.as_dict()["epochs"] == 2


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"epochs": 0}, "TrainConfig: epochs must be an int >= 1"),
        ({"batch_size": True}, "TrainConfig: batch_size must be an int >= 1"),
        ({"seed": -1}, "TrainConfig: seed must be an int >= 0"),
        ({"shift": -1}, "TrainConfig: shift must be an int >= 0"),
        ({"threads": 0}, "TrainConfig: threads must be an int >= 1"),
        ({"lr": 0.0}, "TrainConfig: lr must be a finite number > 0"),
        ({"lr": math.inf}, "TrainConfig: lr must be a finite number > 0"),
        ({"momentum": -0.1}, "TrainConfig: momentum must be a finite number >= 0"),
        ({"weight_decay": "0.1"}, "TrainConfig: weight_decay must be a finite number"),
        ({"optimizer": "rmsprop"}, "TrainConfig: optimizer must be one of adam, sgd \\(got 'rmsprop'\\)"),
    ],
)
def test_train_config_rejects_invalid_fields(kwargs, match):
    with pytest.raises(UserInputError, match=match):
        TrainConfig(**kwargs)


def test_train_history_validation():
    config = TrainConfig(epochs=2)
    assert TrainHistory(config, (1.0, 0.5), (0.5, 0.75), 1.0, 1.0).losses == (1.0, 0.5)
    assert TrainHistory(config, (1.0, 0.5), (), 1.0, 1.0).val_accuracy == ()
    with pytest.raises(ValueError, match="TrainHistory: need one loss per epoch \\(2\\), got 1"):
        TrainHistory(config, (1.0,), (), 1.0, 1.0)
    with pytest.raises(ValueError, match="TrainHistory: val_accuracy must be empty or one per epoch, got 1"):
        TrainHistory(config, (1.0, 0.5), (0.5,), 1.0, 1.0)
    with pytest.raises(ValueError, match="TrainHistory: val_accuracy values must be in \\[0, 1\\]"):
        TrainHistory(config, (1.0, 0.5), (0.5, 1.5), 1.0, 1.0)

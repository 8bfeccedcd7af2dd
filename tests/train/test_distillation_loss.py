"""Hinton's distillation loss: a hand computation, the paper's high-temperature limit, alpha 0 = plain training."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from dnnergy.data import load_dataset
from dnnergy.errors import UserInputError
from dnnergy.train import DistillationLoss, distillation_loss, train

STUDENT = [[1.0, 2.0, 0.5], [0.2, -1.0, 3.0]]
TEACHER = [[2.0, 1.0, 0.0], [0.0, 0.0, 4.0]]
LABELS = [1, 2]


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_the_loss_matches_a_hand_computation():
    s, t, y, T, alpha = np.array(STUDENT), np.array(TEACHER), np.array(LABELS), 2.0, 0.7
    p_t, p_s = _softmax(t / T), _softmax(s / T)
    kl = np.sum(p_t * np.log(p_t / p_s)) / len(s)  # KL(teacher || student), summed over classes, mean over samples
    ce = -np.mean(np.log(_softmax(s)[np.arange(len(s)), y]))
    expected = alpha * T ** 2 * kl + (1 - alpha) * ce
    got = distillation_loss(torch.tensor(STUDENT), torch.tensor(TEACHER), torch.tensor(LABELS), T, alpha)
    assert float(got) == pytest.approx(expected, rel=1e-6)


def test_equal_logits_leave_only_the_label_term():
    z = torch.tensor(STUDENT)
    assert float(distillation_loss(z, z.clone(), torch.tensor(LABELS), 3.0, 1.0)) == pytest.approx(0.0, abs=1e-7)
    ce = nn.functional.cross_entropy(z, torch.tensor(LABELS))
    assert float(distillation_loss(z, z.clone(), torch.tensor(LABELS), 3.0, 0.4)) == pytest.approx(0.6 * float(ce), rel=1e-6)


def test_high_temperature_gradient_is_hintons_limit():
    # Hinton et al. 2015, Sec. 2.1: for T >> logits and zero-mean logits, dC/dz_i ~ (z_i - v_i) / (N T^2) with N
    # classes; the T^2 factor makes the soft term's gradient (z_i - v_i) / N, independent of T.
    z = torch.tensor([[0.3, -0.1, -0.2, 0.0]], requires_grad=True)
    v = torch.tensor([[-0.2, 0.4, 0.1, -0.3]])
    distillation_loss(z, v, torch.tensor([0]), temperature=100.0, alpha=1.0).backward()
    torch.testing.assert_close(z.grad, (z.detach() - v) / 4, rtol=1e-2, atol=1e-5)


def _mlp() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 24), nn.ReLU(), nn.Linear(24, 10))


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_alpha_zero_trains_bit_identically_to_cross_entropy(digits):
    teacher = _mlp()
    train(teacher, digits, epochs=1, lr=3e-3)
    plain, distilled = _mlp(), _mlp()
    train(plain, digits, epochs=2, lr=3e-3, seed=5, shift=1)
    train(distilled, digits, epochs=2, lr=3e-3, seed=5, shift=1, loss_fn=DistillationLoss(teacher, 4.0, 0.0))
    for a, b in zip(plain.parameters(), distilled.parameters()):
        assert torch.equal(a, b)


def test_the_teacher_is_frozen_and_the_soft_targets_change_training(digits):
    teacher = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.Dropout(0.5), nn.Linear(32, 10))
    teacher.train()
    before = copy.deepcopy(teacher.state_dict())
    loss = DistillationLoss(teacher, 4.0, 0.9)
    assert not teacher.training  # run in eval mode: no dropout noise in the soft targets
    plain, distilled = _mlp(), _mlp()
    train(plain, digits, epochs=1, lr=3e-3)
    train(distilled, digits, epochs=1, lr=3e-3, loss_fn=loss)
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in before.items())
    assert not torch.equal(plain[1].weight, distilled[1].weight)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"temperature": 0.0}, "temperature must be a finite number > 0"),
    ({"temperature": float("inf")}, "temperature must be a finite number > 0"),
    ({"alpha": 1.5}, "alpha must be a fraction in \\[0, 1\\]"),
])
def test_bad_settings_are_refused(kwargs, match):
    with pytest.raises(UserInputError, match=match):
        DistillationLoss(nn.Identity(), **kwargs)


def test_teacher_and_student_must_agree_on_classes():
    with pytest.raises(UserInputError, match="same shape"):
        distillation_loss(torch.zeros(2, 3), torch.zeros(2, 4), torch.tensor([0, 1]))

"""Optimal Brain Damage: the Hessian diagonal against a brute-force torch.autograd.functional.hessian, and the method ``obd``."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dnnergy.compress import CompressionContext, Masks, get_method, lowest_score_masks
from dnnergy.compress.obd import hessian_diagonal, obd_prune, obd_saliency
from dnnergy.data import synthetic
from dnnergy.errors import UserInputError

torch.set_num_threads(1)


def _tiny(act):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 5), act, nn.Linear(5, 3)).double()


def _data():
    gen = torch.Generator().manual_seed(1)
    return torch.randn(20, 4, generator=gen, dtype=torch.float64), torch.randint(0, 3, (20,), generator=gen)


def _brute_force_diagonal(model, x, y):
    """Full Hessian of the mean cross-entropy w.r.t. all parameters, then its diagonal per weight."""
    names = [n for n, _ in model.named_parameters()]
    params = [p.detach().clone() for p in model.parameters()]
    sizes = [p.numel() for p in params]

    def loss(flat):
        parts = {n: t.reshape(p.shape) for n, t, p in zip(names, flat.split(sizes), params)}
        return F.cross_entropy(torch.func.functional_call(model, parts, (x,)), y)

    hessian = torch.autograd.functional.hessian(loss, torch.cat([p.reshape(-1) for p in params]))
    return {n: d.reshape(p.shape) for n, d, p in zip(names, hessian.diagonal().split(sizes), params)}


@pytest.mark.parametrize("act", [nn.ReLU(), nn.Tanh()])
def test_exact_method_equals_brute_force(act):
    model = _tiny(act)
    x, y = _data()
    brute = _brute_force_diagonal(model, x, y)
    exact = hessian_diagonal(model, x, y, method="exact", batch_size=7)  # 3 unequal batches, weighted by size
    for name in ("0.weight", "2.weight"):
        torch.testing.assert_close(exact[name], brute[name], atol=1e-12, rtol=1e-9)


def test_gauss_newton_is_exact_for_relu_and_not_for_tanh():
    x, y = _data()
    relu = _tiny(nn.ReLU())
    brute = _brute_force_diagonal(relu, x, y)
    gn = hessian_diagonal(relu, x, y, batch_size=7)
    for name in ("0.weight", "2.weight"):
        torch.testing.assert_close(gn[name], brute[name], atol=1e-12, rtol=1e-9)  # piecewise-linear net
    tanh = _tiny(nn.Tanh())
    brute = _brute_force_diagonal(tanh, x, y)
    gn = hessian_diagonal(tanh, x, y)
    torch.testing.assert_close(gn["2.weight"], brute["2.weight"], atol=1e-12, rtol=1e-9)  # last layer: linear in w
    assert (gn["0.weight"] - brute["0.weight"]).abs().max() > 1e-4  # curvature term of tanh is dropped


def test_squared_loss_linear_model_closed_form():
    x = torch.tensor([[1.0], [2.0], [3.0]], dtype=torch.float64)
    model = nn.Linear(1, 1, bias=False).double()
    h = hessian_diagonal(model, x, torch.zeros(3, 1, dtype=torch.float64), loss_fn=F.mse_loss)
    assert h["weight"].item() == pytest.approx(2 * (1 + 4 + 9) / 3)  # d2/dw2 mean((w x)^2) = 2 mean(x^2)


def test_saliency_and_pruning_follow_lowest_saliency():
    model = _tiny(nn.ReLU())
    x, y = _data()
    brute = _brute_force_diagonal(model, x, y)
    saliency = obd_saliency(model, x, y)
    expected = 0.5 * brute["0.weight"] * model[0].weight.detach() ** 2  # s = h w^2 / 2
    torch.testing.assert_close(saliency["0.weight"], expected, atol=1e-12, rtol=1e-9)
    order = torch.argsort(expected.flatten(), stable=True)[:10]  # round(0.5 * 20)
    obd_prune(model, 0.5, x, y, layers=["0"]).remove()
    zeros = set(torch.nonzero(model[0].weight.flatten() == 0).flatten().tolist())
    assert zeros == set(order.tolist())


@pytest.mark.parametrize("kwargs, match", [({"method": "fisher"}, "method must be"), ({"n": 0}, "as many targets")])
def test_invalid_arguments(kwargs, match):
    x, y = _data()
    n = kwargs.pop("n", 20)
    with pytest.raises(UserInputError, match=match):
        hessian_diagonal(_tiny(nn.ReLU()), x[:n], y[:n] if n else y[:3], **kwargs)


# -- the registered method ----------------------------------------------------------------
@pytest.mark.parametrize("scope", ["layer", "global"])
def test_obd_method_prunes_what_the_primitives_choose(scope):
    data = synthetic(n=60, shape=(4,), classes=3, seed=0, noise=0.25)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3))
    original = {name: p.detach().clone() for name, p in model.named_parameters()}
    # by hand: saliency on the first 32 training images and their labels, lowest half dropped
    x, y = data.train.tensors[0][:32], data.train.tensors[1][:32]
    expected = lowest_score_masks(obd_saliency(model, x, y), 0.5, scope)
    context = CompressionContext(data, fine_tuning=None, max_accuracy_drop=None)
    result = get_method("obd")(model, context, sparsity=0.5, scope=scope, samples=32)
    masks = Masks(result.model)
    assert set(masks) == set(expected) == {"0.weight", "2.weight"}
    for name, keep in expected.items():
        assert torch.equal(masks[name], keep), name
        assert torch.equal(dict(result.model.named_parameters())[name].detach(), original[name] * keep), name
    # layer: round(0.5 * 20) + round(0.5 * 15) = 10 + 8 = 18 pruned; global: round(0.5 * 35) = 18
    assert sum(int((~keep).sum()) for keep in masks.values()) == 18
    assert [(s.strength, s.fine_tuned) for s in result.record.steps] == [(pytest.approx(18 / 35), False)]

"""energy_objective(per_image=True): batch-1 counts with densities measured on a batch."""

import torch
from torch import nn

import dnnergy
from dnnergy.compress import energy_objective


def test_per_image_energy_is_the_batch_1_estimate_with_batch_densities():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
    with torch.no_grad():
        model[0].weight[:, :8] = 0  # half of fc1's weights pruned
    images = torch.randn(8, 16)
    objective = energy_objective(images, "horowitz45", "weights_once", per_image=True, non_mac="exclude")
    # independently: densities from the batch trace, copied onto a batch-1 trace by hand
    batch = dnnergy.trace(model, images, measure=True)
    single = dnnergy.trace(model, (1, 16))
    fields = ("w_density", "i_density", "o_density", "w_stats", "i_stats", "o_stats")
    by_hand = single.replace_layers({l.name: {f: getattr(batch[l.name], f) for f in fields} for l in single})
    expected = dnnergy.estimate(by_hand, "horowitz45", "weights_once", non_mac="exclude").total
    assert objective(model) == expected
    assert batch["0"].w_density == 0.5
    # per image at batch 1 fetches every weight for one image: more than the batch's energy / 8
    whole = energy_objective(images, "horowitz45", "weights_once", non_mac="exclude")(model)
    assert objective(model) > whole / 8


def test_workload_and_price_give_the_objective_and_price_what_if_edits():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
    images = torch.randn(8, 16)
    objective = energy_objective(images, "horowitz45", "weights_once", per_image=True, non_mac="exclude")
    workload = objective.workload(model)
    assert [l.name for l in workload.mac_layers()] == ["0", "2"] and workload["0"].N == 1  # batch 1
    assert objective.price(workload).total == objective(model)
    # what if every weight of the first layer were zero: priced like the same edit estimated by hand
    edited = workload.replace_layers({"0": {"w_density": 0.0, "w_stats": None}})
    expected = dnnergy.estimate(edited, "horowitz45", "weights_once", non_mac="exclude").total
    assert objective.price(edited).total == expected < objective(model)

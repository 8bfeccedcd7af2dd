"""EnergyReport knows its batch: ``total`` is the whole pass, ``per_image`` one image's share (README's sparse example)."""

from __future__ import annotations

import pytest
from torch import nn

from dnnergy import estimate, trace
from dnnergy.energy import EnergyRecord, EnergyReport
from dnnergy.errors import UserInputError


def test_per_image_divides_the_batch_by_hand():
    # Linear(784, 300) on two images, horowitz45, weights_once: each weight read once per batch from DRAM (640 pJ)
    # and SRAM (5 pJ), fp32 MACs at 3.7 + 0.9 = 4.6 pJ, inputs and outputs through SRAM (5 pJ). Per image:
    #   MACs 235,200 * 4.6 = 1,081,920; weights 235,200 * 645 / 2 = 75,852,000; ifmap 2 * 1,568 * 5 / 2 = 7,840;
    #   ofmap 2 * 600 * 5 / 2 = 3,000 -> 76,944,760 pJ per image, 153,889,520 pJ for the batch
    report = estimate(trace(nn.Linear(784, 300), (2, 784), name="fc"), "horowitz45", "weights_once")
    assert report.batch == 2
    assert report.total == pytest.approx(153_889_520)
    assert report.per_image == pytest.approx(76_944_760)
    data = report.to_dict()
    assert data["batch"] == 2 and data["per_image"] == pytest.approx(76_944_760)
    assert report.normalized().batch == 2


def test_one_image_is_its_own_batch():
    report = estimate(trace(nn.Linear(784, 300), (1, 784)), "horowitz45", "weights_once")
    # MACs 235,200 * 4.6 = 1,081,920; weights 235,200 * 645 = 151,704,000; the input written and read once in SRAM,
    # 784 * 2 * 5 = 7,840; the output likewise, 300 * 2 * 5 = 3,000
    assert report.batch == 1 and report.per_image == report.total == pytest.approx(1_081_920 + 151_704_000 + 7_840 + 3_000)


@pytest.mark.parametrize("batch", [0, -1, 1.5, True])
def test_batch_must_be_a_positive_int(batch):
    with pytest.raises(UserInputError, match="batch must be a positive int"):
        EnergyReport((), "pJ", batch=batch)


def test_reports_of_different_batches_do_not_add():
    record = (EnergyRecord("fc", "fc", "compute", "MAC", 1, 16, 1.0),)
    assert (EnergyReport(record, "pJ", batch=4) + EnergyReport(record, "pJ", batch=4)).batch == 4
    with pytest.raises(UserInputError, match="batches 4 and 1"):
        EnergyReport(record, "pJ", batch=4) + EnergyReport(record, "pJ")

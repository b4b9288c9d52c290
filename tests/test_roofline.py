"""The roofline's work model, against the report's CNN counted by hand."""

from __future__ import annotations

import pytest

from reproduction.roofline import epoch_bounds, epoch_work, training_costs

# 28x28x1 -> conv 3x3 (26x26x8 = 5408) -> pool 2 (13x13x8 = 1352) -> dense 10
CONV_FLOPS = 2 * 9 * 26 * 26 * 8  # 97,344: a multiply-add per filter tap per output
DENSE_FLOPS = 2 * 1352 * 10  # 27,040
WEIGHTS = 9 * 8 + 8 + 1352 * 10 + 10 + 2  # conv kernel, conv bias, dense kernel, dense bias, gamma and beta


def test_arithmetic_per_image_is_the_hand_count():
    costs = {(c.layer, c.direction): c for c in training_costs()}
    assert costs["conv", "forward"].flops == CONV_FLOPS
    assert costs["conv", "backward"].flops == CONV_FLOPS  # filter gradient only, no input gradient
    assert costs["dense", "backward"].flops == 2 * DENSE_FLOPS  # weight and input gradients
    assert costs["conv", "forward"].bytes == 4 * (784 + 5408)
    assert costs["max pool", "backward"].bytes == 4 * (5408 + 1352 + 1352 + 5408)


def test_per_update_work_shrinks_with_the_batch_and_per_image_work_does_not():
    costs = training_costs(optimizer_slots=1)
    per_image = sum(c.flops for c in costs if c.direction != "update")
    per_update = sum(c.flops for c in costs if c.direction == "update")
    assert per_update == 6 * WEIGHTS
    for batch in (100, 500, 2500):
        flops, _ = epoch_work(costs, 60_000, batch)
        assert flops == 60_000 * per_image + (60_000 // batch) * per_update
    small, large = epoch_work(costs, 60_000, 100)[1], epoch_work(costs, 60_000, 2500)[1]
    assert large < small


def test_the_roofline_is_the_larger_bound():
    costs = training_costs()
    bounds = epoch_bounds(costs, 60_000, 100, flops_per_second=1e11, bytes_per_second=1e10)
    flops, traffic = epoch_work(costs, 60_000, 100)
    assert bounds["compute_seconds"] == pytest.approx(flops / 1e11)
    assert bounds["memory_seconds"] == pytest.approx(traffic / 1e10)
    assert bounds["bound_seconds"] == max(bounds["compute_seconds"], bounds["memory_seconds"])
    with pytest.raises(ValueError, match="rates must be positive"):
        epoch_bounds(costs, 60_000, 100, 0.0, 1e10)

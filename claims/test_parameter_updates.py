"""Claim parameter-updates: increase needs the fewest updates, then hybrid, then decay.

Red if a schedule's batch sizes or phase lengths are off, or if the update rule stops being ceil(N/B)
per epoch (which is what the engine does: the last partial batch is kept).
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given

from reproduction import claims
from reproduction.schedules import SCHEDULES
from reproduction.strategies import schedule_args


@pytest.mark.parametrize("params", claims.pytest_params("parameter-updates"))
def test_claim_in_the_report_setting(params, judge):
    judge(claims.evaluate("parameter-updates", {}, ())[params])


@pytest.mark.parametrize("name, expected", [("decay", 3600), ("hybrid", 1680), ("increase", 1488),
                                            ("constant", 3600), ("increase-initial-lr", 298),
                                            ("increase-momentum", 298)])
def test_report_setup_counts(name, expected):
    s = SCHEDULES[name](base_lr=0.1, base_batch=100, factor=5, steps=3, epochs_per_step=2)
    assert s.parameter_updates(60_000) == expected


@given(schedule_args())
def test_order_and_closed_form(args):
    kwargs, n, _ = args
    b, k, steps, e = kwargs["base_batch"], kwargs["factor"], kwargs["steps"], kwargs["epochs_per_step"]
    decay, hybrid, increase = (SCHEDULES[s](**kwargs).parameter_updates(n) for s in ("decay", "hybrid", "increase"))
    assert decay == steps * e * math.ceil(n / b)
    assert increase == e * sum(math.ceil(n / (b * k**i)) for i in range(steps))
    expected_hybrid = e * (math.ceil(n / b) + (steps - 1) * math.ceil(n / (b * k))) if steps > 1 else decay
    assert hybrid == expected_hybrid
    assert increase <= hybrid <= decay
    # equality only where nothing grows: factor 1, a single phase, or (hybrid = increase) two phases
    assert (hybrid == decay) == (k == 1 or steps == 1 or math.ceil(n / b) == math.ceil(n / (b * k)))
    if steps >= 3 and k > 1 and b * k < n:
        assert increase < hybrid


@given(schedule_args())
def test_batches_stay_multiples_of_the_ghost_batch(args):
    kwargs, _, _ = args
    kwargs = {**kwargs, "base_batch": 10 * max(1, kwargs["base_batch"] // 10)}
    for name in SCHEDULES:
        for p in SCHEDULES[name](**kwargs).phases:
            assert p.batch_size % 10 == 0

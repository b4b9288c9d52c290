"""Properties of the schedules over hypothesis-generated arguments: equal noise scale, update counts in
closed form, the paper 5.2 variants (the claims noise-scale-equal and parameter-updates check the report's
setting)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from support import schedule_args

from reproduction.schedules import MAIN_SCHEDULES, SCHEDULES, cap_batch, increase_batch


def _build(kwargs):
    return {name: SCHEDULES[name](**kwargs) for name in MAIN_SCHEDULES}


@given(schedule_args())
def test_equal_noise_scale_every_epoch(args):
    kwargs, n, m = args
    s = _build(kwargs)
    assert {x.epochs for x in s.values()} == {kwargs["steps"] * kwargs["epochs_per_step"]}
    ref = s["decay"].noise_scale(n, m)
    for name in ("hybrid", "increase"):
        for g, g_ref in zip(s[name].noise_scale(n, m), ref, strict=True):
            assert math.isclose(g, g_ref, rel_tol=1e-12)


@given(schedule_args())
def test_exact_noise_scale_within_the_largest_batch_factor(args):
    """Exact g = eps (N/B - 1)/(1 - m) is the approximation times (N/B - 1)/(N/B), so a schedule's exact g
    lies between (N/Bmax - 1)/(N/Bmax) and 1 times the common approximate g."""
    kwargs, n, m = args
    s = _build(kwargs)
    ref_approx = s["decay"].noise_scale(n, m)
    for name in ("hybrid", "increase"):
        b_max = max(p.batch_size for p in s[name].phases)
        lower = (n / b_max - 1) / (n / b_max)
        for g, g_ref_approx in zip(s[name].noise_scale(n, m, exact=True), ref_approx, strict=True):
            assert g <= g_ref_approx * (1 + 1e-12)
            assert g >= lower * g_ref_approx * (1 - 1e-12)


@given(schedule_args(max_factor=6))
def test_effective_lr_variants_keep_the_noise_scale(args):
    kwargs, n, _ = args
    base = SCHEDULES["increase"](**kwargs)
    boosted = SCHEDULES["increase-initial-lr"](**kwargs, initial_factor=5)
    momentum = SCHEDULES["increase-momentum"](**kwargs, momentum=0.9, new_momentum=0.98)
    n = n * 5  # the variants multiply every batch by 5
    for g, g_boost, g_mom in zip(
        base.noise_scale(n, 0.9), boosted.noise_scale(n, 0.9), momentum.noise_scale(n, 0.9), strict=True
    ):
        assert math.isclose(g, g_boost, rel_tol=1e-12)
        assert math.isclose(g, g_mom, rel_tol=1e-12)  # momentum 0.98 is the schedule's own
    assert momentum.momentum == 0.98


def test_paper_cifar10_cap_keeps_the_noise_scale():
    """Paper Sec. 5 on CIFAR-10: B 128 -> 640 -> 3200 -> 16000; capped at 5120 the last phase decays eps by
    16000 / 5120 instead, keeping g."""
    s = increase_batch(base_lr=0.1, base_batch=128, factor=5, steps=4, epochs_per_step=1)
    assert [p.batch_size for p in s.phases] == [128, 640, 3200, 16000]
    capped = cap_batch(s, 5120)
    assert [p.batch_size for p in capped.phases] == [128, 640, 3200, 5120]
    assert capped.phases[-1].learning_rate == pytest.approx(0.1 * 5120 / 16000)
    for g, g_cap in zip(s.noise_scale(50_000), capped.noise_scale(50_000), strict=True):
        assert g == pytest.approx(g_cap, rel=1e-12)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("decay", 3600),
        ("hybrid", 1680),
        ("increase", 1488),
        ("constant", 3600),
        ("increase-initial-lr", 298),
        ("increase-momentum", 298),
    ],
)
def test_report_setup_counts(name, expected):
    s = SCHEDULES[name](base_lr=0.1, base_batch=100, factor=5, steps=3, epochs_per_step=2)
    assert s.parameter_updates(60_000) == expected


@given(schedule_args())
def test_order_and_closed_form(args):
    kwargs, n, _ = args
    b, k, steps, e = kwargs["base_batch"], kwargs["factor"], kwargs["steps"], kwargs["epochs_per_step"]
    decay, hybrid, increase = (
        SCHEDULES[s](**kwargs).parameter_updates(n) for s in ("decay", "hybrid", "increase")
    )
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

"""Schedules as data: exact values, validation, the public interface, and a stateful walk through epochs."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from support import schedule_args

from reproduction.schedules import (
    MAIN_SCHEDULES,
    SCHEDULES,
    Phase,
    Schedule,
    get_schedule,
    increased_momentum,
)


def test_public_interface_from_the_readme():
    s = SCHEDULES["increase"](base_lr=0.1, base_batch=100, factor=5, steps=3, epochs_per_step=2)
    assert s.epochs == 6
    assert [s.learning_rate(e) for e in range(6)] == [0.1] * 6
    assert [s.batch_size(e) for e in range(6)] == [100, 100, 500, 500, 2500, 2500]
    assert s.parameter_updates(n_examples=60_000) == 1488
    assert len(s.noise_scale(n_examples=60_000, momentum=0.0)) == 6


@pytest.mark.parametrize(
    "name, lrs, batches",
    [
        ("decay", [0.1, 0.1, 0.02, 0.02, 0.004, 0.004], [100] * 6),
        ("hybrid", [0.1, 0.1, 0.1, 0.1, 0.02, 0.02], [100, 100, 500, 500, 500, 500]),
        ("increase", [0.1] * 6, [100, 100, 500, 500, 2500, 2500]),
        ("constant", [0.1] * 6, [100] * 6),
    ],
)
def test_report_schedules_exactly(name, lrs, batches):
    s = SCHEDULES[name](base_lr=0.1, base_batch=100, factor=5, steps=3, epochs_per_step=2)
    assert [s.learning_rate(e) for e in range(6)] == pytest.approx(lrs, rel=1e-15)
    assert [s.batch_size(e) for e in range(6)] == batches


def test_report_hybrid_as_its_notebook_applied_it():
    """The report's scheduler: B 100 at 0.05, then B 500 at 0.05, then B 500 at 0.01 = our hybrid(0.05)."""
    s = SCHEDULES["hybrid"](base_lr=0.05, base_batch=100, factor=5, steps=3, epochs_per_step=2)
    assert [(p.learning_rate, p.batch_size) for p in s.phases] == [(0.05, 100), (0.05, 500), (0.01, 500)]


def test_unknown_schedule_lists_the_known_names():
    with pytest.raises(ValueError, match=r"schedule='cosine': unknown; known schedules are \['constant', "):
        get_schedule("cosine")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"base_lr": 0}, "base_lr=0"),
        ({"base_lr": float("nan")}, "base_lr=nan"),
        ({"base_batch": 0}, "base_batch=0"),
        ({"factor": 2.5}, "factor=2.5"),
        ({"steps": 0}, "steps=0"),
        ({"epochs_per_step": -1}, "epochs_per_step=-1"),
        ({"base_batch": True}, "base_batch=True"),
    ],
)
@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_invalid_arguments_never_make_a_schedule(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        SCHEDULES[name](**kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"epochs": 0, "learning_rate": 0.1, "batch_size": 10}, "Phase.epochs=0"),
        ({"epochs": 1, "learning_rate": -0.1, "batch_size": 10}, "Phase.learning_rate=-0.1"),
        ({"epochs": 1, "learning_rate": 0.1, "batch_size": 0}, "Phase.batch_size=0"),
    ],
)
def test_phase_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Phase(**kwargs)


def test_schedule_validation():
    with pytest.raises(ValueError, match="Schedule.phases"):
        Schedule("x", ())
    with pytest.raises(ValueError, match="Schedule.momentum=1.0"):
        Schedule("x", (Phase(1, 0.1, 10),), momentum=1.0)
    s = Schedule("x", (Phase(1, 0.1, 10),))
    with pytest.raises(ValueError, match=r"epoch=1: expected an integer in \[0, 1\)"):
        s.batch_size(1)
    with pytest.raises(ValueError, match="batch size 10 exceeds the 5 examples"):
        s.parameter_updates(5)


def test_increased_momentum_needs_a_whole_multiplier():
    with pytest.raises(ValueError, match="new_momentum=0.97"):
        increased_momentum(momentum=0.9, new_momentum=0.97)


@given(schedule_args())
def test_every_schedule_derives_consistently(args):
    kwargs, n, m = args
    for name in MAIN_SCHEDULES:
        s = SCHEDULES[name](**kwargs)
        assert len(s.per_epoch()) == s.epochs == sum(p.epochs for p in s.phases)
        assert s.parameter_updates(n) == sum(s.updates_per_epoch(n))
        assert all(g > 0 for g in s.noise_scale(n, m))


class ScheduleWalk(RuleBasedStateMachine):
    """Step through the three schedules epoch by epoch, checking the invariants at every step."""

    @initialize(args=schedule_args())
    def build(self, args):
        self.kwargs, self.n, self.m = args
        self.s = {name: SCHEDULES[name](**self.kwargs) for name in MAIN_SCHEDULES}
        self.epoch, self.updates = 0, dict.fromkeys(MAIN_SCHEDULES, 0)

    @precondition(lambda self: self.epoch < self.s["decay"].epochs)
    @rule()
    def step(self):
        g = {}
        for name, s in self.s.items():
            b, lr = s.batch_size(self.epoch), s.learning_rate(self.epoch)
            self.updates[name] += math.ceil(self.n / b)
            g[name] = lr * self.n / (b * (1 - self.m))
        assert math.isclose(g["hybrid"], g["decay"], rel_tol=1e-12)
        assert math.isclose(g["increase"], g["decay"], rel_tol=1e-12)
        self.epoch += 1

    @rule(data=st.data())
    def look_up_any_epoch(self, data):
        e = data.draw(st.integers(0, self.s["decay"].epochs - 1))
        for s in self.s.values():
            assert s.per_epoch()[e] == Phase(1, s.learning_rate(e), s.batch_size(e))

    @precondition(lambda self: self.epoch == self.s["decay"].epochs)
    @rule()
    def totals_match_the_closed_form(self):
        for name, s in self.s.items():
            assert self.updates[name] == s.parameter_updates(self.n)

    @invariant()
    def counts_ordered_and_batches_monotone(self):
        if not hasattr(self, "s"):
            return
        assert self.updates["increase"] <= self.updates["hybrid"] <= self.updates["decay"]
        for s in self.s.values():
            sizes = [s.batch_size(e) for e in range(self.epoch)]
            assert sizes == sorted(sizes)


TestScheduleWalk = ScheduleWalk.TestCase


@given(st.integers(1, 5))
def test_constant_never_reduces_noise(steps):
    s = SCHEDULES["constant"](base_lr=0.1, base_batch=100, factor=5, steps=steps, epochs_per_step=2)
    assert len(set(s.noise_scale(60_000))) == 1


def test_a_new_schedule_is_one_entry(monkeypatch):
    """What CONTRIBUTING.md promises: a factory of phases and one SCHEDULES entry make a schedule that every
    derived quantity (updates, noise scale) and the run config accept; nothing else to edit."""
    from reproduction.config import RunConfig

    def warm_restart(base_lr=0.1, base_batch=100, factor=5, steps=3, epochs_per_step=2) -> Schedule:
        return Schedule(
            "warm-restart",
            (Phase(epochs_per_step, base_lr, base_batch), Phase(4, base_lr / factor, base_batch)),
        )

    monkeypatch.setitem(SCHEDULES, "warm-restart", warm_restart)
    schedule = get_schedule("warm-restart")(base_lr=0.1)
    assert schedule.updates_per_epoch(60_000) == [600] * 6
    assert schedule.noise_scale(60_000) == pytest.approx([60.0] * 2 + [12.0] * 4)
    assert RunConfig("sgd", "warm-restart", 0).schedule == "warm-restart"

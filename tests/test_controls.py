"""Negative controls: a control holds only when the equivalence test refutes it on the predicted side;
a control that trains like decay (an engine ignoring the schedule or the batch) turns it red."""

from __future__ import annotations

import math

import pytest

from reproduction import claims, stats
from reproduction.config import RunConfig
from reproduction.optimizers import OPTIMIZERS
from reproduction.training import EpochRecord, RunResult

SEEDS = (0, 1, 2)


def _run(config, accuracy, loss):
    return RunResult(config, (EpochRecord(0, 0.1, 100, 600, 1.0, 0.1, loss, loss, accuracy),), {})


def _runs(shift):
    """decay at 97.5% / loss 0.05 (plus seed jitter); each control moved by ``shift[name]`` =
    (accuracy points, train loss)."""
    runs = {}
    for o in OPTIMIZERS:
        for k in SEEDS:
            jitter = 0.0005 * k
            runs[RunConfig(o, "decay", k)] = _run(
                RunConfig(o, "decay", k), 0.975 + jitter / 10, 0.05 + jitter
            )
            for c in claims.CONTROLS:
                d_acc, d_loss = shift[c.name]
                jitter_c = 0.0003 * ((k * 7) % 3)  # not the same jitter as decay: the differences have spread
                runs[c.config(o, k)] = _run(
                    c.config(o, k), 0.975 + (d_acc / 100) + jitter_c / 10, 0.05 + d_loss + jitter_c
                )
    return runs


PREDICTED = {"constant": (0.0, 0.02), "eps5": (-3.0, 0.0), "b2500": (-4.0, 0.0)}


def test_controls_beyond_their_margins_hold():
    verdicts = claims.evaluate("negative-control", _runs(PREDICTED), SEEDS)
    assert set(verdicts) == set(claims.get_claim("negative-control").params)
    assert all(v.verdict == stats.HOLDS for v in verdicts.values()), [v.summary() for v in verdicts.values()]


@pytest.mark.parametrize("name", [c.name for c in claims.CONTROLS])
def test_a_control_that_trains_like_decay_is_red(name):
    """What an engine that ignores the schedule (constant = decay) or the batch size (b2500 = decay)
    would produce: the control equals decay, so the margin discriminates nothing."""
    shift = dict(PREDICTED, **{name: (0.0, 0.0)})
    verdicts = claims.evaluate("negative-control", _runs(shift), SEEDS)
    for o in OPTIMIZERS:
        v = verdicts[f"{o}-{name}"]
        assert v.verdict == stats.REFUTED and "does not tell" in v.detail, v.summary()


def test_a_control_beyond_the_margin_on_the_wrong_side_is_red():
    """Pre-registered direction: a 'constant' run with a *lower* loss than decay is not the predicted effect."""
    verdicts = claims.evaluate("negative-control", _runs(dict(PREDICTED, constant=(0.0, -0.02))), SEEDS)
    assert verdicts["sgd-constant"].verdict == stats.REFUTED


def test_a_control_just_inside_the_margin_is_red_not_a_pass():
    margin = claims.control_margin("adam", "train_loss")[0]
    verdicts = claims.evaluate(
        "negative-control", _runs(dict(PREDICTED, constant=(0.0, margin * 0.9))), SEEDS
    )
    assert verdicts["adam-constant"].verdict == stats.REFUTED


def test_a_diverged_control_is_named_and_red():
    runs = _runs(PREDICTED)
    bad = claims.CONTROLS[0].config("momentum", 1)
    runs[bad] = _run(bad, 0.098, math.nan)
    v = claims.evaluate("negative-control", runs, SEEDS)["momentum-constant"]
    assert v.verdict == stats.REFUTED and "diverged" in v.detail


def test_equivalence_verdicts_say_what_they_could_refute():
    """refutable_beyond on every TOST verdict: at least the margin, and finite with spread."""
    v = stats.Verdict.of(
        stats.tost_paired([0.1, -0.05, 0.02], margin=1.0, alpha_refute=0.05 / 8), "c", "p", "b"
    )
    assert 1.0 < v.refutable_beyond < math.inf and "could refute" in v.summary()


def test_controls_are_in_the_plan_for_every_optimizer():
    configs = claims.required_configs(SEEDS)
    for o in OPTIMIZERS:
        for c in claims.CONTROLS:
            assert all(c.config(o, k) in configs for k in SEEDS)
    b2500 = next(c for c in claims.CONTROLS if c.name == "b2500").config("sgd", 0).build_schedule()
    assert b2500.parameter_updates(60_000) == 144 and b2500.epochs == 6
    eps5 = next(c for c in claims.CONTROLS if c.name == "eps5").config("momentum", 0).build_schedule()
    assert eps5.learning_rate(0) == pytest.approx(OPTIMIZERS["momentum"].base_lr / 5)


def test_high_noise_claims_and_control():
    """At the pre-registered high-noise setting: equivalent schedules hold, and a constant run that
    trains like decay turns the control red."""
    from reproduction.annealing import HIGH_NOISE, high_noise_margin

    def runs(constant_shift):
        out = {}
        for k in SEEDS:
            for s, loss in (
                ("decay", 0.050),
                ("hybrid", 0.0502),
                ("increase", 0.0498),
                ("constant", 0.050 + constant_shift),
            ):
                jitter = 0.0002 * ((k * (len(s) + 1)) % 3)
                out[HIGH_NOISE.config(s, k)] = _run(
                    HIGH_NOISE.config(s, k), 0.978 + jitter / 10, loss + jitter
                )
        return out

    assert high_noise_margin() == pytest.approx(0.00552, abs=1e-5)
    verdicts = claims.evaluate("high-noise", runs(0.013), SEEDS)
    assert set(verdicts) == set(claims.get_claim("high-noise").params)
    assert all(v.verdict == stats.HOLDS for v in verdicts.values()), [v.summary() for v in verdicts.values()]
    assert claims.evaluate("high-noise", runs(0.0), SEEDS)["constant-control"].verdict == stats.REFUTED


def test_anneal_comparison_pairs_by_seed():
    from reproduction import annealing

    setting = annealing.Setting("sgd", 0.1, 50)
    runs = {}
    for k in SEEDS:
        runs[setting.config("decay", k)] = _run(setting.config("decay", k), 0.978, 0.05 + 0.001 * k)
        runs[setting.config("constant", k)] = _run(setting.config("constant", k), 0.972, 0.063 + 0.001 * k)
    c = annealing.compare(setting, runs, SEEDS)
    assert c.loss[0] == pytest.approx(0.013) and c.accuracy[0] == pytest.approx(-0.6)
    assert c.diverged == 0 and c.decay_loss_sd == pytest.approx(0.001)
    assert setting.initial_noise_scale() == pytest.approx(120.0)
    assert "sgd-lr0.1-b50 | 120 |" in "\n".join(annealing.table([c]))
    with pytest.raises(ValueError, match="base_batch=0"):
        annealing.Setting("sgd", 0.1, 0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(quantity="loss"), "Control.quantity='loss'"),
        (dict(direction=0), "Control.direction=0"),
        (dict(lr_divisor=0), "Control.lr_divisor=0"),
        (dict(schedule="cosine"), "schedule='cosine'"),
    ],
)
def test_a_control_is_validated_on_construction(kwargs, message):
    fields = dict(name="x", description="d", quantity="train_loss", direction=1, schedule="constant") | kwargs
    with pytest.raises(ValueError, match=message):
        claims.Control(**fields)


def test_the_quick_profile_leaves_out_only_the_runs_of_its_full_only_claims():
    from reproduction.claims.plan import baseline_configs, effective_lr_configs, report_configs

    quick, full = claims.required_configs(SEEDS, full=False), claims.required_configs(SEEDS)
    assert set(full) - set(quick) == set(
        effective_lr_configs(SEEDS) + baseline_configs(SEEDS) + report_configs(SEEDS)
    )
    assert [c for c in full if c in quick] == quick  # same training order
    assert not claims.get_profile("quick").full and claims.get_profile("full").full
    assert {cid for cid in claims.CLAIMS if not claims.in_profile(cid, full=False)} == {
        "effective-lr",
        "baseline-adam",
        "report-as-run",
    }

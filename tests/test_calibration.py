"""The pre-registration files: each built-in workload's file matches today's settings and code version, every
margin follows from its recorded losses, the controls' power follows from their differences, and a stale or
tampered file is refused with a clear error."""

from __future__ import annotations

import copy
import json
from types import SimpleNamespace

import numpy as np
import pytest

from reproduction import calibration
from reproduction.config import CODE_VERSION
from reproduction.workloads import CALIBRATION_SEEDS, get_workload, known_workloads

MNIST = get_workload("mnist")


@pytest.fixture()
def committed():
    """The committed file as of this code version (its version checked by the first test alone)."""
    return dict(json.loads(MNIST.preregistration.read_text()), code_version=CODE_VERSION)


UNCALIBRATED = (
    "cifar10",
)  # for GPUs, never run here: the claims refuse it until calibrated (test_cifar10.py)


@pytest.mark.parametrize("name", [n for n in known_workloads() if n not in UNCALIBRATED])
def test_committed_preregistration_matches_the_workload_and_the_code(name):
    """Retuning a base rate, changing the model, or bumping the code version without `reproduction calibrate`
    turns this red."""
    workload = get_workload(name)
    margins = calibration.read_margins(workload)
    assert set(margins) == set(workload.optimizers)
    for m in margins.values():
        assert len(m.seeds) >= 10 and min(m.seeds) >= CALIBRATION_SEEDS
        assert 0 < m.margin == pytest.approx(2 * m.sd)
    content = calibration.read_preregistration(workload)
    assert set(content["controls"]) == {
        f"{o}-{c.name}" for o in workload.optimizers for c in workload.controls
    }


def test_a_retuned_rate_is_refused(committed):
    stale = copy.deepcopy(committed)
    stale["optimizers"]["sgd"]["setting"]["base_lr"] = 0.2
    with pytest.raises(ValueError, match=r"the 'sgd' margin was measured with .*run `reproduction calibrate"):
        calibration.load_margins(stale, MNIST)


def test_another_code_version_is_refused(committed):
    old = dict(committed, code_version="1")
    with pytest.raises(ValueError, match=f"code version '1', the code is at '{CODE_VERSION}'"):
        calibration.load_margins(old, MNIST)


def test_a_margin_that_does_not_follow_from_its_losses_is_refused(committed):
    tampered = copy.deepcopy(committed)
    tampered["optimizers"]["adam"]["margin"] *= 3
    with pytest.raises(ValueError, match="optimizers.adam: sd/margin do not follow from its losses"):
        calibration.load_margins(tampered, MNIST)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda c: c["optimizers"].pop("nesterov"), "no margin for optimizer 'nesterov'"),
        (lambda c: c.update(optimizers=5), "field 'optimizers' must be an object"),
        (
            lambda c: c["optimizers"]["sgd"].pop("final_train_loss"),
            "optimizers.sgd: missing or malformed field",
        ),
        (lambda c: c["optimizers"]["sgd"].update(sd="x"), "optimizers.sgd: missing or malformed field"),
    ],
    ids=["missing-optimizer", "wrong-type", "missing-field", "bad-number"],
)
def test_a_malformed_file_is_a_clear_error(committed, mutate, message):
    broken = copy.deepcopy(committed)
    mutate(broken)
    with pytest.raises(ValueError, match=message):
        calibration.load_margins(broken, MNIST)


def test_a_missing_or_unreadable_file_is_a_clear_error(tmp_path):
    import dataclasses

    missing = dataclasses.replace(MNIST, preregistration=tmp_path / "nope.json")
    with pytest.raises(
        ValueError, match="nope.json is missing; run `reproduction calibrate --workload mnist`"
    ):
        calibration.read_margins(missing)
    (tmp_path / "bad.json").write_bytes(b"\xff{")
    with pytest.raises(ValueError, match="bad.json is not valid JSON"):
        calibration.read_margins(dataclasses.replace(MNIST, preregistration=tmp_path / "bad.json"))


def _synthetic(n: int, workload=MNIST):
    configs = calibration.calibration_configs(workload, n)
    values = {}
    for i, c in enumerate(configs):
        loss = 0.05 + 0.001 * (i % 7)
        accuracy = 0.975
        if c.schedule == "constant" and c.base_batch == workload.base_batch:
            loss += 0.02  # the constant control: well above decay
            accuracy -= 0.01 if workload.accuracy_equivalence else 0.0  # one point below there
        if c.base_lr is not None or c.base_batch != workload.base_batch:
            accuracy -= 0.05  # eps5 and b2500: 5 points below
        final = SimpleNamespace(train_loss=loss, test_accuracy=accuracy + 0.0001 * (i % 3))
        values[c] = SimpleNamespace(final=final, epochs=[final])
    return values


def test_build_calibration_is_two_sample_sds_and_round_trips():
    n = 6
    runs = _synthetic(n)
    content = json.loads(json.dumps(calibration.build_calibration(MNIST, runs, n)))
    margins = calibration.load_margins(content, MNIST)
    for o in MNIST.optimizers:
        mine = [runs[MNIST.config(o, "decay", CALIBRATION_SEEDS + k)].final.train_loss for k in range(n)]
        assert margins[o].sd == pytest.approx(np.std(mine, ddof=1))
        assert margins[o].margin == pytest.approx(2 * np.std(mine, ddof=1))
    entry = content["controls"]["sgd-b2500"]
    assert entry["discriminates"] and entry["seeds_needed"] >= 2 and entry["level"] == pytest.approx(0.05 / 8)
    assert content["seeds_needed"] == max(
        e["seeds_needed"] for e in content["controls"].values() if e["discriminates"]
    )


def test_a_control_inside_its_margin_is_preregistered_as_not_discriminating():
    n = 6
    runs = _synthetic(n)
    for c in calibration.calibration_configs(MNIST, n):
        if c.optimizer == "adam" and c.base_lr is not None:  # adam's eps5: 0.3 pt, inside the 1-pt margin
            runs[c].final.test_accuracy = (
                runs[MNIST.config("adam", "decay", c.seed)].final.test_accuracy - 0.003
            )
    entry = calibration.build_calibration(MNIST, runs, n)["controls"]["adam-eps5"]
    assert not entry["discriminates"] and entry["seeds_needed"] is None


@pytest.mark.parametrize("diverging, needed", [(6, 2), (2, 4)])  # of the 6 control seeds; 1-(2/3)^4 >= 0.8
def test_a_control_that_diverges_is_preregistered_as_discriminating(diverging, needed):
    """A diverged control run is told apart from decay whatever the margin (claims.guards): calibration once
    read its NaN as 'not discriminating', and the quick profiles then never judged that control."""
    n = 6
    runs = _synthetic(n)
    seeds = calibration.calibration_seeds(n)[:diverging]
    for c in calibration.calibration_configs(MNIST, n):
        if c.optimizer == "adam" and c.base_lr is not None:  # adam's eps5: inside its margin where it trains
            decay = runs[MNIST.config("adam", "decay", c.seed)].final
            runs[c].final.test_accuracy = decay.test_accuracy - 0.003
            if c.seed in seeds:
                runs[c].final.train_loss, runs[c].final.test_accuracy = float("nan"), 0.098
    content = json.loads(json.dumps(calibration.build_calibration(MNIST, runs, n)))
    entry = content["controls"]["adam-eps5"]
    assert entry["discriminates"] and entry["seeds_needed"] == needed and entry["diverged"] == diverging
    assert entry["differences"].count(None) == diverging  # what discriminating() reads: these two fields


def test_one_calibration_seed_is_refused():
    with pytest.raises(ValueError, match=r"seeds=1: expected an integer >= 2"):
        calibration.calibration_configs(MNIST, 1)


def test_a_calibrated_accuracy_margin_is_two_sample_sds_and_guards_its_controls():
    """Fashion-MNIST judges accuracy also at 2 sd of decay's final test accuracy (accuracy-equivalent): the
    constant control, 1 pt below decay, is inside the paper's 1 pt but beyond this margin."""
    fashion, n = get_workload("fashion-mnist"), 6
    runs = _synthetic(n, fashion)
    content = json.loads(json.dumps(calibration.build_calibration(fashion, runs, n)))
    margins = calibration.load_margins(content, fashion)
    for o in fashion.optimizers:
        mine = [
            100 * runs[fashion.config(o, "decay", CALIBRATION_SEEDS + k)].final.test_accuracy
            for k in range(n)
        ]
        assert margins[o].accuracy_margin == pytest.approx(2 * np.std(mine, ddof=1))
        assert margins[o].for_claim("accuracy-equivalent") == (margins[o].accuracy_margin, " pt")
        entry = content["controls"][f"{o}-constant-accuracy"]
        assert entry["margin"] == pytest.approx(margins[o].accuracy_margin) and entry["discriminates"]
    tampered = copy.deepcopy(content)
    tampered["optimizers"]["sgd"]["accuracy_margin"] = 1.0
    with pytest.raises(
        ValueError, match="optimizers.sgd: accuracy_margin does not follow from its accuracies"
    ):
        calibration.load_margins(tampered, fashion)
    del tampered["optimizers"]["sgd"]["final_test_accuracy"]
    with pytest.raises(ValueError, match="optimizers.sgd: missing or malformed accuracy field"):
        calibration.load_margins(tampered, fashion)


def test_a_rate_that_diverges_on_a_calibration_seed_is_refused_naming_the_seed():
    runs = _synthetic(4)
    runs[MNIST.config("sgd", "decay", CALIBRATION_SEEDS + 2)].final.train_loss = float("nan")
    with pytest.raises(
        ValueError, match=r"sgd decay at base rate 0.1 diverged on calibration seed\(s\) \[1002\]"
    ):
        calibration.build_calibration(MNIST, runs, 4)

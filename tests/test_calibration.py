"""The pre-registered train-loss margins: the committed file matches today's optimizer settings, every
margin follows from its recorded losses, and a stale or tampered file is refused with a clear error."""

from __future__ import annotations

import copy
import json
from types import SimpleNamespace

import numpy as np
import pytest

from reproduction import calibration
from reproduction.config import RunConfig
from reproduction.optimizers import OPTIMIZERS


@pytest.fixture()
def committed():
    return json.loads(calibration.CALIBRATION_PATH.read_text())


def test_committed_calibration_matches_the_registry():
    """Retuning a base rate (or the model) without `reproduction calibrate` turns this red."""
    margins = calibration.read_margins()
    assert set(margins) == set(OPTIMIZERS)
    for m in margins.values():
        assert len(m.seeds) >= 10 and min(m.seeds) >= calibration.CALIBRATION_SEED_OFFSET
        assert 0 < m.margin == pytest.approx(2 * m.sd)


def test_a_retuned_rate_is_refused(committed):
    stale = copy.deepcopy(committed)
    stale["optimizers"]["sgd"]["setting"]["base_lr"] = 0.2
    with pytest.raises(
        ValueError, match=r"the 'sgd' margin was measured with .*run `reproduction calibrate`"
    ):
        calibration.load_margins(stale)


def test_a_margin_that_does_not_follow_from_its_losses_is_refused(committed):
    tampered = copy.deepcopy(committed)
    tampered["optimizers"]["adam"]["margin"] *= 3
    with pytest.raises(ValueError, match="'adam' sd/margin do not follow from its losses"):
        calibration.load_margins(tampered)


def test_a_missing_optimizer_and_a_missing_file_are_clear_errors(committed, tmp_path):
    partial = copy.deepcopy(committed)
    del partial["optimizers"]["nesterov"]
    with pytest.raises(ValueError, match="no margin for optimizer 'nesterov'"):
        calibration.load_margins(partial)
    with pytest.raises(ValueError, match="missing; run `reproduction calibrate`"):
        calibration.read_margins(tmp_path / "nope.json")


def test_build_calibration_is_two_sample_sds_and_round_trips():
    n = 3
    losses = {c: 0.05 + 0.001 * i for i, c in enumerate(calibration.calibration_configs(n))}
    runs = {c: SimpleNamespace(final=SimpleNamespace(train_loss=v)) for c, v in losses.items()}
    content = json.loads(json.dumps(calibration.build_calibration(runs, n)))
    margins = calibration.load_margins(content)
    for o in OPTIMIZERS:
        mine = [losses[RunConfig(o, "decay", seed=1000 + k)] for k in range(n)]
        assert margins[o].sd == pytest.approx(np.std(mine, ddof=1))
        assert margins[o].margin == pytest.approx(2 * np.std(mine, ddof=1))


def test_one_calibration_seed_is_refused():
    with pytest.raises(ValueError, match=r"seeds=1: expected an integer >= 2"):
        calibration.calibration_configs(1)

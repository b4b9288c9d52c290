"""Claim train-loss-equivalent (paper Fig. 3): final training loss of hybrid and increase matches decay's,
within a margin of 2 x decay's seed-to-seed sd, measured on separate calibration seeds (1000-1009) and
pre-registered in reproduction/calibration.json (`reproduction calibrate`; tests/test_calibration.py
refuses a file whose settings no longer match the optimizer registry).

Red if a schedule trains less than decay (fewer epochs, a smaller effective learning rate).
"""

import pytest

from reproduction import claims


@pytest.mark.slow
@pytest.mark.parametrize("params", claims.pytest_params("train-loss-equivalent"))
def test_train_loss_equivalent_to_decay(params, evaluated, judge):
    judge(evaluated("train-loss-equivalent")[params])

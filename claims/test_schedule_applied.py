"""Claim schedule-applied: every run the claims read trained with the learning rate, momentum, batch size
and number of updates its schedule prescribes, as read back from the optimizer and the traced loop.

Red if the engine set the learning rate once, ignored a momentum override, fed another batch size or
dropped the last partial batch (tests/test_schedule_applied.py breaks each on purpose).
"""

import pytest

from reproduction import claims


@pytest.mark.slow
@pytest.mark.parametrize("params", claims.pytest_params("schedule-applied"))
def test_schedule_as_applied(params, evaluated, judge):
    judge(evaluated("schedule-applied")[params])

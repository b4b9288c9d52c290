"""Claim high-noise: at a setting where lowering the noise scale matters for plain SGD (eps 0.1, B 50,
pre-registered from search seeds in docs/annealing.md), hybrid and increase still match decay in test
accuracy and train loss, and no annealing (constant) does not.

Red if a schedule lowers g less than decay, or if the constant control matches decay (the engine would
then be ignoring the schedule, or the setting would not be one where annealing matters).
"""

import pytest

from reproduction import claims


@pytest.mark.slow
@pytest.mark.parametrize("params", claims.pytest_params("high-noise"))
def test_claims_where_annealing_matters(params, evaluated, judge):
    judge(evaluated("high-noise")[params])

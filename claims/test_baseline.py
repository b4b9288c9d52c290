"""Claim baseline-adam (report): Victor Zhou's CNN (no BN), Adam, batch 32, 6 epochs reaches >= 97.44%.
Its wall clock is printed next to the report's 49.19 s (another CPU: a remark, not a test).

Red if the no-normalization model path or Adam were broken.
"""

import pytest

from reproduction import claims


@pytest.mark.slow
@pytest.mark.parametrize("params", claims.pytest_params("baseline-adam"))
def test_zhou_baseline(params, evaluated, judge):
    verdict = judge(evaluated("baseline-adam")[params])
    print(verdict.summary())

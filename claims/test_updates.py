"""Claim fewer-updates (paper 5.1): the engine's update counts equal the schedule's closed form
(3600 / 1680 / 1488) and increase needs at most 0.42x decay's.

Red if the engine dropped or added the last partial batch, or counted steps other than the optimizer's.
"""

import pytest

from reproduction import claims


@pytest.mark.slow
@pytest.mark.parametrize("params", claims.pytest_params("fewer-updates"))
def test_counted_updates(params, evaluated, judge):
    judge(evaluated("fewer-updates")[params])

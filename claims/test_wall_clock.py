"""Claim increase-faster-than-decay (report): training wall clock decay > hybrid > increase on this CPU.

Training seconds only (evaluation is timed apart, the trace is made before the first epoch); the runs of a
seed train back to back (decay, hybrid, increase), and ratios are paired by seed. Red if timing included
evaluation or tracing unevenly, or if large-batch epochs were slow.
"""

import pytest

from reproduction import claims


@pytest.mark.slow
@pytest.mark.parametrize("params", claims.pytest_params("increase-faster-than-decay"))
def test_schedule_wall_clock_order(params, evaluated, judge):
    judge(evaluated("increase-faster-than-decay")[params])

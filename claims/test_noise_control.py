"""Claim noise-scale-control (the report's critique): eps and B both x5 (equal g) give equal accuracy.
(No annealing at all is a negative control now: claims/test_negative_control.py.)

Red if something other than g (say the raw learning rate) drove the result.
"""

import pytest

from reproduction import claims


@pytest.mark.slow
@pytest.mark.parametrize("params", claims.pytest_params("noise-scale-control"))
def test_noise_scale_is_the_variable(params, evaluated, judge):
    judge(evaluated("noise-scale-control")[params])

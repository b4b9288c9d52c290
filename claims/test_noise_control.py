"""Claim noise-scale-control (the report's critique): (a) eps and B both x5 (equal g) give equal accuracy;
(b) no noise reduction (constant) ends with a higher training loss than decay.

Red if something other than g (say the raw learning rate) drove the result.
"""

import pytest

from reproduction import claims


@pytest.mark.slow
@pytest.mark.parametrize("params", claims.pytest_params("noise-scale-control"))
def test_noise_scale_is_the_variable(params, evaluated, judge):
    judge(evaluated("noise-scale-control")[params])

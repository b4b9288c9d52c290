"""Claim noise-scale-rises (McCandlish et al. 2018): the gradient noise scale B_simple rises as the loss
falls, at a constant temperature (the constant control runs), from the start and after the first epoch.

Red if the estimator swaps its two batch sizes (B_simple comes out negative: no finite log ratio), or if the
measurement reads stale weights (every epoch equal to the start: ratio 1).
"""

import pytest

from reproduction import claims


@pytest.mark.slow
@pytest.mark.parametrize("params", claims.pytest_params("noise-scale-rises"))
def test_gradient_noise_scale_rises(params, evaluated, judge):
    judge(evaluated("noise-scale-rises")[params])

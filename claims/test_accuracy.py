"""Claim accuracy-within-1pt (paper 5.1, report): hybrid and increase reach decay's test accuracy within 1 pt.

Red if increase/hybrid trained with another base learning rate than decay's, if the batch-size change broke
training, or if large batches stopped learning.
"""

import pytest

from reproduction import claims


@pytest.mark.slow
@pytest.mark.parametrize("params", claims.pytest_params("accuracy-within-1pt"))
def test_accuracy_within_1pt_of_decay(params, evaluated, judge):
    judge(evaluated("accuracy-within-1pt")[params])

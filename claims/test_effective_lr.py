"""Claim effective-lr (paper 5.2): a larger initial learning rate (with B), or momentum 0.98 (with B x5),
keeps the noise scale with fewer updates; accuracy within 1 pt of decay (the paper saw a drop for 0.98).

Red if a variant changed g, or the momentum override never reached the optimizer.
"""

import pytest

from reproduction import claims


@pytest.mark.slow
@pytest.mark.parametrize("params", claims.pytest_params("effective-lr"))
def test_effective_learning_rate_variants(params, evaluated, judge):
    judge(evaluated("effective-lr")[params])

"""Claim parameter-updates: increase needs the fewest updates, then hybrid, then decay.

Red if a schedule's batch sizes or phase lengths are off, or if the update rule stops being ceil(N/B)
per epoch (which is what the engine does: the last partial batch is kept).
"""

from __future__ import annotations

import pytest

from reproduction import claims


@pytest.mark.parametrize("params", claims.pytest_params("parameter-updates"))
def test_claim_in_the_report_setting(params, judge):
    judge(claims.evaluate("parameter-updates", {}, ())[params])

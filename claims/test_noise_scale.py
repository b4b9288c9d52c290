"""Claim noise-scale-equal: decay, hybrid and increase lower g = eps N / (B (1 - m)) identically.

Red if a schedule is built with another base learning rate, factor or phase length than decay's (checked
by hand once: building increase with 0.9 x decay's base rate fails every example).
"""

from __future__ import annotations

import pytest

from reproduction import claims


@pytest.mark.parametrize("params", claims.pytest_params("noise-scale-equal"))
def test_claim_in_the_report_setting(params, judge):
    judge(claims.evaluate("noise-scale-equal", {}, ())[params])

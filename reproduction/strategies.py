"""Hypothesis strategies for schedule arguments, shared by the unit tests and the claims (needs hypothesis)."""

from __future__ import annotations

from hypothesis import assume
from hypothesis import strategies as st


@st.composite
def schedule_args(draw, max_factor: int = 10, min_factor: int = 1):
    """(factory kwargs, N, momentum) with every batch size of every main schedule fitting in N."""
    kwargs = {
        "base_lr": draw(st.floats(1e-4, 10.0, allow_nan=False, allow_infinity=False)),
        "base_batch": draw(st.integers(1, 512)),
        "factor": draw(st.integers(min_factor, max_factor)),
        "steps": draw(st.integers(1, 5)),
        "epochs_per_step": draw(st.integers(1, 4)),
    }
    largest = kwargs["base_batch"] * kwargs["factor"] ** (kwargs["steps"] - 1)
    assume(largest <= 10_000_000)
    n = draw(st.integers(largest, max(largest, 2_000_000)))
    momentum = draw(st.sampled_from([0.0, 0.5, 0.9, 0.99]))
    return kwargs, n, momentum

"""Test helpers (on the test path through pytest's ``pythonpath``; never imported by the package): hypothesis
strategies for schedule arguments, and a small synthetic stand-in for MNIST."""

from __future__ import annotations

import numpy as np
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


def synthetic_digits(n_train: int = 600, n_test: int = 200, seed: int = 0):
    """(x_train, y_train, x_test, y_test) preprocessed like MNIST: each label is a bright 4x4 block at a
    label-dependent place on a noisy 28x28 image, so the CNN can learn it in an epoch or two."""
    rng = np.random.default_rng(seed)

    def make(n):
        y = rng.integers(0, 10, size=n).astype(np.int32)
        x = rng.normal(0.0, 0.1, size=(n, 28, 28, 1)).astype(np.float32)
        rows, cols = 2 + 6 * (y // 4), 2 + 6 * (y % 4)
        for i in range(n):
            x[i, rows[i]:rows[i] + 4, cols[i]:cols[i] + 4, 0] += 1.0
        return x, y

    return (*make(n_train), *make(n_test))


def train_single_threaded(config: dict, data) -> dict:
    """A run trained in this process with one TensorFlow thread, as a dict (a spawned reference process for
    tests and benchmarks: it must be importable by name, so it lives here rather than in a test module)."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from reproduction.config import RunConfig
    from reproduction.training import Trainer

    return Trainer(data).train(RunConfig.from_dict(config)).to_dict()

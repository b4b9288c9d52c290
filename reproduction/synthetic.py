"""A small synthetic stand-in for MNIST, for unit and smoke tests only (the claims use real MNIST)."""

from __future__ import annotations

import numpy as np


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

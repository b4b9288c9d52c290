"""Claim epoch-time-falls-with-batch (report): seconds per epoch at B 100 > 500 > 2500.

The verdict pairs the epochs at each B inside the same increase run (they run back to back); the
pytest-benchmark tests measure one 60k epoch per round at each B, so ``--benchmark-save`` stores the
per-epoch wall clock, with the schedule runs' per-epoch times in ``extra_info``.
Red if per-step overhead dominated, or large batches were slow (memory bound) in the engine.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from reproduction import claims
from reproduction.config import RunConfig
from reproduction.model import build_cnn
from reproduction.optimizers import OPTIMIZERS, get_optimizer
from reproduction.training import Engine, configure_determinism


@pytest.mark.slow
@pytest.mark.parametrize("batch", [100, 500, 2500], ids=lambda b: f"B{b}")
def test_epoch_seconds(benchmark, batch, mnist, runs, seeds):
    x_np, y_np, _, _ = mnist
    x, y = tf.constant(x_np), tf.constant(y_np)
    configure_determinism()
    keras.utils.set_random_seed(0)
    engine = Engine(build_cnn(), get_optimizer("sgd").build())
    engine.warm_up(x, y)
    rounds = iter(range(100))
    applied = benchmark.pedantic(
        lambda: engine.train_epoch(x, y, 0.05, batch, (0, next(rounds))),
        rounds=3,
        iterations=1,
        warmup_rounds=0,
    )
    assert applied["steps"] == -(-len(x_np) // batch)
    from_runs = [
        e.train_seconds
        for o in OPTIMIZERS
        for k in seeds
        for e in runs[RunConfig(o, "increase", k)].epochs
        if e.batch_size == batch
    ]
    benchmark.extra_info.update(
        {
            "batch_size": batch,
            "schedule_run_epoch_seconds": from_runs,
            "schedule_run_median": float(np.median(from_runs)),
        }
    )


@pytest.mark.slow
@pytest.mark.parametrize("params", claims.pytest_params("epoch-time-falls-with-batch"))
def test_epoch_time_falls_with_batch(params, evaluated, judge):
    judge(evaluated("epoch-time-falls-with-batch")[params])

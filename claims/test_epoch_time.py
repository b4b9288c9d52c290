"""Seconds per epoch at B, 5B and 25B as pytest-benchmark rounds: ``--benchmark-save`` stores one epoch of the
workload's training set per round at each batch size, with the timed runs' per-epoch seconds in
``extra_info``. (The verdict of claim epoch-time-falls-with-batch is judged in test_claims.py, from the
timed runs.)
"""

import numpy as np
import pytest
import tensorflow as tf

from reproduction.training import Trainer


@pytest.mark.slow
@pytest.mark.parametrize("phase", [0, 1, 2], ids=lambda p: f"phase{p}")
def test_epoch_seconds(benchmark, phase, dataset, runs, plan):
    """The increase schedule's first three batch sizes: B, kB and k^2 B (k the workload's factor; a
    workload of two phases has no runs at k^2 B, so only the engine's epoch is timed there)."""
    x_np, y_np, _, _ = dataset
    batch = plan.workload.base_batch * plan.workload.factor**phase
    x, y = tf.constant(x_np), tf.constant(y_np)
    # The engine the runs train with (training.Trainer: chunks, noise estimate, the workload's model), so
    # these rounds time the same computation.
    engine = Trainer(dataset).engine(plan.config(plan.optimizers[0], "increase", 0))
    # As in an increase run, whose large batches follow an epoch at the base batch: a fresh engine's first
    # B-2500 epochs ran 1.4x slower here until an epoch at a smaller batch had run (cause not found).
    engine.train_epoch(x, y, 0.05, plan.workload.base_batch, (0, 100))
    rounds = iter(range(100))
    applied = benchmark.pedantic(
        lambda: engine.train_epoch(x, y, 0.05, batch, (0, next(rounds))),
        rounds=3,
        iterations=1,
        warmup_rounds=0,
    )
    assert applied.steps == -(-len(x_np) // batch)
    from_runs = [
        e.train_seconds
        for o in plan.optimizers
        for k in plan.timed_seeds
        for e in runs[plan.config(o, "increase", k)].epochs[1:]
        if e.batch_size == batch
    ]
    benchmark.extra_info.update(
        {
            "batch_size": batch,
            "timed_run_epoch_seconds": from_runs,
            "timed_run_median": float(np.median(from_runs)) if from_runs else None,
        }
    )

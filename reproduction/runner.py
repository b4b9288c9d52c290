"""The runner: which runs are missing, where each trains, and the store that keeps them.

Timing policy. A run whose training seconds a claim reads (``timed``: the main grid, claims.plan.timed_configs)
trains here in the main process, one at a time, alone on the machine, with every core, in the order given
(the three schedules of one optimizer and seed back to back, so machine drift hits them alike). Every
other run trains in ``workers`` single-threaded processes in parallel (reproduction/pool.py), after the
timed ones; ``workers=0`` trains them here too. Each run's metadata records where it trained.

Nothing is lost: each run is written to the store atomically as soon as it ends, a run already stored is
never trained again (unless ``fresh``), and an interrupted job resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from reproduction.config import RunConfig
from reproduction.pool import check_workers, train_in_workers
from reproduction.results import EpochRecord, RunResult
from reproduction.store import RunStore


@dataclasses.dataclass(frozen=True)
class Outcome:
    runs: dict[RunConfig, RunResult]  # every config asked for, in the order asked
    trained: tuple[RunConfig, ...]  # those trained now (the rest came from the store)


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def check_tensorboard() -> None:
    try:
        import tensorboard  # noqa: F401  (tf.summary writes through it)
    except ImportError as exc:
        raise ValueError("--tensorboard needs the tensorboard package: pip install 'batch-size-repro[tensorboard]'"
                         ) from exc


def write_tensorboard(result: RunResult, directory: Path) -> None:
    check_tensorboard()
    import tensorflow as tf

    writer = tf.summary.create_file_writer(str(directory / result.config.key()))
    with writer.as_default():
        updates = 0
        tf.summary.scalar("b_simple", result.initial_b_simple, step=0)  # at the initial weights
        for e in result.epochs:
            updates += e.steps
            for name in ("test_accuracy", "test_loss", "train_loss", "learning_rate", "batch_size",
                         "train_seconds", "b_simple", "gradient_sq", "gradient_trace"):
                tf.summary.scalar(name, getattr(e, name), step=e.epoch + 1)
            tf.summary.scalar("test_accuracy_vs_updates", e.test_accuracy, step=updates)
    writer.close()


def run_all(configs: list[RunConfig], data, store: RunStore, fresh: bool = False, quiet: bool = False,
            tensorboard: Path | None = None, say=say, timed: Sequence[RunConfig] | None = None,
            workers: int = 0) -> Outcome:
    """Train (or take from the store) every config; progress through ``say`` (stderr).

    ``timed``: the configs whose training seconds a claim reads (None: all). They train first, here, one at
    a time with every core. The others train in ``workers`` single-threaded processes in parallel
    (reproduction/pool.py); ``workers=0`` trains them here too. Each run is stored as soon as it ends."""
    check_workers(workers)
    timed_set = set(configs if timed is None else timed)
    runs, start, trained = {}, time.perf_counter(), []
    trainer = None
    index = {c: i for i, c in enumerate(configs, 1)}

    def label(c: RunConfig) -> str:
        return f"[run {index[c]}/{len(configs)}] {c.key()}"

    def finished(result: RunResult, where: str = "") -> None:
        store.put(result)  # atomic: a killed job loses at most the runs in flight
        runs[result.config] = result
        trained.append(result.config)
        if tensorboard is not None:
            write_tensorboard(result, tensorboard)
        say(f"{label(result.config)}: test accuracy {100 * result.final.test_accuracy:.2f}%, train "
            f"{result.train_seconds:.1f} s{where} (elapsed {time.perf_counter() - start:.0f} s)")

    pending = []
    for config in configs:
        found = None if fresh else store.get(config)
        if found is not None:
            runs[config] = found
        else:
            pending.append(config)
    here = [c for c in pending if c in timed_set or workers == 0]
    pooled = [c for c in pending if c not in here]
    for config in here:
        import keras  # the progress bar; TensorFlow starts only when something trains

        epochs = config.build_schedule().epochs
        say(f"{label(config)}: training ({epochs} epochs)")
        bar = None if quiet else keras.utils.Progbar(epochs, unit_name="epoch", stateful_metrics=["loss", "acc"])

        def on_epoch(e: EpochRecord, bar=bar):
            if bar is not None:
                bar.update(e.epoch + 1, values=[("loss", e.train_loss), ("acc", e.test_accuracy)])

        if trainer is None:
            from reproduction.training import Trainer  # TensorFlow starts only when something trains

            trainer = Trainer(data)
        finished(trainer.train(config, on_epoch=on_epoch))
    if pooled:
        say(f"training {len(pooled)} untimed runs in {min(workers, len(pooled))} single-threaded worker "
            f"processes")
        for result in train_in_workers(pooled, data, workers):
            finished(result, " in a worker")
    say(f"{len(configs)} runs: {len(trained)} trained now, {len(configs) - len(trained)} from {store.root}")
    return Outcome({c: runs[c] for c in configs}, tuple(trained))

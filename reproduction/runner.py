"""The runner: which runs are missing, where each trains, and the store that keeps them.

Timing policy. A run whose training seconds a claim reads (``timed``: the main grid, claims.plan.timed_configs)
trains here in the main process, one at a time, alone on the machine, with every core, in the order given
(the three schedules of one optimizer and seed back to back, so machine drift hits them alike). Every
other run trains on Dask workers (reproduction/cluster.py): by default a LocalCluster of ``workers``
single-threaded processes on 127.0.0.1, after the timed runs; ``workers=0`` trains them here too. With a
``scheduler`` address everything goes to that cluster, the timed runs as blocks (one optimizer and seed,
back to back) on workers that hold a whole machine. Each run's metadata records where it trained.

Nothing is lost: each run is written to the store atomically as soon as it ends, a run already stored is
never trained again (unless ``fresh``), and an interrupted job resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from reproduction.cluster import as_source, check_scheduler, check_workers, train_on_cluster
from reproduction.config import RunConfig
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
        raise ValueError(
            "--tensorboard needs the tensorboard package: pip install 'batch-size-repro[tensorboard]'"
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
            for name in (
                "test_accuracy",
                "test_loss",
                "train_loss",
                "learning_rate",
                "batch_size",
                "train_seconds",
                "b_simple",
                "gradient_sq",
                "gradient_trace",
            ):
                tf.summary.scalar(name, getattr(e, name), step=e.epoch + 1)
            tf.summary.scalar("test_accuracy_vs_updates", e.test_accuracy, step=updates)
    writer.close()


def timed_blocks(timed: Sequence[RunConfig]) -> list[tuple[RunConfig, ...]]:
    """Consecutive timed runs of one (optimizer, seed): the blocks a wall-clock claim pairs."""
    blocks: list[list[RunConfig]] = []
    for c in timed:
        if blocks and (blocks[-1][0].optimizer, blocks[-1][0].seed) == (c.optimizer, c.seed):
            blocks[-1].append(c)
        else:
            blocks.append([c])
    return [tuple(b) for b in blocks]


def run_all(
    configs: list[RunConfig],
    data,
    store: RunStore,
    fresh: bool = False,
    quiet: bool = False,
    tensorboard: Path | None = None,
    say=say,
    timed: Sequence[RunConfig] | None = None,
    workers: int = 0,
    scheduler: str | None = None,
    strategy=None,
) -> Outcome:
    """Train (or take from the store) every config; progress through ``say`` (stderr).

    ``data``: preprocessed arrays, or a cluster.MnistSource that each process loads itself.
    ``timed``: the configs whose training seconds a claim reads (None: all). Without ``scheduler`` they
    train first, here, one at a time with every core, and the others on a LocalCluster of ``workers``
    single-threaded processes (``workers=0``: here too). With ``scheduler`` all go to that cluster, the timed
    ones as blocks. Each run is stored as soon as it ends; runs that fail on the cluster are raised together
    (cluster.RunFailed) after every other run was stored. ``strategy``: a tf.distribute strategy for the
    runs trained here (reproduction/distribute.py); only with ``workers=0`` and no scheduler."""
    check_workers(workers)
    scheduler = check_scheduler(scheduler)
    if strategy is not None and (workers or scheduler):
        raise ValueError(
            f"strategy: a tf.distribute strategy trains in this process only; got workers={workers}, "
            f"scheduler={scheduler!r} (use workers=0 and no scheduler)"
        )
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
        say(
            f"{label(result.config)}: test accuracy {100 * result.final.test_accuracy:.2f}%, train "
            f"{result.train_seconds:.1f} s{where} (elapsed {time.perf_counter() - start:.0f} s)"
        )

    pending = []
    for config in configs:
        found = None if fresh else store.get(config)
        if found is not None:
            runs[config] = found
        else:
            pending.append(config)
    source = as_source(data) if pending else None  # nothing to train: the data are never needed
    if scheduler is not None:
        here = []
        blocks = timed_blocks([c for c in pending if c in timed_set])
        pooled = [c for c in pending if c not in timed_set]
    else:
        here = [c for c in pending if c in timed_set or workers == 0]
        blocks, pooled = [], [c for c in pending if c not in here]
    for config in here:
        import keras  # the progress bar; TensorFlow starts only when something trains

        epochs = config.build_schedule().epochs
        say(f"{label(config)}: training ({epochs} epochs)")
        bar = (
            None
            if quiet
            else keras.utils.Progbar(epochs, unit_name="epoch", stateful_metrics=["loss", "acc"])
        )

        def on_epoch(e: EpochRecord, bar=bar):
            if bar is not None:
                bar.update(e.epoch + 1, values=[("loss", e.train_loss), ("acc", e.test_accuracy)])

        if trainer is None:
            from reproduction.training import Trainer  # TensorFlow starts only when something trains

            trainer = Trainer(source.load(), strategy=strategy)
        finished(trainer.train(config, on_epoch=on_epoch))
    if pooled or blocks:
        say(
            f"training {len(pooled)} untimed runs and {len(blocks)} timed blocks on the Dask cluster at "
            f"{scheduler}"
            if scheduler
            else f"training {len(pooled)} untimed runs in {min(workers, len(pooled))} "
            "single-threaded worker processes (a Dask LocalCluster on 127.0.0.1)"
        )
        for result in train_on_cluster(pooled, source, workers, scheduler, blocks):
            finished(result, f" on {result.metadata.get('worker')}")
    say(f"{len(configs)} runs: {len(trained)} trained now, {len(configs) - len(trained)} from {store.root}")
    return Outcome({c: runs[c] for c in configs}, tuple(trained))

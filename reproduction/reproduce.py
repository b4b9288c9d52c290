"""The main job: every run the claims need (through the run store: resumable), then the report.

Interrupting and re-running loses nothing and retrains nothing finished: each run is written to the
store atomically as soon as it ends.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

from reproduction import claims
from reproduction.config import RunConfig
from reproduction.pool import DEFAULT_WORKERS, check_workers, train_in_workers
from reproduction.report import build_report, tally
from reproduction.store import RunStore
from reproduction.training import EpochRecord, RunResult, Trainer


def _say(text: str) -> None:
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
        for e in result.epochs:
            updates += e.steps
            for name in ("test_accuracy", "test_loss", "train_loss", "learning_rate", "batch_size",
                         "train_seconds"):
                tf.summary.scalar(name, getattr(e, name), step=e.epoch + 1)
            tf.summary.scalar("test_accuracy_vs_updates", e.test_accuracy, step=updates)
    writer.close()


def run_all(configs: list[RunConfig], data, store: RunStore, fresh: bool = False, quiet: bool = False,
            tensorboard: Path | None = None, say=_say, timed: Sequence[RunConfig] | None = None,
            workers: int = 0) -> dict[RunConfig, RunResult]:
    """Train (or take from the store) every config; progress through ``say`` (stderr).

    ``timed``: the configs whose training seconds a claim reads (None: all). They train first, here, one at
    a time with every core. The others train in ``workers`` single-threaded processes in parallel
    (reproduction/pool.py); ``workers=0`` trains them here too. Each run is stored as soon as it ends."""
    import keras

    check_workers(workers)
    timed_set = set(configs if timed is None else timed)
    runs, start, trained_count = {}, time.perf_counter(), 0
    trainer = None
    index = {c: i for i, c in enumerate(configs, 1)}

    def label(c: RunConfig) -> str:
        return f"[run {index[c]}/{len(configs)}] {c.key()}"

    def finished(result: RunResult, where: str = "") -> None:
        nonlocal trained_count
        store.put(result)  # atomic: a killed job loses at most the runs in flight
        runs[result.config] = result
        trained_count += 1
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
        epochs = config.build_schedule().epochs
        say(f"{label(config)}: training ({epochs} epochs)")
        bar = None if quiet else keras.utils.Progbar(epochs, unit_name="epoch", stateful_metrics=["loss", "acc"])

        def on_epoch(e: EpochRecord, bar=bar):
            if bar is not None:
                bar.update(e.epoch + 1, values=[("loss", e.train_loss), ("acc", e.test_accuracy)])

        trainer = trainer or Trainer(data)
        finished(trainer.train(config, on_epoch=on_epoch))
    if pooled:
        say(f"training {len(pooled)} untimed runs in {min(workers, len(pooled))} single-threaded worker "
            f"processes")
        for result in train_in_workers(pooled, data, workers):
            finished(result, " in a worker")
    say(f"{len(configs)} runs: {trained_count} trained now, {len(configs) - trained_count} from {store.root}")
    return {c: runs[c] for c in configs}


def reproduce(profile: str = "quick", out: Path = Path("report"), seeds: int | None = None,
              data_dir: str | None = None, runs_dir: str | None = None, fresh: bool = False,
              tensorboard: bool = False, data=None, quiet: bool = False, workers: int = DEFAULT_WORKERS) -> int:
    """Run the grid and write the report. ``data`` (preprocessed arrays) overrides MNIST for smoke tests."""
    prof = claims.get_profile(profile, seeds)
    check_workers(workers)
    if tensorboard:
        check_tensorboard()  # fail before training, not after the first run
    if data is None:
        from reproduction.data import load_mnist

        data = load_mnist(data_dir).preprocessed()
    seed_list = prof.seed_list()
    store = RunStore(runs_dir)
    configs = claims.required_configs(seed_list)
    timed = claims.timed_configs(seed_list)
    _say(f"profile {prof.name}: {len(seed_list)} seeds, {len(configs)} runs ({len(timed)} timed, trained alone), "
         f"store {store.root}")
    runs = run_all(configs, data, store, fresh=fresh, quiet=quiet,
                   tensorboard=out / "tensorboard" if tensorboard else None, timed=timed, workers=workers)
    report, verdicts = build_report(runs, seed_list, prof.name, out)
    print(f"report: {report}  ({tally(verdicts)})")
    return 0

"""The main job: every run the claims need (through the run store: resumable), then the report.

Interrupting and re-running loses nothing and retrains nothing finished: each run is written to the
store atomically as soon as it ends.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from reproduction import claims
from reproduction.config import RunConfig
from reproduction.report import build_report
from reproduction.store import RunStore
from reproduction.training import EpochRecord, RunResult, train


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
            tensorboard: Path | None = None, say=_say) -> dict[RunConfig, RunResult]:
    """Train (or take from the store) every config, in order; progress through ``say`` (stderr)."""
    import keras

    runs, start, trained_count = {}, time.perf_counter(), 0
    for i, config in enumerate(configs, 1):
        label = f"[run {i}/{len(configs)}] {config.key()}"

        def train_with_progress(c: RunConfig, label=label) -> RunResult:
            say(f"{label}: training ({c.build_schedule().epochs} epochs)")
            bar = None if quiet else keras.utils.Progbar(c.build_schedule().epochs, unit_name="epoch",
                                                         stateful_metrics=["loss", "acc"])

            def on_epoch(e: EpochRecord):
                if bar is not None:
                    bar.update(e.epoch + 1, values=[("loss", e.train_loss), ("acc", e.test_accuracy)])

            return train(c, data, on_epoch=on_epoch)

        result, trained = store.get_or_train(config, train_with_progress, fresh=fresh)  # atomic put inside
        runs[config] = result
        if not trained:
            continue
        trained_count += 1
        if tensorboard is not None:
            write_tensorboard(result, tensorboard)
        say(f"{label}: test accuracy {100 * result.final.test_accuracy:.2f}%, train {result.train_seconds:.1f} s "
            f"(elapsed {time.perf_counter() - start:.0f} s)")
    say(f"{len(configs)} runs: {trained_count} trained now, {len(configs) - trained_count} from {store.root}")
    return runs


def reproduce(profile: str = "quick", out: Path = Path("report"), seeds: int | None = None,
              data_dir: str | None = None, runs_dir: str | None = None, fresh: bool = False,
              tensorboard: bool = False, data=None, quiet: bool = False) -> int:
    """Run the grid and write the report. ``data`` (preprocessed arrays) overrides MNIST for smoke tests."""
    prof = claims.get_profile(profile, seeds)
    if tensorboard:
        check_tensorboard()  # fail before training, not after the first run
    if data is None:
        from reproduction.data import load_mnist

        data = load_mnist(data_dir).preprocessed()
    seed_list = prof.seed_list()
    store = RunStore(runs_dir)
    configs = claims.required_configs(seed_list)
    _say(f"profile {prof.name}: {len(seed_list)} seeds, {len(configs)} runs, store {store.root}")
    runs = run_all(configs, data, store, fresh=fresh, quiet=quiet,
                   tensorboard=out / "tensorboard" if tensorboard else None)
    report, verdicts = build_report(runs, seed_list, prof.name, out)
    tally = {k: sum(v.verdict == k for v in verdicts) for k in ("holds", "refuted", "undecided")}
    print(f"report: {report}  ({tally['holds']} hold, {tally['refuted']} refuted, {tally['undecided']} undecided)")
    return 0

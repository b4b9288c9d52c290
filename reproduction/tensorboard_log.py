"""TensorBoard scalars per run (``reproduction reproduce --tensorboard``): the optional package, checked
first."""

from __future__ import annotations

from pathlib import Path

from reproduction.errors import UsageError
from reproduction.results import RunResult


def check_tensorboard() -> None:
    try:
        import tensorboard  # noqa: F401  (tf.summary writes through it)
    except ImportError as exc:
        raise UsageError(
            "--tensorboard needs the tensorboard package: pip install 'batch-size-repro[tensorboard]'"
        ) from exc


def write_tensorboard(result: RunResult, directory: Path) -> None:
    check_tensorboard()
    import tensorflow as tf

    writer = tf.summary.create_file_writer(str(directory / result.config.key()))
    with writer.as_default():
        updates = 0
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
                "gradient_sq_se",
            ):
                tf.summary.scalar(name, getattr(e, name), step=e.epoch + 1)
            tf.summary.scalar("test_accuracy_vs_updates", e.test_accuracy, step=updates)
    writer.close()

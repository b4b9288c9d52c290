"""CIFAR-10 from the official "python version" batches in a directory you point at; never downloaded.

The directory (``--data-dir``, or $REPRODUCTION_CIFAR10_DIR) is the unpacked ``cifar-10-batches-py`` of
https://www.cs.toronto.edu/~kriz/cifar.html: ``data_batch_1`` .. ``data_batch_5`` (training) and
``test_batch``, each a pickled dict with ``b"data"``, a (n, 3072) uint8 array (per image 1024 red, 1024
green, then 1024 blue values, rows of 32), and ``b"labels"``, n integers 0..9.

The files are pickles, which can run code when loaded: they are read by an unpickler that builds only
dicts, lists, strings, numbers and NumPy arrays, and refuses anything else by name. Checks, each a one-line
error naming the file and field: a file missing or not such a pickle, a batch without data or labels, data
of another width or type, labels out of range or of another count; and, for the full data set
(``full=True``, what the workload trains on), 50,000 training and 10,000 test images with 5,000 and 1,000
of each class. No hash is pinned: the python batches are distributed only inside the tarball, whose MD5 the
site publishes (c58f30108f718f92721af3b95e74349a); the counts above catch a partial or mixed copy.

Preprocessing (``Cifar10.preprocessed``): float32 (N, 32, 32, 3), each channel standardized by the training
set's mean and standard deviation; no augmentation (the paper's Wide ResNet runs used random crops and
flips; docs/cifar10.md says what that costs).
"""

from __future__ import annotations

import dataclasses
import io
import os
import pickle
from pathlib import Path

import numpy as np

TRAIN_FILES = tuple(f"data_batch_{k}" for k in range(1, 6))
TEST_FILE = "test_batch"
CLASSES = 10
PIXELS = 32 * 32 * 3
FULL_COUNTS = {"train": 50_000, "test": 10_000}
DATA_DIR_ENV = "REPRODUCTION_CIFAR10_DIR"
# What the official batches' pickles reference (protocol 2, written by Python 2 with NumPy).
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(
                f"refused to load {module}.{name}: a CIFAR-10 batch holds arrays only"
            )
        return super().find_class(module, name)


def _error(message: str):
    from reproduction.data import DataError  # here: data.py registers this loader

    return DataError(message)


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images (n, 32, 32, 3) uint8, labels (n,) uint8) of one python-version batch file."""
    try:
        content = _ArraysOnly(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except FileNotFoundError:
        raise _error(f"CIFAR-10: {path} is missing") from None
    except Exception as exc:  # any malformed pickle: one line naming the file
        raise _error(
            f"CIFAR-10: {path} is not a python-version batch ({type(exc).__name__}: {exc})"
        ) from None
    if not isinstance(content, dict) or b"data" not in content or b"labels" not in content:
        raise _error(f"CIFAR-10: {path}: expected a dict with b'data' and b'labels'")
    data, labels = content[b"data"], np.asarray(content[b"labels"])
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != PIXELS
    ):
        shape = getattr(data, "shape", None)
        raise _error(f"CIFAR-10: {path}: b'data' must be a (n, {PIXELS}) uint8 array, got {shape}")
    if labels.shape != (len(data),) or not np.issubdtype(labels.dtype, np.integer):
        raise _error(f"CIFAR-10: {path}: b'labels' must be {len(data)} integers, got shape {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= CLASSES):
        raise _error(f"CIFAR-10: {path}: b'labels' must lie in 0..{CLASSES - 1}")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # channel planes -> channels last
    return np.ascontiguousarray(images), labels.astype(np.uint8)


@dataclasses.dataclass(frozen=True)
class Cifar10:
    x_train: np.ndarray  # (N, 32, 32, 3) uint8
    y_train: np.ndarray  # (N,) uint8
    x_test: np.ndarray
    y_test: np.ndarray
    source: str = "memory"

    def preprocessed(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per-channel standardization by the training set's statistics, float32; int32 labels."""
        mean = self.x_train.mean(axis=(0, 1, 2), dtype=np.float64)
        std = self.x_train.std(axis=(0, 1, 2), dtype=np.float64)

        def scaled(x):
            return ((x - mean) / std).astype(np.float32)

        return (
            scaled(self.x_train),
            self.y_train.astype(np.int32),
            scaled(self.x_test),
            self.y_test.astype(np.int32),
        )


def _check_full(split: str, labels: np.ndarray, where: Path) -> None:
    expected = FULL_COUNTS[split]
    counts = np.bincount(labels, minlength=CLASSES)
    if len(labels) != expected or not (counts == expected // CLASSES).all():
        raise _error(
            f"CIFAR-10: {where}: {len(labels)} {split} images ({counts.tolist()} per class), expected the "
            f"full set's {expected}, {expected // CLASSES} per class: not a complete cifar-10-batches-py"
        )


def load_cifar10(
    data_dir: str | os.PathLike | None = None, *, fetch: bool = True, full: bool = True
) -> Cifar10:
    """CIFAR-10 from ``data_dir`` (else $REPRODUCTION_CIFAR10_DIR). ``fetch`` is accepted for the data-set
    registry's signature and ignored: nothing is ever downloaded. ``full``: refuse anything but the complete
    data set (tests pass False for a small file in the same format)."""
    directory = data_dir or os.environ.get(DATA_DIR_ENV)
    if not directory:
        raise _error(
            f"CIFAR-10 is never downloaded: point --data-dir (or ${DATA_DIR_ENV}) at the unpacked "
            "cifar-10-batches-py directory (data_batch_1 .. data_batch_5, test_batch)"
        )
    root = Path(directory)
    train = [read_batch(root / name) for name in TRAIN_FILES]
    x_test, y_test = read_batch(root / TEST_FILE)
    x_train, y_train = np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train])
    if full:
        _check_full("train", y_train, root)
        _check_full("test", y_test, root)
    return Cifar10(x_train, y_train, x_test, y_test, source=str(root))

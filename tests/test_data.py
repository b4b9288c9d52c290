"""Readers on synthetic bytes; sources, cache and verification on the real files."""

from __future__ import annotations

import gzip
import io

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reproduction import data
from reproduction.data import DataError, encode_idx, parse_idx, parse_npz, payload_sha256

RNG = np.random.default_rng(0)
SMALL_IMAGES = RNG.integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
SMALL_LABELS = RNG.integers(0, 10, size=(7,), dtype=np.uint8)


# ----------------------------------------------------------------------------------------------- readers
@pytest.mark.parametrize("array", [SMALL_IMAGES, SMALL_LABELS], ids=["images", "labels"])
@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_idx_round_trip(array, compress):
    raw = encode_idx(array)
    assert raw[:4] == bytes([0, 0, 8, array.ndim])
    blob = gzip.compress(raw) if compress else raw
    np.testing.assert_array_equal(parse_idx(blob, "x"), array)


def test_idx_magic_of_the_real_formats():
    assert int.from_bytes(encode_idx(SMALL_IMAGES)[:4], "big") == 0x803
    assert int.from_bytes(encode_idx(SMALL_LABELS)[:4], "big") == 0x801


@pytest.mark.parametrize(
    "blob, message",
    [
        (b"", "too short"),
        (b"\x00\x00\x0d\x01\x00\x00\x00\x01\x00\x00\x00\x00", "magic"),  # float IDX, not ubyte
        (b"\x01\x00\x08\x01\x00\x00\x00\x01\x05", "magic"),
        (b"\x00\x00\x08\x03\x00\x00", "truncated header"),
        (encode_idx(SMALL_LABELS)[:-1], "payload is 6 bytes"),
        (encode_idx(SMALL_LABELS) + b"\x00", "payload is 8 bytes"),
        (b"\x1f\x8b\x08\x00garbage", "gzip"),
    ],
    ids=["empty", "float-magic", "bad-zero-bytes", "short-header", "truncated", "trailing", "bad-gzip"],
)
def test_idx_refuses_malformed(blob, message):
    with pytest.raises(DataError, match=message):
        parse_idx(blob, "name.idx")


def test_idx_error_names_the_file():
    with pytest.raises(DataError, match="train-labels-idx1-ubyte"):
        parse_idx(b"\x00", "train-labels-idx1-ubyte")


def _npz_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_npz_reader():
    blob = _npz_bytes(x_train=SMALL_IMAGES, y_train=SMALL_LABELS, x_test=SMALL_IMAGES, y_test=SMALL_LABELS)
    arrays = parse_npz(blob, "mnist.npz")
    np.testing.assert_array_equal(arrays["x_test"], SMALL_IMAGES)


def test_npz_missing_key_is_named():
    with pytest.raises(DataError, match=r"missing arrays \['y_test'\]"):
        parse_npz(_npz_bytes(x_train=SMALL_IMAGES, y_train=SMALL_LABELS, x_test=SMALL_IMAGES), "mnist.npz")


@given(cut=st.integers(min_value=0, max_value=len(encode_idx(SMALL_IMAGES)) - 1))
def test_any_truncation_is_refused(cut):
    with pytest.raises(DataError):
        parse_idx(encode_idx(SMALL_IMAGES)[:cut], "f")


@given(
    position=st.integers(min_value=0), value=st.integers(min_value=0, max_value=255), compress=st.booleans()
)
def test_any_corruption_is_refused_or_detected(position, value, compress):
    """A corrupted byte anywhere: the reader refuses it with DataError (never another exception), or, raw,
    decodes to a different payload (which the hash check then refuses); gzip's CRC guards its payload, so
    whatever still decodes there is the original (a flipped gzip header field such as MTIME is harmless)."""
    raw = encode_idx(SMALL_LABELS)
    blob = bytearray(gzip.compress(raw) if compress else raw)
    position %= len(blob)
    if blob[position] == value:
        return
    blob[position] = value
    try:
        decoded = parse_idx(bytes(blob), "f")
    except DataError:
        return
    if compress:
        np.testing.assert_array_equal(decoded, SMALL_LABELS)
    else:
        assert payload_sha256(decoded) != payload_sha256(SMALL_LABELS)


@given(position=st.integers(min_value=0), value=st.integers(min_value=0, max_value=255))
def test_npz_corruption_is_refused_or_changes_the_hash(position, value):
    blob = bytearray(
        _npz_bytes(x_train=SMALL_IMAGES, y_train=SMALL_LABELS, x_test=SMALL_IMAGES, y_test=SMALL_LABELS)
    )
    position %= len(blob)
    if blob[position] == value:
        return
    blob[position] = value
    try:
        arrays = parse_npz(bytes(blob), "mnist.npz")  # DataError is the only refusal allowed
    except DataError:
        return
    assert sorted(arrays) == sorted(s.key for s in data.SPECS)  # a flip in zip metadata may decode fine


def test_preprocessing_matches_the_report():
    m = data.Mnist(SMALL_IMAGES, SMALL_LABELS, SMALL_IMAGES, SMALL_LABELS)
    x, y, _, _ = m.preprocessed()
    assert x.shape == (7, 28, 28, 1) and x.dtype == np.float32 and y.dtype == np.int32
    np.testing.assert_allclose(x[..., 0], SMALL_IMAGES / 255.0 - 0.5, atol=1e-7)
    assert x.min() >= -0.5 and x.max() <= 0.5 + 1e-6


def test_mnist_refuses_mismatched_counts():
    with pytest.raises(DataError, match="y_train"):
        data.Mnist(SMALL_IMAGES, SMALL_LABELS[:3], SMALL_IMAGES, SMALL_LABELS)


# ----------------------------------------------------------------------------------------------- real files
@pytest.fixture(scope="module")
def real():
    """The real MNIST, from the cache (or fetched into it: tox fetches it before the tests)."""
    return data.load_mnist()


def _arrays(mnist):
    return {s.key: getattr(mnist, s.key) for s in data.SPECS}


@pytest.mark.slow
def test_real_mnist_counts_shapes_hashes(real):
    assert real.x_train.shape == (60_000, 28, 28) and real.x_test.shape == (10_000, 28, 28)
    assert real.x_train.dtype == np.uint8 and real.y_test.dtype == np.uint8
    assert np.bincount(real.y_train).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(real.y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    for spec in data.SPECS:
        assert payload_sha256(getattr(real, spec.key)) == spec.payload_sha256


@pytest.mark.slow
def test_wrong_hash_is_refused_and_nothing_is_cached(real, tmp_path, monkeypatch):
    monkeypatch.setenv("REPRODUCTION_CACHE_DIR", str(tmp_path / "cache"))
    arrays = _arrays(real)
    bad = arrays["y_test"].copy()
    bad[0] = (bad[0] + 1) % 10
    with pytest.raises(
        DataError,
        match="t10k-labels-idx1-ubyte.*payload SHA-256 [0-9a-f]{64} does not match the pinned ddeff807",
    ):
        data.load_mnist(remote_sources=(("fake", lambda: {**arrays, "y_test": bad}),))
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


@pytest.mark.slow
def test_corrupted_cache_is_detected_and_replaced(real, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("REPRODUCTION_CACHE_DIR", str(cache))
    calls = []

    def source():
        calls.append(1)
        return _arrays(real)

    data.load_mnist(remote_sources=(("fake", source),))  # fills the cache
    assert len(calls) == 1
    data.load_mnist(remote_sources=(("fake", source),))  # served from the cache
    assert len(calls) == 1
    target = cache / "train-images-idx3-ubyte"
    blob = bytearray(target.read_bytes())
    blob[1000] ^= 0xFF
    target.write_bytes(bytes(blob))
    mnist = data.load_mnist(remote_sources=(("fake", source),))  # damaged: refetched and replaced
    assert len(calls) == 2 and "fake" in mnist.source
    assert payload_sha256(parse_idx(target.read_bytes(), "t")) == data.SPEC_BY_KEY["x_train"].payload_sha256


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["idx", "idx-gz", "npz"])
def test_user_directory_sources(real, tmp_path, layout):
    for spec in data.SPECS:
        raw = encode_idx(getattr(real, spec.key))
        if layout == "idx":
            (tmp_path / spec.filename).write_bytes(raw)
        elif layout == "idx-gz":
            (tmp_path / (spec.filename + ".gz")).write_bytes(gzip.compress(raw, compresslevel=1))
    if layout == "npz":
        np.savez(tmp_path / "mnist.npz", **_arrays(real))
    mnist = data.load_mnist(tmp_path)
    assert mnist.source == str(tmp_path)
    np.testing.assert_array_equal(mnist.y_train, real.y_train)


def test_empty_user_directory_is_an_error(tmp_path):
    with pytest.raises(DataError, match="expected the four IDX files"):
        data.load_mnist(tmp_path)


def test_no_cache_and_no_fetch_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRODUCTION_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("REPRODUCTION_DATA_DIR", raising=False)
    with pytest.raises(DataError, match="fetch-data"):
        data.load_mnist(fetch=False)


def test_all_sources_failing_lists_each(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRODUCTION_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("REPRODUCTION_DATA_DIR", raising=False)

    def broken():
        raise OSError("unreachable")

    with pytest.raises(DataError, match="no MNIST source worked:\n  a: unreachable\n  b: unreachable"):
        data.load_mnist(remote_sources=(("a", broken), ("b", broken)))


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("REPRODUCTION_CACHE_DIR", str(tmp_path / "explicit"))
    assert data.cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("REPRODUCTION_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.cache_dir() == tmp_path / "xdg" / "reproduction"


# (index, label, sum of the raw pixels, pixels that are not 0): the first images are the well-known 5, 0, 4
# and 7, 2, 1; the sums tie each label to its image, so a reader that shifts one against the other fails.
KNOWN_TRAIN = [
    (0, 5, 27525, 166),
    (1, 0, 31095, 176),
    (2, 4, 19443, 120),
    (7, 3, 35867, 200),
    (59_999, 8, 20920, 143),
]
KNOWN_TEST = [
    (0, 7, 18454, 116),
    (1, 2, 28850, 165),
    (2, 1, 9871, 64),
    (7, 9, 21062, 129),
    (9_999, 6, 41833, 240),
]


@pytest.mark.slow
def test_images_are_paired_with_their_labels_after_preprocessing(real):
    x, y, xt, yt = real.preprocessed()
    for images, labels, known in ((x, y, KNOWN_TRAIN), (xt, yt, KNOWN_TEST)):
        for index, label, pixel_sum, lit in known:
            raw = np.rint((images[index, ..., 0] + 0.5) * 255.0)
            assert (int(labels[index]), int(raw.sum()), int((raw > 0).sum())) == (label, pixel_sum, lit), (
                index
            )


@pytest.mark.slow
def test_labels_describe_their_images(real):
    """Independent of any pinned number: class means of the training images classify the test images
    (82% on MNIST); one label shifted against its image drops that to chance."""
    x, y, xt, yt = real.preprocessed()
    centroids = np.stack([x[y == k].reshape(-1, 784).mean(axis=0) for k in range(10)])
    flat = xt.reshape(-1, 784)
    distances = (flat**2).sum(1)[:, None] - 2 * flat @ centroids.T + (centroids**2).sum(1)[None]
    predicted = distances.argmin(axis=1)
    assert (predicted == yt).mean() > 0.80
    assert (predicted == np.roll(yt, 1)).mean() < 0.15

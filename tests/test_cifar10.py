"""CIFAR-10 and the paper's Wide ResNet (reproduction/cifar10.py, wide_resnet.py, workloads/cifar10.py), on
CPU: the loader on small files written here in the official python-version format, and its refusals; WRN-16-4
against its architecture's parameter count; a narrow WRN trained briefly through the generic engine; the
workload as defined, refused by the claims until it is calibrated."""

from __future__ import annotations

import dataclasses
import os
import pickle

import numpy as np
import pytest

from reproduction.cifar10 import TEST_FILE, TRAIN_FILES, load_cifar10
from reproduction.data import DataError
from reproduction.errors import UsageError
from reproduction.workloads import get_workload, register


def write_batch(path, images, labels):
    """A batch as the official files hold one: a protocol-2 pickle of a dict with bytes keys, b'data' the
    (n, 3072) uint8 channel planes (1024 red, 1024 green, 1024 blue, each row-major 32 x 32)."""
    data = np.asarray(images, np.uint8).transpose(0, 3, 1, 2).reshape(len(images), 3072)
    content = {
        b"batch_label": b"training batch",
        b"labels": [int(k) for k in labels],
        b"data": data,
        b"filenames": [f"image_{i}.png".encode() for i in range(len(images))],
    }
    path.write_bytes(pickle.dumps(content, protocol=2))


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory):
    """Five training batches of 40 images and a test batch of 40: each class a colour, with noise."""
    root = tmp_path_factory.mktemp("cifar-10-batches-py")
    rng = np.random.default_rng(0)
    for name in (*TRAIN_FILES, TEST_FILE):
        labels = rng.integers(0, 10, size=40)
        images = rng.integers(0, 60, size=(40, 32, 32, 3))
        images[..., labels % 3] += 20 * labels[:, None, None, None] // 3 + 40
        images[:, : 3 * (labels[0] % 4 + 1), :, :] //= 2
        write_batch(root / name, np.clip(images, 0, 255), labels)
    return root


def test_the_loader_reads_the_official_layout(cifar_dir, tmp_path):
    image = np.zeros((1, 32, 32, 3), np.uint8)
    image[0, 0, 1] = (1, 2, 3)  # row 0, column 1: data[1], data[1025], data[2049]
    for name in (*TRAIN_FILES, TEST_FILE):
        write_batch(tmp_path / name, image, [7])
    cifar = load_cifar10(tmp_path, full=False)
    assert cifar.x_train.shape == (5, 32, 32, 3) and cifar.y_test.tolist() == [7]
    assert cifar.x_train[0, 0, 1].tolist() == [1, 2, 3] and cifar.x_train[0].sum() == 6
    data = load_cifar10(cifar_dir, full=False)
    assert (len(data.x_train), len(data.x_test)) == (200, 40)
    x, y, xt, yt = data.preprocessed()
    assert x.dtype == np.float32 and x.shape == (200, 32, 32, 3) and y.dtype == np.int32
    np.testing.assert_allclose(x.mean(axis=(0, 1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(x.astype(np.float64).std(axis=(0, 1, 2)), 1.0, atol=1e-5)


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.mark.parametrize(
    "content, message",
    [
        (b"not a pickle", "is not a python-version batch"),
        (pickle.dumps(_Exploit(), protocol=2), r"refused to load posix\.system"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8)}, protocol=2), "b'data' and b'labels'"),
        (pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}), r"\(n, 3072\) uint8"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}), r"lie in 0\.\.9"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}), "must be 2 integers"),
    ],
)
def test_a_wrong_file_is_refused_naming_it_and_the_problem(cifar_dir, tmp_path, content, message):
    for name in (*TRAIN_FILES, TEST_FILE):
        (tmp_path / name).write_bytes((cifar_dir / name).read_bytes())
    (tmp_path / "data_batch_3").write_bytes(content)
    with pytest.raises(DataError, match=f"data_batch_3.*{message}|{message}.*data_batch_3"):
        load_cifar10(tmp_path, full=False)


def test_a_missing_file_a_missing_directory_and_a_partial_copy_are_refused(cifar_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("REPRODUCTION_CIFAR10_DIR", raising=False)
    with pytest.raises(DataError, match="never downloaded: point --data-dir"):
        load_cifar10(None)
    with pytest.raises(DataError, match="data_batch_1 is missing"):
        load_cifar10(tmp_path)
    with pytest.raises(DataError, match=r"200 train images .* expected the full set's 50000, 5000 per class"):
        load_cifar10(cifar_dir)  # full=True: what the workload trains on


def test_a_complete_copy_passes_fetch_data_with_its_hashes(tmp_path, capsys, monkeypatch):
    """The full-set check on a balanced copy (its expected counts scaled down to 100 and 10 images):
    fetch-data reads and checks it and prints each array's payload hash; nothing is cached."""
    from reproduction import cifar10
    from reproduction.cli import main

    rng = np.random.default_rng(1)
    for name in TRAIN_FILES:
        write_batch(tmp_path / name, rng.integers(0, 256, size=(20, 32, 32, 3)), np.arange(20) % 10)
    write_batch(tmp_path / TEST_FILE, rng.integers(0, 256, size=(10, 32, 32, 3)), np.arange(10))
    monkeypatch.setattr(cifar10, "FULL_COUNTS", {"train": 100, "test": 10})
    assert main(["fetch-data", "--dataset", "cifar10", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"cifar10 verified, from {tmp_path}" in out and "(100, 32, 32, 3)" in out and "(10,)" in out
    assert "cache:" not in out


# --------------------------------------------------------------------------------------------- the model
def wrn_parameters(depth: int, width: int, classes: int = 10) -> int:
    """Trainable parameters of WRN-depth-width from its architecture: bias-free 3x3 convolutions, a 1x1
    shortcut where the width changes, gamma and beta per normalized channel, a dense classifier."""
    n, total, channels = (depth - 4) // 6, 3 * 3 * 3 * 16, 16
    for group in range(3):
        filters = 16 * width * 2**group
        for _ in range(n):
            total += 2 * channels  # the block's first normalization
            total += 9 * channels * filters + 2 * filters + 9 * filters * filters
            if channels != filters:
                total += channels * filters  # 1x1 shortcut
            channels = filters
    return total + 2 * channels + channels * classes + classes


def test_wrn_16_4_has_its_architectures_parameter_count_and_ghost_batches_of_128():
    from reproduction.ghost_batch_norm import GhostBatchNormalization
    from reproduction.wide_resnet import build_wide_resnet

    model = get_workload("cifar10").build_model(0)
    trainable = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    assert trainable == wrn_parameters(16, 4) == 2_748_890  # Zagoruyko & Komodakis's table: 2.7M
    ghost = [layer for layer in model.layers if isinstance(layer, GhostBatchNormalization)]
    assert len(ghost) == 13 and {layer.virtual_batch_size for layer in ghost} == {128}
    assert model.output_shape == (None, 10) and len(model.losses) == 17  # L2: 16 convolutions, the dense
    with pytest.raises(ValueError, match="depth=12: expected 6n \\+ 4"):
        build_wide_resnet(depth=12)


def narrow_wrn(seed: int):
    from reproduction.wide_resnet import build_wide_resnet

    return build_wide_resnet(depth=10, width=1, virtual_batch_size=4, seed=seed)


def test_a_narrow_wrn_trains_briefly_through_the_generic_engine(cifar_dir):
    from reproduction.training import Trainer

    cifar = register(
        dataclasses.replace(
            get_workload("cifar10"),
            name="cifar10-narrow",
            n_train=200,
            base_batch=8,
            factor=5,
            steps=2,
            epochs_per_step=1,
            build_model=narrow_wrn,
        )
    )
    result = Trainer(load_cifar10(cifar_dir, full=False).preprocessed()).train(
        cifar.config("momentum", "increase", 0)
    )
    assert [e.batch_size for e in result.epochs] == [8, 40]
    assert [e.steps for e in result.epochs] == [25, 5]
    assert all(np.isfinite(e.train_loss) and e.noise_estimates > 0 for e in result.epochs)
    assert result.metadata["model"] == "wrn_10_1"
    assert "parts of whole virtual batches (4 examples)" in result.metadata["noise_scale"]


def test_weight_decay_enters_each_update_once_however_the_batch_is_cut(cifar_dir):
    """A batch of 32 in chunks of 8 (each in two parts of a virtual batch of 4) and in one piece: the same
    update, L2 included (a chunk that added the whole penalty would add it four times)."""
    import keras
    import tensorflow as tf

    from reproduction.classifier import output_kind
    from reproduction.training import GenericEngine, configure_determinism

    configure_determinism()
    x, y = (tf.constant(a[:64]) for a in load_cifar10(cifar_dir, full=False).preprocessed()[:2])
    weights = []
    for target in (8, 32):
        model = narrow_wrn(0)
        engine = GenericEngine(model, keras.optimizers.SGD(0.1), output_kind(model), chunk_target=target)
        engine.warm_up(x, y)
        engine.train_epoch(x, y, 0.1, 32, (0, 0))
        weights.append(model.get_weights())
    for u, v in zip(*weights, strict=True):
        np.testing.assert_allclose(u, v, atol=1e-5)


# ------------------------------------------------------------------------------------------ the workload
def test_the_workload_follows_the_paper_and_its_claims_wait_for_a_calibration():
    from reproduction import calibration

    workload = get_workload("cifar10")
    increase = workload.config("momentum", "increase", 0).build_schedule()
    assert [p.batch_size for p in increase.phases] == [128, 640, 3200, 16000]
    decay = workload.config("momentum", "decay", 0).build_schedule()
    assert (decay.parameter_updates(50_000), increase.parameter_updates(50_000)) == (78_200, 24_500)
    assert workload.resources == {"GPU": 1}
    with pytest.raises(
        UsageError, match="cifar10.json is missing; run `reproduction calibrate --workload cifar10`"
    ):
        calibration.read_margins(workload)


def test_without_the_data_or_a_calibration_the_commands_stop_in_one_line_before_any_run(
    tmp_path, capsys, monkeypatch
):
    from reproduction.cli import main

    monkeypatch.delenv("REPRODUCTION_CIFAR10_DIR", raising=False)
    assert main(["fetch-data", "--dataset", "cifar10"]) == 2
    assert "CIFAR-10 is never downloaded" in capsys.readouterr().err.strip().splitlines()[-1]
    runs = tmp_path / "runs"
    assert main(["reproduce", "--workload", "cifar10", "--runs-dir", str(runs), "--out", str(tmp_path)]) == 2
    assert "cifar10.json is missing; run `reproduction calibrate" in capsys.readouterr().err.strip()
    assert not runs.exists() or not list(runs.iterdir())

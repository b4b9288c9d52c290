"""GhostBatchNormalization: construction, tracing, serialization, the moving-statistics rule."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from reproduction.ghost_batch_norm import GhostBatchNormalization


def _layer(v=10, **kw):
    layer = GhostBatchNormalization(v, **kw)
    layer.build((None, 6, 6, 2))
    return layer


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"virtual_batch_size": 0}, "virtual_batch_size=0"),
        ({"virtual_batch_size": 2.5}, "virtual_batch_size=2.5"),
        ({"momentum": 1.0}, "momentum=1.0"),
        ({"epsilon": 0.0}, "epsilon=0.0"),
        ({"axis": 1}, "axis=1"),
    ],
)
def test_invalid_arguments_name_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GhostBatchNormalization(**kwargs)


def test_one_trace_for_every_batch_size():
    layer = _layer(5)
    fn = tf.function(
        lambda x: layer(x, training=True), input_signature=[tf.TensorSpec([None, 6, 6, 2], tf.float32)]
    )
    for batch in (5, 10, 23, 100, 1):
        out = fn(tf.random.normal([batch, 6, 6, 2]))
        assert out.shape == (batch, 6, 6, 2)
    assert fn.experimental_get_tracing_count() == 1


def test_last_virtual_batch_may_be_smaller():
    """Rule: 23 examples with V=10 -> virtual batches of 10, 10 and 3, each on its own statistics."""
    rng = np.random.default_rng(1)
    x = rng.normal(3.0, 2.0, size=(23, 6, 6, 2)).astype(np.float32)
    out = _layer(10, epsilon=1e-6)(x, training=True).numpy()
    for lo, hi in ((0, 10), (10, 20), (20, 23)):
        np.testing.assert_allclose(out[lo:hi].mean(axis=(0, 1, 2)), 0.0, atol=1e-4)
        np.testing.assert_allclose(out[lo:hi].var(axis=(0, 1, 2)), 1.0, rtol=1e-3)


def test_moving_statistics_weight_virtual_batches_by_size():
    rng = np.random.default_rng(2)
    x = rng.normal(0.0, 1.0, size=(13, 4, 4, 1)).astype(np.float32)
    x[10:] += 5.0
    layer = GhostBatchNormalization(10, momentum=0.0)
    layer(x, training=True)
    means = [x[:10].mean(), x[10:].mean()]
    variances = [x[:10].var(), x[10:].var()]
    np.testing.assert_allclose(layer.moving_mean.numpy(), [(10 * means[0] + 3 * means[1]) / 13], rtol=1e-5)
    np.testing.assert_allclose(
        layer.moving_variance.numpy(), [(10 * variances[0] + 3 * variances[1]) / 13], rtol=1e-5
    )


def test_config_and_saving_round_trip(tmp_path):
    inputs = keras.Input((6, 6, 2))
    model = keras.Model(inputs, GhostBatchNormalization(4, momentum=0.9, epsilon=1e-4, name="gbn")(inputs))
    model.get_layer("gbn")(
        np.random.default_rng(3).normal(size=(8, 6, 6, 2)).astype("float32"), training=True
    )
    clone = GhostBatchNormalization.from_config(model.get_layer("gbn").get_config())
    assert (clone.virtual_batch_size, clone.momentum, clone.epsilon) == (4, 0.9, 1e-4)
    path = tmp_path / "gbn.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    x = np.random.default_rng(4).normal(size=(5, 6, 6, 2)).astype("float32")
    np.testing.assert_allclose(loaded(x, training=False), model(x, training=False), rtol=1e-6)
    np.testing.assert_array_equal(
        loaded.get_layer("gbn").moving_mean.numpy(), model.get_layer("gbn").moving_mean.numpy()
    )


def test_center_and_scale_off_create_no_weights():
    layer = _layer(center=False, scale=False)
    assert layer.gamma is None and layer.beta is None
    assert len(layer.trainable_weights) == 0

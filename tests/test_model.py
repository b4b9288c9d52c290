"""The report's CNN and its folded fast path (model.logits) against the unfolded Keras model."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from reproduction.ghost_batch_norm import GhostBatchNormalization
from reproduction.model import ModelOptions, build_cnn, logits

X = np.random.default_rng(0).normal(0.0, 0.3, size=(40, 28, 28, 1)).astype(np.float32)
Y = np.random.default_rng(1).integers(0, 10, size=40).astype(np.int32)


def test_architecture_and_parameter_count():
    model = build_cnn()
    assert [type(layer).__name__ for layer in model.layers[1:]] == [
        "GhostBatchNormalization",
        "Conv2D",
        "MaxPooling2D",
        "Flatten",
        "Dense",
    ]
    # GBN: gamma, beta (+2 moving); conv 3*3*1*8 + 8; dense 13*13*8*10 + 10
    assert model.count_params() == 4 + 80 + 13530
    assert sum(int(np.prod(v.shape)) for v in model.trainable_variables) == 2 + 80 + 13530
    assert model.get_layer("norm").virtual_batch_size == 10
    assert model.get_layer("conv").activation.__name__ == "linear"


@pytest.mark.parametrize("normalization", ["ghost", "batch", "none"])
def test_output_shape_and_softmax(normalization):
    model = build_cnn(ModelOptions(normalization=normalization))
    out = model(X[:7], training=False).numpy()
    assert out.shape == (7, 10)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"normalization": "layer"}, r"normalization='layer': expected one of \['ghost', 'batch', 'none'\]"),
        ({"virtual_batch_size": 0}, "virtual_batch_size=0"),
        ({"filters": -1}, "filters=-1"),
        ({"bn_momentum": 1.5}, "bn_momentum=1.5"),
    ],
)
def test_options_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ModelOptions(**kwargs)


def _perturbed(normalization):
    """A model whose gamma and beta are away from 1 and 0, so the fold has something to fold."""
    keras.utils.set_random_seed(3)
    model = build_cnn(ModelOptions(normalization=normalization))
    norm = model.get_layer("norm") if normalization != "none" else None
    if norm is not None:
        norm.gamma.assign([1.7])
        norm.beta.assign([-0.4])
        norm.moving_mean.assign([0.1])
        norm.moving_variance.assign([0.5])
    return model


def _loss_and_grads(model, fn):
    with tf.GradientTape() as tape:
        loss = fn()
    return float(loss), tape.gradient(loss, model.trainable_variables)


@pytest.mark.parametrize("normalization", ["ghost", "batch", "none"])
@pytest.mark.parametrize("training", [True, False])
def test_fold_equals_the_keras_model_value_and_gradient(normalization, training):
    ref, fast = _perturbed(normalization), _perturbed(normalization)
    ref_loss, ref_grads = _loss_and_grads(
        ref,
        lambda: tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(Y, ref(X, training=training))),
    )
    fast_loss, fast_grads = _loss_and_grads(
        fast,
        lambda: tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(Y, logits(fast, X, training=training))
        ),
    )
    assert fast_loss == pytest.approx(ref_loss, rel=1e-5)
    for a, b in zip(ref_grads, fast_grads, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    if normalization != "none":
        # the fast path moves the statistics exactly as the layer does
        for name in ("moving_mean", "moving_variance"):
            np.testing.assert_allclose(
                getattr(ref.get_layer("norm"), name).numpy(),
                getattr(fast.get_layer("norm"), name).numpy(),
                rtol=1e-6,
            )


def test_fold_needs_no_input_gradient_of_the_convolution():
    """The point of the fold: with it, the training graph has no Conv2DBackpropInput."""
    model = build_cnn()

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits(model, x, True)))
        return tape.gradient(loss, model.trainable_variables)

    graph = step.get_concrete_function(
        tf.TensorSpec([None, 28, 28, 1]), tf.TensorSpec([None], tf.int32)
    ).graph
    ops = {op.type for op in graph.get_operations()}
    assert "Conv2DBackpropFilter" in ops
    # the input gradient may be built by autodiff but is pruned at run time; assert nothing consumes it
    consumers = [
        c
        for op in graph.get_operations()
        if op.type == "Conv2DBackpropInput"
        for out in op.outputs
        for c in out.consumers()
    ]
    assert consumers == []


def test_ghost_layer_is_the_first_layer_and_serializes(tmp_path):
    model = build_cnn()
    path = tmp_path / "cnn.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.get_layer("norm"), GhostBatchNormalization)
    np.testing.assert_allclose(loaded(X[:3]), model(X[:3]), rtol=1e-6)


@pytest.mark.parametrize("normalization", ["ghost", "none"])
def test_initial_weights_depend_on_the_seed_alone(normalization):
    """build_cnn(seed=s) gives the weights keras.utils.set_random_seed(s) + build_cnn() gives, whatever else
    drew from Python's global random before (as a Dask worker's event loop does)."""
    import random

    options = ModelOptions(normalization=normalization)
    keras.utils.set_random_seed(3)
    reference = build_cnn(options).get_weights()
    random.seed(999)
    random.random()
    assert all(
        np.array_equal(a, b) for a, b in zip(reference, build_cnn(options, seed=3).get_weights(), strict=True)
    )
    kernel = build_cnn(options, seed=4).get_layer("conv").kernel.numpy()
    assert not np.array_equal(kernel, build_cnn(options, seed=3).get_layer("conv").kernel.numpy())

"""The group report's CNN, and its exact fast forward pass.

    Input(28, 28, 1) -> GhostBatchNormalization(virtual batch 10) -> Conv2D(8, 3x3, valid, no activation)
    -> MaxPooling2D(2) -> Flatten -> Dense(10, softmax)

``normalization`` switches the first layer to plain Keras BatchNormalization or removes it (for controls;
"none" is also Victor Zhou's Keras MNIST CNN, the report's Adam baseline).

Fast path (``logits``): the normalization is a per-channel affine map ``gamma * x_hat + beta`` whose input
``x_hat`` depends on no trainable weight, and a linear convolution follows it, so
    conv(gamma * x_hat + beta, W) + b = conv(x_hat, W * gamma[c_in]) + sum_{h,w,c_in}(W * beta[c_in]) + b
(exact for 'valid' padding: every output sees a full window). Autodiff through the right-hand side needs the
convolution's filter gradient only, never its input gradient, which more than halves a training step. The
unfolded Keras model stays the reference: tests check both agree, value and gradient.
"""

from __future__ import annotations

import random

import keras
import tensorflow as tf

from reproduction.config import NORMALIZATIONS, ModelOptions  # noqa: F401  (ModelOptions: re-exported)
from reproduction.ghost_batch_norm import GhostBatchNormalization


def build_cnn(options: ModelOptions = ModelOptions(), seed: int | None = None) -> keras.Model:
    """The report's CNN. ``seed``: its initial weights depend on the seed alone, the same weights
    keras.utils.set_random_seed(seed) followed by a build would give. (Keras draws each initializer's seed
    from Python's global ``random``, which other threads of the process may also draw from, such as a Dask
    worker's event loop, so the weights of a build after set_random_seed are not guaranteed there.)
    None: Keras's global draw."""
    if seed is None:
        kernels = ("glorot_uniform", "glorot_uniform")
    else:  # Keras's own draw, random.randint(1, 1e9) after random.seed(seed), from a private generator
        draw = random.Random(seed)
        kernels = tuple(keras.initializers.GlorotUniform(seed=draw.randint(1, int(1e9))) for _ in range(2))
    inputs = keras.Input(shape=(28, 28, 1), name="image")
    h = inputs
    if options.normalization == "ghost":
        h = GhostBatchNormalization(options.virtual_batch_size, momentum=options.bn_momentum, name="norm")(h)
    elif options.normalization == "batch":
        h = keras.layers.BatchNormalization(momentum=options.bn_momentum, name="norm")(h)
    h = keras.layers.Conv2D(
        options.filters, 3, padding="valid", activation=None, kernel_initializer=kernels[0], name="conv"
    )(h)
    h = keras.layers.MaxPooling2D(2, name="pool")(h)
    h = keras.layers.Flatten(name="flatten")(h)
    outputs = keras.layers.Dense(10, activation="softmax", kernel_initializer=kernels[1], name="dense")(h)
    return keras.Model(inputs, outputs, name=f"report_cnn_{options.normalization}")


def _layer(model: keras.Model, name: str):
    try:
        return model.get_layer(name)
    except ValueError:
        return None


def forward(model: keras.Model, x, training: bool):
    """(logits, statistics) of a ``build_cnn`` model, with the normalization folded into the convolution.

    In training mode with ghost BN, ``statistics`` is (mean, variance, examples): the virtual-batch
    statistics the moving averages take in, *not yet applied*, so a caller that splits a batch into chunks
    can combine them and update once per step. Otherwise it is None (plain Keras BN updates itself).
    """
    norm, conv, dense = _layer(model, "norm"), model.get_layer("conv"), model.get_layer("dense")
    kernel, bias = tf.convert_to_tensor(conv.kernel), tf.convert_to_tensor(conv.bias)
    statistics = None
    if isinstance(norm, GhostBatchNormalization):
        if training:
            x, mean, variance = norm.standardize(x)
            statistics = (mean, variance, tf.cast(tf.shape(x)[0], mean.dtype))
            scale, shift = norm.affine()
        else:
            scale, shift = norm.inference_scale_shift()
        bias = bias + tf.reduce_sum(kernel * shift[None, None, :, None], axis=(0, 1, 2))
        kernel = kernel * scale[None, None, :, None]
    elif norm is not None:  # plain Keras BN: no fold, the reference behaviour
        x = norm(x, training=training)
    h = tf.nn.conv2d(x, kernel, strides=1, padding="VALID") + bias
    h = tf.nn.max_pool2d(h, ksize=2, strides=2, padding="VALID")
    h = tf.reshape(h, [-1, h.shape[1] * h.shape[2] * h.shape[3]])  # static size: batch may be 0
    return tf.matmul(h, dense.kernel) + dense.bias, statistics


def logits(model: keras.Model, x, training: bool):
    """Pre-softmax outputs; in training mode the moving statistics move exactly as the layer's own call."""
    z, statistics = forward(model, x, training)
    if statistics is not None:
        model.get_layer("norm").update_moving_statistics(*statistics[:2])
    return z


def micro_batch_size(options: ModelOptions, target: int = 500) -> int | None:
    """Largest chunk, at most ``target`` examples, into which a training batch may be split with an
    identical gradient: a multiple of the ghost batch (virtual batches stay whole); any size without
    normalization; None (never split) for plain BN, whose statistics span the whole batch."""
    if options.normalization == "ghost":
        return max(1, target // options.virtual_batch_size) * options.virtual_batch_size
    if options.normalization == "none":
        return target
    return None

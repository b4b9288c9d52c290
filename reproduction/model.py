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
from reproduction.errors import UsageError
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


def two_parts(n, unit: int):
    """Where a chunk of ``n`` examples splits into two parts of whole units (virtual batches): the first
    ceil(units / 2) units, then the rest (empty when there is a single unit)."""
    units = (n + unit - 1) // unit
    return tf.minimum(((units + 1) // 2) * unit, n)


def split_gradients(model: keras.Model, x, y, scale):
    """The gradient of ``scale * sum(loss)`` over the examples of ``x``, in two parts: the first half of its
    virtual batches and the rest, from one forward and one backward pass through the folded model.

    Returns (parts, sizes, loss_sum, statistics): ``parts`` one tensor per trainable variable, shaped
    (2, *variable.shape), whose sum over the first axis is the chunk's gradient; ``sizes`` the examples in
    each part; ``statistics`` as ``forward``'s. Each part's gradient is the parameters' reduction over its
    own examples of the per-example gradients of the convolution's output and of the logits (no example
    of one part touches the other: ghost BN normalizes within a virtual batch), so the two parts are the
    independent small-batch gradients the gradient noise scale needs (reproduction/noise_scale.py), at the
    cost of one more filter-gradient call instead of another backward pass. A ``build_cnn`` model with ghost
    or no normalization (plain BN couples the whole batch: use ``forward`` and a tape)."""
    norm, conv, dense = _layer(model, "norm"), model.get_layer("conv"), model.get_layer("dense")
    kernel, bias = tf.convert_to_tensor(conv.kernel), tf.convert_to_tensor(conv.bias)
    n = tf.shape(x)[0]
    x, statistics, (gamma, beta), split = standardized(norm, x, n, kernel.shape[2])
    folded_kernel = kernel * gamma[None, None, :, None]
    folded_bias = bias + tf.reduce_sum(kernel * beta[None, None, :, None], axis=(0, 1, 2))
    h, d_pre, d_z, loss_sum = backward_to_activations(x, y, folded_kernel, folded_bias, dense, scale)
    halves = (slice(0, split), slice(split, None))
    d_kernel = tf.stack([_filter_gradient(x[part], folded_kernel, d_pre[part]) for part in halves])
    d_bias = tf.stack([tf.reduce_sum(d_pre[part], axis=(0, 1, 2)) for part in halves])  # (2, filters)
    grads = {
        id(conv.kernel): d_kernel * gamma[None, None, None, :, None]
        + d_bias[:, None, None, None, :] * beta[None, None, None, :, None],
        id(conv.bias): d_bias,
        id(dense.kernel): tf.stack([tf.matmul(h[part], d_z[part], transpose_a=True) for part in halves]),
        id(dense.bias): tf.stack([tf.reduce_sum(d_z[part], axis=0) for part in halves]),
    }
    if norm is not None:  # back through the fold: kernel' = kernel * gamma, bias' = bias + sum(kernel * beta)
        if norm.gamma is not None:
            grads[id(norm.gamma)] = tf.reduce_sum(d_kernel * kernel[None], axis=(1, 2, 4))
        if norm.beta is not None:
            grads[id(norm.beta)] = tf.reduce_sum(
                d_bias[:, None, :] * tf.reduce_sum(kernel, axis=(0, 1))[None], axis=2
            )
    sizes = tf.stack([split, n - split])
    return [grads[id(v)] for v in model.trainable_variables], sizes, loss_sum, statistics


def standardized(norm, x, n, channels):
    """(x standardized per virtual batch, its statistics, (gamma, beta), where the two parts split)."""
    if isinstance(norm, GhostBatchNormalization):
        x, mean, variance = norm.standardize(x)
        return (
            x,
            (mean, variance, tf.cast(n, mean.dtype)),
            norm.affine(),
            two_parts(n, norm.virtual_batch_size),
        )
    if norm is None:
        return x, None, (tf.ones([channels]), tf.zeros([channels])), two_parts(n, 1)
    raise UsageError("split_gradients: plain batch norm couples the whole batch; use forward() and a tape")


def backward_to_activations(x, y, folded_kernel, folded_bias, dense, scale):
    """The folded forward pass and the backward pass down to the convolution's output and the logits: the
    pooled activations h, the gradients of ``scale * sum(loss)`` there, and the loss sum."""
    with tf.GradientTape() as tape:
        pre = tf.nn.conv2d(x, folded_kernel, strides=1, padding="VALID") + folded_bias
        tape.watch(pre)
        h = tf.nn.max_pool2d(pre, ksize=2, strides=2, padding="VALID")
        h = tf.reshape(h, [-1, h.shape[1] * h.shape[2] * h.shape[3]])
        z = tf.matmul(h, dense.kernel) + dense.bias
        tape.watch(z)
        loss_sum = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(y, z))
        scaled = loss_sum * scale
    d_pre, d_z = tape.gradient(scaled, [pre, z])
    return h, d_pre, d_z, loss_sum


def _filter_gradient(x, kernel, d_out):
    """The convolution's filter gradient over the examples of ``x`` (in the folded coordinates)."""
    return tf.raw_ops.Conv2DBackpropFilter(
        input=x, filter_sizes=tf.shape(kernel), out_backprop=d_out, strides=[1, 1, 1, 1], padding="VALID"
    )


def logits(model: keras.Model, x, training: bool):
    """Pre-softmax outputs; in training mode the moving statistics move exactly as the layer's own call."""
    z, statistics = forward(model, x, training)
    if statistics is not None:
        model.get_layer("norm").update_moving_statistics(*statistics[:2])
    return z


# Chunks of the base batch: a B-500 update in one chunk of 500 (a working set of about 30 MB) ran 1.3x slower
# per example than a B-100 one on a Zen-4 EPYC, in chunks of 100 2x faster, overlapping on the inter-op
# threads (docs/engine.md); and every epoch's noise estimate then pairs the same part and chunk sizes.
MICRO_BATCH = 100


def micro_batch_size(options: ModelOptions, target: int = MICRO_BATCH) -> int | None:
    """Largest chunk, at most ``target`` examples, into which a training batch may be split with an
    identical gradient: a multiple of the ghost batch (virtual batches stay whole); any size without
    normalization; None (never split) for plain BN, whose statistics span the whole batch."""
    if options.normalization == "ghost":
        return max(1, target // options.virtual_batch_size) * options.virtual_batch_size
    if options.normalization == "none":
        return target
    return None

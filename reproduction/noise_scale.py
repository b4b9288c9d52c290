"""The gradient noise scale B_simple = tr(Sigma) / |G|^2 (McCandlish, Kaplan, Amodei et al. 2018, App. A).

B_simple is the batch size beyond which a larger batch stops paying: the variance of a batch-B gradient is
tr(Sigma) / B, so at B = B_simple noise and signal are equal. The paper beside ours (Smith et al.) lowers
the *SGD* noise scale g = eps N / (B (1 - m)); this module measures the other side, the *gradient's*.

Estimator (unbiased, from two batch sizes b < B, never the ratio of noisy ratios):
    E|G_b|^2 = |G|^2 + tr(Sigma) / b
    |G|^2     = (B |G_B|^2 - b |G_b|^2) / (B - b)
    tr(Sigma) = (|G_b|^2 - |G_B|^2) / (1/b - 1/B)
Here b is one *unit* and B the whole probe: |G_b|^2 is averaged over the probe's units, |G_B|^2 is the
squared norm of their mean. When several estimates are pooled (epochs, runs), numerator and denominator are
averaged separately (``pooled``).

The unit. Ghost batch norm normalizes each virtual batch of V examples on its own statistics, so an
example's gradient in training mode depends on the other V - 1 examples of its virtual batch: it is not an
independent sample, but a virtual batch is. The gradient the engine applies for a batch of B is exactly the
mean of its B / V virtual batches' gradients, and the virtual batches of a shuffled batch are independent
draws; so the unit is one virtual batch (b = V), and tr(Sigma) is per example (a batch of B has gradient
variance tr(Sigma) / B). Measuring in inference mode instead would measure a gradient SGD never takes.
Without normalization the unit is one example; plain batch norm couples the whole batch, so it has no unit
smaller than the batch and is not measured (``unit_size`` returns None).

The measurement (``NoiseProbe``) runs on a fixed probe of the training set (the same examples for every
run, so runs compare paired), on the current weights, in training-mode normalization *without* touching
the moving statistics or any random state: training with and without it is bit-identical
(tests/test_noise_scale.py). The per-unit gradients come from one vectorized pass (``unit_gradients``):
one backward pass to the convolution's output, then each unit's dense and convolution gradients as batched
products (the convolution's filter gradient as a depthwise correlation with one channel per unit), checked
against a loop of per-unit ``GradientTape`` calls through the Keras layers.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

PROBE_EXAMPLES = 4000  # 400 virtual batches; about 0.07 s on 2 cores, ~3% of a run (docs/engine-speed.md)
PROBE_SEED = 20180  # fixed: every run is measured on the same examples


@dataclasses.dataclass(frozen=True)
class NoiseScale:
    gradient_sq: float  # |G|^2, unbiased
    trace: float  # tr(Sigma), per example, unbiased

    @property
    def b_simple(self) -> float:
        """tr(Sigma) / |G|^2; inf when the probe cannot tell |G|^2 from 0 (noise swamps the signal); NaN when
        not measured."""
        if math.isnan(self.gradient_sq):
            return math.nan
        return self.trace / self.gradient_sq if self.gradient_sq > 0 else math.inf


def estimate(small_sq: float, big_sq: float, b_small: int, b_big: int) -> NoiseScale:
    """Unbiased |G|^2 and tr(Sigma) from the mean squared norm of batch-``b_small`` gradients and the
    squared norm of a batch-``b_big`` gradient."""
    if not (isinstance(b_small, int) and isinstance(b_big, int) and 1 <= b_small < b_big):
        raise ValueError(f"b_small={b_small!r}, b_big={b_big!r}: expected integers 1 <= b_small < b_big")
    gradient_sq = (b_big * big_sq - b_small * small_sq) / (b_big - b_small)
    trace = (small_sq - big_sq) / (1.0 / b_small - 1.0 / b_big)
    return NoiseScale(float(gradient_sq), float(trace))


def pooled(estimates: Sequence[NoiseScale]) -> NoiseScale:
    """Mean numerator and mean denominator (McCandlish et al.: averaging ratios is biased)."""
    if not estimates:
        raise ValueError("pooled: no estimates")
    return NoiseScale(
        float(np.mean([e.gradient_sq for e in estimates])), float(np.mean([e.trace for e in estimates]))
    )


def unit_size(normalization: str, virtual_batch_size: int) -> int | None:
    """Examples per independent gradient sample (see the module docstring); None: not measurable."""
    return {"ghost": virtual_batch_size, "none": 1}.get(normalization)


def probe_indices(n_train: int, unit: int, size: int = PROBE_EXAMPLES, seed: int = PROBE_SEED) -> np.ndarray:
    """A fixed random subset of the training set, a whole number (at least 2) of units, in random order
    (so consecutive units are random groups)."""
    size = min(size, n_train) // unit * unit
    if size < 2 * unit:
        raise ValueError(f"noise probe: {n_train} training examples hold fewer than 2 units of {unit}")
    return np.random.default_rng(seed).choice(n_train, size, replace=False)


def unit_gradients(model, x, y, unit: int) -> list:
    """Per-unit gradients of the mean cross-entropy, in training-mode normalization: one tensor per
    trainable variable of a ``model.build_cnn`` model (ghost or no normalization), shaped (units, *variable).
    Consecutive groups of ``unit`` examples of ``x`` are the units. Reads the weights, changes nothing."""
    import tensorflow as tf

    from reproduction.ghost_batch_norm import GhostBatchNormalization

    names = [layer.name for layer in model.layers]
    norm = model.get_layer("norm") if "norm" in names else None
    if norm is not None and not isinstance(norm, GhostBatchNormalization):
        raise ValueError("unit_gradients: plain batch norm couples the whole batch; no unit to measure")
    conv, dense = model.get_layer("conv"), model.get_layer("dense")
    n = tf.shape(x)[0]
    k = n // unit
    kh, kw, channels_in, filters = conv.kernel.shape
    if channels_in != 1:
        raise ValueError(f"unit_gradients: a single input channel is expected, got {channels_in}")
    kernel, bias = tf.convert_to_tensor(conv.kernel), tf.convert_to_tensor(conv.bias)
    if norm is not None:
        x, _, _ = norm.standardize(x)  # no weight inside: the gradient starts at gamma and beta
        scale, shift = norm.affine()
    else:
        scale, shift = tf.ones([1]), tf.zeros([1])
    with (
        tf.GradientTape() as tape
    ):  # the folded forward pass of model.forward, with its inner tensors watched
        pre = tf.nn.conv2d(x, kernel * scale, strides=1, padding="VALID") + (
            bias + tf.reduce_sum(kernel * shift[None, None, :, None], axis=(0, 1, 2))
        )
        tape.watch(pre)
        pooled_ = tf.nn.max_pool2d(pre, ksize=2, strides=2, padding="VALID")
        h = tf.reshape(pooled_, [n, -1])
        z = tf.matmul(h, dense.kernel) + dense.bias
        tape.watch(z)
        # the sum over units of each unit's mean loss: its gradient in a unit's tensors is that unit's
        loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(y, z)) / unit
    d_pre, d_z = tape.gradient(loss, [pre, z])
    d_z = tf.reshape(d_z, [k, unit, -1])
    dense_kernel = tf.matmul(tf.reshape(h, [k, unit, -1]), d_z, transpose_a=True)
    dense_bias = tf.reduce_sum(d_z, axis=1)
    # the folded filter's gradient per unit: units as depthwise channels, a unit's examples as the batch
    height, width = x.shape[1], x.shape[2]
    out_h, out_w = pre.shape[1], pre.shape[2]
    inputs = tf.transpose(tf.reshape(x, [k, unit, height, width]), [1, 2, 3, 0])
    d_out = tf.reshape(
        tf.transpose(tf.reshape(d_pre, [k, unit, out_h, out_w, filters]), [1, 2, 3, 0, 4]),
        [unit, out_h, out_w, k * filters],
    )
    d_folded = tf.compat.v1.nn.depthwise_conv2d_native_backprop_filter(
        inputs, [kh, kw, k, filters], d_out, strides=[1, 1, 1, 1], padding="VALID"
    )
    d_folded = tf.transpose(tf.reshape(d_folded, [kh, kw, k, filters]), [2, 0, 1, 3])[..., None, :]
    d_folded_bias = tf.reduce_sum(tf.reshape(d_pre, [k, -1, filters]), axis=1)  # (k, filters)
    # back through the fold: kernel' = kernel * gamma, bias' = bias + beta * sum(kernel)
    grads = {
        "kernel": d_folded * scale + d_folded_bias[:, None, None, None, :] * shift,
        "bias": d_folded_bias,
        "dense_kernel": dense_kernel,
        "dense_bias": dense_bias,
    }
    if norm is not None:
        if norm.gamma is not None:
            grads["gamma"] = tf.reduce_sum(d_folded * kernel, axis=(1, 2, 4))
        if norm.beta is not None:
            grads["beta"] = tf.reduce_sum(
                d_folded_bias[:, None, :] * tf.reduce_sum(kernel, axis=(0, 1)), axis=2
            )
    by_variable = {
        id(conv.kernel): "kernel",
        id(conv.bias): "bias",
        id(dense.kernel): "dense_kernel",
        id(dense.bias): "dense_bias",
    }
    if norm is not None:
        by_variable.update({id(norm.gamma): "gamma", id(norm.beta): "beta"})
    return [grads[by_variable[id(v)]] for v in model.trainable_variables]


def gradient_moments(gradients: list) -> tuple:
    """(mean over units of |g_unit|^2, |mean over units of g_unit|^2) of ``unit_gradients``' output."""
    import tensorflow as tf

    small = tf.add_n(
        [
            tf.reduce_mean(tf.reduce_sum(tf.reshape(tf.square(g), [tf.shape(g)[0], -1]), axis=1))
            for g in gradients
        ]
    )
    big = tf.add_n([tf.reduce_sum(tf.square(tf.reduce_mean(g, axis=0))) for g in gradients])
    return small, big


class NoiseProbe:
    """Measures B_simple of one model on probe examples (``probe_indices`` of the training set); the
    moments are one traced function for any probe size."""

    def __init__(self, model, unit: int):
        import tensorflow as tf

        self.unit = unit
        self._moments = tf.function(
            lambda x, y: gradient_moments(unit_gradients(model, x, y, unit)),
            input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32), tf.TensorSpec([None], tf.int32)],
        )

    def measure(self, x, y) -> NoiseScale:
        small, big = self._moments(x, y)
        return estimate(float(small), float(big), self.unit, int(x.shape[0]))

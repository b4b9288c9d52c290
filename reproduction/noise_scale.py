"""The gradient noise scale B_simple = tr(Sigma) / |G|^2 (McCandlish, Kaplan, Amodei et al. 2018, App. A).

B_simple is the batch size beyond which a larger batch stops paying: the variance of a batch-B gradient is
tr(Sigma) / B, so at B = B_simple noise and signal are equal. The paper beside ours (Smith et al.) lowers
the *SGD* noise scale g = eps N / (B (1 - m)); this module measures the other side, the *gradient's*.

From the gradients training already forms. Every update's gradient is a sum of parts with the same weights:
the chunks of a large batch (training.Engine's micro-batches), or, for a batch in one piece, the first half
of its virtual batches and the rest (model.split_gradients, one backward pass). The parts' gradients are
independent draws around G, which gives an unbiased estimate of |G|^2 and tr(Sigma) at every update
(``step_estimate``; with two halves it is McCandlish et al.'s two-batch estimator with small batch B/2 and
big batch B). Each epoch averages its updates' estimates, numerator and denominator apart, and records the
standard error of |G|^2 across them: B_simple is resolved where |G|^2 exceeds twice its standard error;
elsewhere only a lower bound is known (``NoiseScale.lower_bound``). A run may ask for it on one update in K
only (``RunConfig.noise_every``): less time, a wider error. The estimates average over the epoch's
updates, so they describe the epoch, not its last weights.

The unit. Ghost batch norm normalizes each virtual batch of V examples on its own statistics, so an
example's gradient depends on the other V - 1 examples of its virtual batch, but not on any other: parts
made of whole virtual batches are independent, and tr(Sigma) is per example (a batch of B has gradient
variance tr(Sigma) / B). Without normalization any split works; plain batch norm couples the whole batch,
so it is not measured.

The probe (``NoiseProbe``, ``unit_gradients``): per-virtual-batch gradients of a fixed set of examples at
fixed weights, from one vectorized pass, checked against a loop of per-unit ``GradientTape`` calls. It is no
longer run with every epoch: it is the cross-check of the training estimator on the same weights
(tests/test_noise_scale.py, benchmarks/test_engine_speed.py).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from reproduction.errors import UsageError

PROBE_EXAMPLES = 4000  # the cross-check's probe: 400 virtual batches
PROBE_SEED = 20180  # fixed: every check measures the same examples


@dataclasses.dataclass(frozen=True)
class NoiseScale:
    gradient_sq: float  # |G|^2, unbiased
    trace: float  # tr(Sigma), per example, unbiased
    gradient_sq_se: float = math.nan  # standard error of gradient_sq (training estimates); NaN: unknown

    @property
    def b_simple(self) -> float:
        """tr(Sigma) / |G|^2; inf when |G|^2 could not be told from 0 (noise swamps the signal); NaN when
        not measured."""
        if math.isnan(self.gradient_sq):
            return math.nan
        return self.trace / self.gradient_sq if self.gradient_sq > 0 else math.inf

    @property
    def resolved(self) -> bool:
        """|G|^2 exceeds twice its standard error (always, where the error is unknown)."""
        return not self.gradient_sq_se > 0 or self.gradient_sq > 2 * self.gradient_sq_se

    @property
    def lower_bound(self) -> float:
        """B_simple at |G|^2 two standard errors up: what the estimate rules in at least."""
        upper = self.gradient_sq + 2 * (self.gradient_sq_se if self.gradient_sq_se > 0 else 0.0)
        return self.trace / upper if upper > 0 else math.inf


def check_noise_every(value) -> None:
    """``noise_every``: the estimate on the first update of every ``value`` (1: every update)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise UsageError(f"noise_every={value!r}: expected a positive integer (1: every update measured)")


def estimate(small_sq: float, big_sq: float, b_small: int, b_big: int) -> NoiseScale:
    """Unbiased |G|^2 and tr(Sigma) from the mean squared norm of batch-``b_small`` gradients and the
    squared norm of a batch-``b_big`` gradient."""
    if not (isinstance(b_small, int) and isinstance(b_big, int) and 1 <= b_small < b_big):
        raise UsageError(f"b_small={b_small!r}, b_big={b_big!r}: expected integers 1 <= b_small < b_big")
    gradient_sq = (b_big * big_sq - b_small * small_sq) / (b_big - b_small)
    trace = (small_sq - big_sq) / (1.0 / b_small - 1.0 / b_big)
    return NoiseScale(float(gradient_sq), float(trace))


def from_parts(m1: np.ndarray, m2: np.ndarray, b1: int, b2: int) -> NoiseScale:
    """Unbiased |G|^2 and tr(Sigma) from two independent mean gradients over b1 and b2 examples (numpy)."""
    return NoiseScale(float(np.dot(m1, m2)), float(np.sum((m1 - m2) ** 2) / (1.0 / b1 + 1.0 / b2)))


def step_estimate(total_sq, parts_sq, sizes_sq, batch, scale):
    """In the graph: one update's unbiased (|G|^2, tr(Sigma), 1) from the gradients of its parts, or zeros
    when it had a single part. With c_j the part sums of per-example gradients (b_j examples each) and
    B = sum b_j, E|c_j|^2 = b_j^2 |G|^2 + b_j tr(Sigma) and E<c_j, c_k> = b_j b_k |G|^2 (independent
    parts), so
        |G|^2     = (|sum c_j|^2 - sum |c_j|^2) / (B^2 - sum b_j^2)
        tr(Sigma) = (sum |c_j|^2 - |G|^2 sum b_j^2) / B
    (with two equal halves: <m1, m2> and |m1 - m2|^2 / (2 / b), McCandlish et al.'s estimator with small batch
    B/2 and big batch B). The inputs carry the factor ``scale`` of the loss: ``total_sq`` = |scale sum c_j|^2,
    ``parts_sq`` = sum |scale c_j|^2, ``sizes_sq`` = sum b_j^2, ``batch`` = B."""
    import tensorflow as tf

    batch = tf.cast(batch, tf.float32)
    sizes_sq = tf.cast(sizes_sq, tf.float32)
    spread = batch * batch - sizes_sq
    valid = spread > 0
    unscale = 1.0 / (scale * scale)
    gradient_sq = (total_sq - parts_sq) * unscale / tf.where(valid, spread, 1.0)
    trace = (parts_sq * unscale - gradient_sq * sizes_sq) / tf.maximum(batch, 1.0)
    zero = tf.zeros([])
    return tf.where(valid, gradient_sq, zero), tf.where(valid, trace, zero), tf.cast(valid, tf.float32)


def squared_norm(tensors, axis=None):
    """|tensors|^2 over all their elements, or per index of their leading axis (axis=0)."""
    import tensorflow as tf

    if axis is None:
        return tf.add_n([tf.reduce_sum(tf.square(t)) for t in tensors])
    return tf.add_n([tf.reduce_sum(tf.square(tf.reshape(t, [tf.shape(t)[0], -1])), axis=1) for t in tensors])


def epoch_noise(
    gradient_sq_sum: float, trace_sum: float, gradient_sq_sq_sum: float, count: int
) -> NoiseScale:
    """An epoch's estimate from its chunks' sums: the means, and the standard error of the mean |G|^2."""
    if count < 1:
        return NoiseScale(math.nan, math.nan)
    mean = gradient_sq_sum / count
    variance = (
        max(0.0, gradient_sq_sq_sum / count - mean * mean) * count / (count - 1) if count > 1 else math.inf
    )
    return NoiseScale(mean, trace_sum / count, math.sqrt(variance / count))


def pooled(estimates: Sequence[NoiseScale]) -> NoiseScale:
    """Mean numerator and mean denominator (McCandlish et al.: averaging ratios is biased); the standard
    errors combine as those of a mean of independent estimates."""
    if not estimates:
        raise UsageError("pooled: no estimates")
    se = math.sqrt(sum(e.gradient_sq_se**2 for e in estimates)) / len(estimates)
    return NoiseScale(
        float(np.mean([e.gradient_sq for e in estimates])), float(np.mean([e.trace for e in estimates])), se
    )


def unit_size(normalization: str, virtual_batch_size: int) -> int | None:
    """Examples per independent gradient sample (see the module docstring); None: not measurable."""
    return {"ghost": virtual_batch_size, "none": 1}.get(normalization)


def probe_indices(n_train: int, unit: int, size: int = PROBE_EXAMPLES, seed: int = PROBE_SEED) -> np.ndarray:
    """A fixed random subset of the training set, a whole number (at least 2) of units, in random order
    (so consecutive units are random groups)."""
    size = min(size, n_train) // unit * unit
    if size < 2 * unit:
        raise UsageError(f"noise probe: {n_train} training examples hold fewer than 2 units of {unit}")
    return np.random.default_rng(seed).choice(n_train, size, replace=False)


def unit_gradients(model, x, y, unit: int) -> list:
    """Per-unit gradients of the mean cross-entropy, in training-mode normalization: one tensor per
    trainable variable of a ``model.build_cnn`` model (ghost or no normalization), shaped (units, *variable).
    Consecutive groups of ``unit`` examples of ``x`` are the units. Reads the weights, changes nothing."""
    import tensorflow as tf

    from reproduction.model import _layer, backward_to_activations, standardized

    norm, conv, dense = _layer(model, "norm"), model.get_layer("conv"), model.get_layer("dense")
    if conv.kernel.shape[2] != 1:
        raise UsageError(f"unit_gradients: a single input channel is expected, got {conv.kernel.shape[2]}")
    n = tf.shape(x)[0]
    k = n // unit
    kernel, bias = tf.convert_to_tensor(conv.kernel), tf.convert_to_tensor(conv.bias)
    x, _, (gamma, beta), _ = standardized(norm, x, n, 1)  # refuses plain batch norm
    folded_kernel = kernel * gamma[None, None, :, None]
    folded_bias = bias + tf.reduce_sum(kernel * beta[None, None, :, None], axis=(0, 1, 2))
    # the sum over units of each unit's mean loss: its gradient in a unit's tensors is that unit's
    h, d_pre, d_z, _ = backward_to_activations(x, y, folded_kernel, folded_bias, dense, 1.0 / unit)
    d_z = tf.reshape(d_z, [k, unit, -1])
    d_folded = _unit_filter_gradients(x, d_pre, k, unit, kernel.shape)
    d_folded_bias = tf.reduce_sum(tf.reshape(d_pre, [k, -1, kernel.shape[3]]), axis=1)  # (k, filters)
    # back through the fold: kernel' = kernel * gamma, bias' = bias + beta * sum(kernel)
    grads = {
        id(conv.kernel): d_folded * gamma + d_folded_bias[:, None, None, None, :] * beta,
        id(conv.bias): d_folded_bias,
        id(dense.kernel): tf.matmul(tf.reshape(h, [k, unit, -1]), d_z, transpose_a=True),
        id(dense.bias): tf.reduce_sum(d_z, axis=1),
    }
    if norm is not None and norm.gamma is not None:
        grads[id(norm.gamma)] = tf.reduce_sum(d_folded * kernel, axis=(1, 2, 4))
    if norm is not None and norm.beta is not None:
        grads[id(norm.beta)] = tf.reduce_sum(
            d_folded_bias[:, None, :] * tf.reduce_sum(kernel, axis=(0, 1)), axis=2
        )
    return [grads[id(v)] for v in model.trainable_variables]


def _unit_filter_gradients(x, d_pre, k: int, unit: int, kernel_shape):
    """The folded filter's gradient per unit, (k, kh, kw, 1, filters): units as depthwise channels, a unit's
    examples as the batch, in one depthwise backprop call."""
    import tensorflow as tf

    kh, kw, _, filters = kernel_shape
    out_h, out_w = d_pre.shape[1], d_pre.shape[2]
    inputs = tf.transpose(tf.reshape(x, [k, unit, x.shape[1], x.shape[2]]), [1, 2, 3, 0])
    d_out = tf.reshape(
        tf.transpose(tf.reshape(d_pre, [k, unit, out_h, out_w, filters]), [1, 2, 3, 0, 4]),
        [unit, out_h, out_w, k * filters],
    )
    d_folded = tf.compat.v1.nn.depthwise_conv2d_native_backprop_filter(
        inputs, [kh, kw, k, filters], d_out, strides=[1, 1, 1, 1], padding="VALID"
    )
    return tf.transpose(tf.reshape(d_folded, [kh, kw, k, filters]), [2, 0, 1, 3])[..., None, :]


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

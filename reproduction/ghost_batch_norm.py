"""Ghost (virtual) batch normalization for Keras 3 (Hoffer et al. 2017), which dropped ``virtual_batch_size``.

Training: the batch is cut into consecutive virtual batches of ``virtual_batch_size`` examples; each is
normalized with its own per-channel mean and (biased) variance over the virtual batch and the spatial axes,
then gamma and beta apply.

Rule for a batch that is not a multiple of ``virtual_batch_size``: the last virtual batch is smaller
(``B mod V`` examples) and is normalized on its own statistics, exactly like the others. A last virtual
batch of a single example normalizes over the spatial axes only (for an image input that is still many
values); a dense input would give a zero variance there, which epsilon keeps finite.

Moving statistics: after each training call,
    moving_mean     <- momentum * moving_mean     + (1 - momentum) * mean_v(mu_v)
    moving_variance <- momentum * moving_variance + (1 - momentum) * mean_v(var_v)
where mean_v is the mean over the virtual batches weighted by their sizes (a plain mean when all are
full) and var_v is the biased variance of virtual batch v, as Keras's BatchNormalization uses.

Inference: the moving statistics, for any batch size.

Deferred statistics: while ``defer_statistics`` has given it a list, a training call appends its (mean,
variance, examples) there instead of updating, so an engine that computes one update in pieces
(training.GenericEngine) can combine them and update once, as one call over the whole batch would.

Data parallel (tf.distribute): the moving statistics are averaged over the replicas at each update, so with
equal whole virtual batches per replica they move exactly as on one device over the global batch.

The batch dimension may be dynamic (``None``), so one traced ``tf.function`` serves every batch size.
"""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="reproduction")
class GhostBatchNormalization(keras.layers.Layer):
    def __init__(
        self,
        virtual_batch_size: int = 10,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        axis: int = -1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if (
            not isinstance(virtual_batch_size, int)
            or isinstance(virtual_batch_size, bool)
            or virtual_batch_size < 1
        ):
            raise ValueError(f"virtual_batch_size={virtual_batch_size!r}: expected a positive integer")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum={momentum!r}: expected 0 <= momentum < 1")
        if not epsilon > 0:
            raise ValueError(f"epsilon={epsilon!r}: expected a positive number")
        if axis != -1:
            raise ValueError(f"axis={axis!r}: only the channels-last axis -1 is supported")
        self.virtual_batch_size = virtual_batch_size
        self.momentum = momentum
        self.epsilon = epsilon
        self.center = center
        self.scale = scale
        self.axis = axis
        self.defer_statistics(None)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(f"{self.name}: the channel axis must be known, got input shape {input_shape}")
        shape = (channels,)
        # As in Keras's BatchNormalization: no gamma without scale, no beta without center.
        self.gamma = self.add_weight(name="gamma", shape=shape, initializer="ones") if self.scale else None
        self.beta = self.add_weight(name="beta", shape=shape, initializer="zeros") if self.center else None
        # aggregation "mean": under a tf.distribute strategy each replica's update is averaged into every
        # copy (Keras's default "none" lets the replicas' copies drift apart); no effect on one device.
        self.moving_mean = self.add_weight(
            name="moving_mean", shape=shape, initializer="zeros", trainable=False, aggregation="mean"
        )
        self.moving_variance = self.add_weight(
            name="moving_variance", shape=shape, initializer="ones", trainable=False, aggregation="mean"
        )

    # The two halves of a training call, public so that a fused fast path (model.fold_forward) reuses them.
    def standardize(self, x):
        """(x_hat, mean, variance): x normalized per virtual batch, and the size-weighted means over virtual
        batches of their per-channel means and variances (what the moving statistics take in)."""
        batch = tf.shape(x)[0]
        segment = tf.range(batch) // self.virtual_batch_size  # virtual batch of each example
        reduce_axes = list(range(1, len(x.shape) - 1))  # spatial axes
        per_example_mean = tf.reduce_mean(x, axis=reduce_axes) if reduce_axes else x  # (B, C)
        mean_v = tf.math.segment_mean(per_example_mean, segment)  # (V, C): equal-size examples, so exact
        centered = x - _expand_like(tf.gather(mean_v, segment), x)
        sq = tf.reduce_mean(tf.square(centered), axis=reduce_axes) if reduce_axes else tf.square(centered)
        var_v = tf.math.segment_mean(sq, segment)  # (V, C) biased variance, two-pass for accuracy
        x_hat = centered * _expand_like(tf.gather(tf.math.rsqrt(var_v + self.epsilon), segment), x)
        # Size-weighted mean over virtual batches = mean over examples of their virtual batch's statistic.
        mean = tf.reduce_mean(tf.gather(mean_v, segment), axis=0)
        variance = tf.reduce_mean(tf.gather(var_v, segment), axis=0)
        return x_hat, mean, variance

    def defer_statistics(self, sink: list | None) -> None:
        """Training calls append their statistics to ``sink`` instead of updating; None: they update."""
        object.__setattr__(self, "_deferred", sink)  # a plain list, outside Keras's attribute tracking

    def update_moving_statistics(self, mean, variance):
        m = self.momentum
        self.moving_mean.assign(m * self.moving_mean + (1.0 - m) * tf.cast(mean, self.moving_mean.dtype))
        self.moving_variance.assign(
            m * self.moving_variance + (1.0 - m) * tf.cast(variance, self.moving_variance.dtype)
        )

    def affine(self):
        """(gamma, beta) as tensors, 1 and 0 where scale or center is off."""
        gamma = self.gamma if self.gamma is not None else tf.ones_like(self.moving_mean)
        beta = self.beta if self.beta is not None else tf.zeros_like(self.moving_mean)
        return tf.convert_to_tensor(gamma), tf.convert_to_tensor(beta)

    def inference_scale_shift(self):
        """(a, b) with inference output = a * x + b, per channel."""
        gamma, beta = self.affine()
        a = gamma * tf.math.rsqrt(self.moving_variance + self.epsilon)
        return a, beta - a * self.moving_mean

    def call(self, x, training=False):
        if training:
            x_hat, mean, variance = self.standardize(x)
            if self._deferred is not None:
                self._deferred.append((mean, variance, tf.cast(tf.shape(x)[0], mean.dtype)))
            else:
                self.update_moving_statistics(mean, variance)
            gamma, beta = self.affine()
            return gamma * x_hat + beta
        a, b = self.inference_scale_shift()
        return a * x + b

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "virtual_batch_size": self.virtual_batch_size,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "axis": self.axis,
        }


def _expand_like(stat, x):
    """(B, C) -> (B, 1, ..., 1, C) to broadcast against x."""
    return tf.reshape(
        stat,
        tf.concat([tf.shape(stat)[:1], tf.ones([len(x.shape) - 2], tf.int32), tf.shape(stat)[1:]], axis=0),
    )

"""Any Keras 3 classifier through the engine: what the model must be, which examples it couples, and the
loss it trains on. The report's CNN keeps its folded fast path (model.py); ``training.GenericEngine`` trains
every other model through these, and tests hold the two equal on the report's CNN.

Checks (``check_classifier``), each refused in one line that names the problem: not a ``keras.Model``; an
input shape other than the data's; an output other than (batch, classes) for the labels' classes; a final
activation other than softmax (class probabilities) or none (logits).

The coupling unit (``coupling_unit``): the fewest consecutive examples whose gradients do not depend on any
other example. Layers act on each example alone, except normalization over the batch: ghost batch norm
couples the V consecutive examples of a virtual batch (several ghost layers: the least common multiple of
their V), Keras's BatchNormalization the whole batch. Pieces made of whole units have the batch's gradient
as their sum, exactly, and are independent draws of it, which is what the gradient noise scale needs
(reproduction/noise_scale.py); so every batch of a schedule must be a whole number of units (an epoch's last,
partial batch excepted: ghost BN's rule). With plain batch norm there is no unit: each update is one piece
and the noise scale is not measured (the run's metadata says why). A custom layer that mixes examples
cannot be seen from here: the noise estimate would then be biased.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from reproduction.errors import UsageError
from reproduction.ghost_batch_norm import GhostBatchNormalization

PROBABILITY_FLOOR = 1e-7  # log(p) of softmax outputs, as Keras's crossentropy clips them


def layers(model) -> list:
    """Every layer of the model, nested models' layers included."""
    found = []
    for layer in model.layers:
        found += [layer, *(layers(layer) if hasattr(layer, "layers") else [])]
    return found


def output_kind(model: keras.Model) -> str:
    """'probabilities' (a final softmax) or 'logits' (no final activation); refused otherwise."""
    last = model.layers[-1] if model.layers else None
    activation = getattr(last, "activation", None)
    name = getattr(activation, "__name__", str(activation)) if activation is not None else "linear"
    if name == "softmax":
        return "probabilities"
    if name == "linear":
        return "logits"
    raise UsageError(
        f"model {model.name!r}: its last layer {last.name!r} ends in {name!r}; expected softmax (class "
        "probabilities) or no activation (logits)"
    )


def check_classifier(model, n_classes: int, example_shape: tuple, where: str) -> str:
    """The model's output kind, after checking it classifies examples of ``example_shape`` into
    ``n_classes`` classes; ``where`` names the model's origin in the error."""
    if not isinstance(model, keras.Model):
        raise UsageError(f"{where}: returned {type(model).__name__}, expected a keras.Model")
    expected_input = (None, *example_shape)
    if tuple(model.input_shape) != expected_input:
        raise UsageError(
            f"{where}: model input shape {tuple(model.input_shape)}, expected {expected_input} (the data's)"
        )
    if tuple(model.output_shape) != (None, n_classes):
        raise UsageError(
            f"{where}: model output shape {tuple(model.output_shape)}, expected (None, {n_classes}): one "
            f"probability or logit per class of the data (labels 0..{n_classes - 1})"
        )
    return output_kind(model)


def coupling_unit(model: keras.Model) -> tuple[int | None, str]:
    """(unit, why): the coupling unit in examples, or None when the batch is coupled as a whole."""
    ghost = ghost_layers(model)
    plain = [layer for layer in layers(model) if isinstance(layer, keras.layers.BatchNormalization)]
    if plain:
        return None, (
            f"layer {plain[0].name!r} (BatchNormalization) normalizes over the whole batch: no independent "
            "parts, so the gradient noise scale is not measured and each update is computed in one piece"
        )
    if not ghost:
        return 1, "no normalization over examples: any split is independent"
    unit = math.lcm(*(layer.virtual_batch_size for layer in ghost))
    return unit, f"ghost batch norm: parts of whole virtual batches ({unit} examples)"


def check_batches(batch_sizes, unit: int | None, where: str) -> None:
    """Every batch a whole number of coupling units."""
    for b in batch_sizes:
        if unit is not None and b % unit:
            raise UsageError(
                f"{where}: batch size {b} is not a whole number of the model's virtual batches of {unit} "
                "examples (ghost batch norm); choose base batch and factor so that every batch is"
            )


def cross_entropy_sum(y, outputs, kind: str):
    """Summed cross-entropy of integer labels against logits or class probabilities. Of probabilities, the
    logits Keras's softmax keeps beside them where it can (``_keras_logits``, what Keras's own loss reads):
    log(p) clipped at a floor would give a confidently wrong example no gradient."""
    logits = outputs if kind == "logits" else getattr(outputs, "_keras_logits", None)
    if logits is None:
        logits = tf.math.log(tf.maximum(outputs, PROBABILITY_FLOOR))
    return tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))


def regularization(model: keras.Model):
    """The sum of the model's own losses (Keras regularizers, ``add_loss``), 0 without any."""
    return (
        tf.add_n([tf.cast(loss, tf.float32) for loss in model.losses]) if model.losses else tf.constant(0.0)
    )


def ghost_layers(model: keras.Model) -> list[GhostBatchNormalization]:
    return [layer for layer in layers(model) if isinstance(layer, GhostBatchNormalization)]


def piece_gradient(model, variables, ghost, x, y, kind: str, scale):
    """The gradient of ``scale * sum(loss)`` over ``x`` in one forward and backward pass (plus the model's
    regularization, weighted by the piece's examples: ``scale`` is 1 / batch), its loss sum, and
    each ghost layer's (mean * n, variance * n) summed over its calls, for the caller to combine and apply
    once (the moving statistics are not touched here)."""
    sinks: list[list] = [[] for _ in ghost]
    for layer, sink in zip(ghost, sinks, strict=True):
        layer.defer_statistics(sink)
    try:
        with tf.GradientTape() as tape:
            loss_sum = cross_entropy_sum(y, model(x, training=True), kind)
            # the model's own losses (weight decay) once per update: each piece its share of the batch
            share = tf.cast(tf.shape(x)[0], tf.float32)
            scaled = (loss_sum + share * regularization(model)) * scale
    finally:
        for layer in ghost:
            layer.defer_statistics(None)
    grads = dense_gradients(tape.gradient(scaled, variables), variables)
    return grads, loss_sum, [_weighted(layer, sink) for layer, sink in zip(ghost, sinks, strict=True)]


def dense_gradients(grads, variables) -> list:
    """Gradients as dense tensors, zeros for a variable the loss does not reach (None)."""
    return [
        tf.zeros_like(v) if g is None else tf.convert_to_tensor(g)
        for g, v in zip(grads, variables, strict=True)
    ]


def _weighted(layer, sink):
    """(sum of mean * n, sum of variance * n) over a ghost layer's calls; an empty piece's NaN * 0 is 0."""
    zero = tf.zeros_like(layer.moving_mean)
    mean = tf.add_n([zero] + [tf.where(n > 0, m * n, zero) for m, _, n in sink])
    variance = tf.add_n([zero] + [tf.where(n > 0, v * n, zero) for _, v, n in sink])
    return mean, variance


def unit_gradients(model, x, y, unit: int, kind: str) -> list:
    """The gradients of each unit's mean loss (units: ``unit`` consecutive examples, the coupling unit),
    one tensor (units, *variable.shape) per trainable variable, vectorised over the units: the probe that
    cross-checks the training estimate (noise_scale.gradient_moments, noise_scale.estimate). Examples past
    the last whole unit are left out; the moving statistics are not touched."""
    units = x.shape[0] // unit
    xs = tf.reshape(x[: units * unit], [units, unit, *x.shape[1:]])
    ys = tf.reshape(y[: units * unit], [units, unit])
    variables, ghost = model.trainable_variables, ghost_layers(model)

    def one(pair):
        with tf.GradientTape() as tape:
            loss = cross_entropy_sum(pair[1], model(pair[0], training=True), kind) / unit
        return dense_gradients(tape.gradient(loss, variables), variables)

    for layer in ghost:
        layer.defer_statistics([])
    try:
        return tf.vectorized_map(one, (xs, ys), fallback_to_while_loop=True)
    finally:
        for layer in ghost:
            layer.defer_statistics(None)

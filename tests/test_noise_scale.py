"""The gradient noise scale: the estimator against closed forms, the per-unit gradients against a loop
through the Keras layers, the virtual-batch rule, the probe, the records, and a trajectory the measurement
leaves untouched."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st
from support import synthetic_digits

from reproduction import claims, stats
from reproduction.config import ModelOptions, RunConfig
from reproduction.model import build_cnn
from reproduction.noise_scale import (
    NoiseProbe,
    NoiseScale,
    estimate,
    gradient_moments,
    pooled,
    probe_indices,
    unit_gradients,
    unit_size,
)
from reproduction.results import EpochRecord, RunResult
from reproduction.training import Trainer


# ------------------------------------------------------------------------------------------- the estimator
def least_squares_population(n=64, d=5, seed=0):
    """Per-example gradients of 0.5 (w.x - y)^2 at a fixed w: (w.x_i - y_i) x_i, a finite population whose
    mean G and covariance Sigma are known exactly."""
    rng = np.random.default_rng(seed)
    x, w = rng.normal(size=(n, d)), rng.normal(size=d)
    y = x @ rng.normal(size=d) + rng.normal(0.5, 1.0, size=n)
    g = (x @ w - y)[:, None] * x
    mean = g.mean(axis=0)
    trace = float(np.trace(np.cov(g, rowvar=False, bias=True)))
    return g, float(mean @ mean), trace


@given(b_small=st.integers(1, 50), extra=st.integers(1, 5000), seed=st.integers(0, 10))
@settings(max_examples=60, deadline=None)
def test_estimator_recovers_the_closed_form(b_small, extra, seed):
    """Batches drawn with replacement have E|G_b|^2 = |G|^2 + tr(Sigma) / b exactly; fed those, the
    estimator returns |G|^2 and tr(Sigma) for any two batch sizes."""
    _, g2, trace = least_squares_population(seed=seed)
    b_big = b_small + extra
    got = estimate(g2 + trace / b_small, g2 + trace / b_big, b_small, b_big)
    assert got.gradient_sq == pytest.approx(g2, rel=1e-6, abs=1e-9 * trace)
    assert got.trace == pytest.approx(trace, rel=1e-6)
    assert got.b_simple == pytest.approx(trace / g2, rel=1e-5)


def test_estimator_is_unbiased_on_sampled_batches():
    """Monte Carlo: many sampled batches of 2 and 32 from the population, pooled as the module pools."""
    g, g2, trace = least_squares_population(n=64, d=5, seed=3)
    rng = np.random.default_rng(1)
    estimates = []
    for _ in range(4000):
        small = g[rng.integers(0, len(g), size=(16, 2))].mean(axis=1)  # 16 batches of 2
        big = g[rng.integers(0, len(g), size=32)].mean(axis=0)
        estimates.append(estimate(float(np.mean(np.sum(small**2, axis=1))), float(big @ big), 2, 32))
    both = pooled(estimates)
    assert both.gradient_sq == pytest.approx(g2, rel=0.05)
    assert both.trace == pytest.approx(trace, rel=0.05)


def test_swapped_batch_sizes_are_refused_and_would_give_nonsense():
    with pytest.raises(ValueError, match="b_small=.*b_big"):
        estimate(1.0, 0.5, 32, 2)
    with pytest.raises(ValueError, match="b_small"):
        estimate(1.0, 0.5, 0, 2)
    _, g2, trace = least_squares_population()
    wrong = estimate(g2 + trace / 32, g2 + trace / 2, 2, 32)  # moments in the wrong places
    assert wrong.trace < 0


def test_b_simple_is_infinite_when_the_signal_is_not_resolved():
    assert NoiseScale(-1e-3, 10.0).b_simple == math.inf
    assert NoiseScale(0.5, 10.0).b_simple == 20.0


def test_pooling_averages_numerator_and_denominator_not_ratios():
    both = pooled([NoiseScale(1.0, 100.0), NoiseScale(3.0, 100.0)])
    assert both.b_simple == 50.0  # the mean of the ratios would be 66.7
    with pytest.raises(ValueError, match="no estimates"):
        pooled([])


# ------------------------------------------------------------------------------------- the unit and the probe
def test_the_unit_is_the_virtual_batch():
    assert unit_size("ghost", 10) == 10
    assert unit_size("ghost", 4) == 4
    assert unit_size("none", 10) == 1
    assert unit_size("batch", 10) is None


def _gradient_of(model, x, y, i):
    """Gradient of example i's loss, in training mode on the whole of x."""
    with tf.GradientTape() as tape:
        p = model(x, training=True)
        loss = keras.losses.sparse_categorical_crossentropy(y[i : i + 1], p[i : i + 1])
    return np.concatenate([t.numpy().ravel() for t in tape.gradient(loss, model.trainable_variables)])


def test_under_ghost_bn_an_example_is_not_independent_but_a_virtual_batch_is():
    """Why the unit is a virtual batch: changing another example of its virtual batch changes an example's
    gradient; changing an example of another virtual batch does not."""
    keras.utils.set_random_seed(0)
    model = build_cnn(ModelOptions(virtual_batch_size=4))
    x, y, _, _ = synthetic_digits(8, 1)
    base = _gradient_of(model, x, y, 0)
    same_unit, other_unit = x.copy(), x.copy()
    same_unit[1] += 1.0
    other_unit[5] += 1.0
    assert np.max(np.abs(_gradient_of(model, same_unit, y, 0) - base)) > 1e-4
    np.testing.assert_allclose(_gradient_of(model, other_unit, y, 0), base, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("normalization, unit", [("ghost", 10), ("ghost", 4), ("none", 1)])
def test_unit_gradients_equal_a_loop_through_the_keras_layers(normalization, unit):
    """The vectorized pass against one GradientTape per unit through the unfolded Keras model (the
    reference), with non-trivial gamma and beta so the fold's chain rule is exercised."""
    keras.utils.set_random_seed(1)
    model = build_cnn(ModelOptions(normalization=normalization, virtual_batch_size=max(unit, 1)))
    if normalization == "ghost":
        model.get_layer("norm").gamma.assign([1.3])
        model.get_layer("norm").beta.assign([0.2])
    x, y, _, _ = synthetic_digits(4 * unit, 1, seed=2)
    got = unit_gradients(model, tf.constant(x), tf.constant(y), unit)
    assert [tuple(g.shape) for g in got] == [(4, *v.shape) for v in model.trainable_variables]
    for k in range(4):
        part = slice(k * unit, (k + 1) * unit)
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(
                keras.losses.sparse_categorical_crossentropy(y[part], model(x[part], training=True))
            )
        for mine, ref in zip(got, tape.gradient(loss, model.trainable_variables), strict=True):
            np.testing.assert_allclose(mine[k].numpy(), ref.numpy(), rtol=2e-4, atol=2e-6)


def test_moments_match_numpy():
    rng = np.random.default_rng(0)
    grads = [rng.normal(size=(6, 3, 2)).astype(np.float32), rng.normal(size=(6, 4)).astype(np.float32)]
    flat = np.concatenate([g.reshape(6, -1) for g in grads], axis=1)
    small, big = gradient_moments([tf.constant(g) for g in grads])
    assert float(small) == pytest.approx(np.mean(np.sum(flat**2, axis=1)), rel=1e-5)
    assert float(big) == pytest.approx(np.sum(flat.mean(axis=0) ** 2), rel=1e-5)


def test_plain_batch_norm_has_no_unit():
    with pytest.raises(ValueError, match="plain batch norm"):
        unit_gradients(
            build_cnn(ModelOptions(normalization="batch")),
            tf.zeros([20, 28, 28, 1]),
            tf.zeros([20], tf.int32),
            10,
        )


def test_the_probe_is_fixed_whole_units_and_refuses_too_little_data():
    a, b = probe_indices(60_000, 10), probe_indices(60_000, 10)
    np.testing.assert_array_equal(a, b)
    assert len(a) == 4000 and len(set(a.tolist())) == 4000 and a.max() < 60_000
    assert len(probe_indices(605, 10)) == 600
    with pytest.raises(ValueError, match="fewer than 2 units of 10"):
        probe_indices(15, 10)


# ------------------------------------------------------------------------------------------- in the engine
DATA = synthetic_digits()
SMALL = dict(base_batch=20, factor=2, steps=3, epochs_per_step=1)


def test_the_measurement_leaves_training_bit_identical():
    config = RunConfig("momentum", "increase", seed=3, **SMALL)
    measured = Trainer(DATA).train(config)
    plain = Trainer(DATA, noise_probe=0).train(config)
    for a, b in zip(measured.epochs, plain.epochs, strict=True):
        assert (a.train_loss, a.test_loss, a.test_accuracy, a.steps) == (
            b.train_loss,
            b.test_loss,
            b.test_accuracy,
            b.steps,
        )
        assert math.isfinite(a.gradient_trace) and a.noise_seconds > 0
        assert math.isnan(b.gradient_trace) and b.noise_seconds == 0
    assert measured.metadata["noise_probe"] == 600 and plain.metadata["noise_probe"] == 0
    assert math.isnan(plain.initial_gradient_sq)


def test_every_epoch_and_the_start_are_measured_on_the_current_weights():
    result = Trainer(DATA).train(RunConfig("sgd", "constant", seed=0, **SMALL))
    traces = [result.initial_gradient_trace] + [e.gradient_trace for e in result.epochs]
    assert all(math.isfinite(t) and t > 0 for t in traces)
    assert len(set(traces)) == len(traces)  # weights move between measurements
    assert RunResult.from_dict(result.to_dict()) == result  # JSON round trip keeps them


def test_plain_batch_norm_runs_are_not_measured():
    config = RunConfig("sgd", "constant", seed=0, model=ModelOptions(normalization="batch"), **SMALL)
    result = Trainer(DATA).train(config)
    assert all(math.isnan(e.b_simple) for e in result.epochs) and result.metadata["noise_probe"] == 0


def test_the_probe_on_real_weights_matches_the_estimator():
    keras.utils.set_random_seed(0)
    model = build_cnn(ModelOptions())
    x, y = tf.constant(DATA[0][:200]), tf.constant(DATA[1][:200])
    small, big = gradient_moments(unit_gradients(model, x, y, 10))
    assert NoiseProbe(model, 10).measure(x, y) == estimate(float(small), float(big), 10, 200)


# ---------------------------------------------------------------------------------------------- the claim
PLAN = claims.Plan(claims.get_plan("mnist", "quick").workload, claims.get_plan("mnist", "quick", 3).profile)


def _runs(start, after_epoch_1, last, jitter_last=0.1):
    """Constant runs whose B_simple goes start -> after_epoch_1 -> ... -> last (with seed jitter)."""
    runs = {}
    for o in PLAN.workload.optimizers:
        for k in PLAN.seeds:
            config = PLAN.config(o, "constant", k)
            values = [after_epoch_1 * (1 + 0.05 * k), after_epoch_1, last * (1 + jitter_last * k)]
            epochs = tuple(
                EpochRecord(
                    i, 0.1, 100, 600, 1.0, 0.1, 0.1, 0.1, 0.97, gradient_sq=1.0, gradient_trace=v, b_simple=v
                )
                for i, v in enumerate(values)
            )
            runs[config] = RunResult(config, epochs, {}, 1.0, start * (1 + 0.05 * k))
    return runs


def test_the_claim_holds_when_b_simple_rises():
    verdicts = claims.evaluate("noise-scale-rises", PLAN, _runs(50, 200, 900))
    assert all(v.verdict == stats.HOLDS for v in verdicts.values())
    assert verdicts["sgd-from-start"].effect == pytest.approx(18 * 1.1 / 1.05, rel=0.05)


def test_the_claim_is_red_when_the_measurement_reads_stale_weights():
    """Every epoch measured on the initial weights: ratio 1, never a rise."""
    verdicts = claims.evaluate("noise-scale-rises", PLAN, _runs(50, 50, 50, jitter_last=0.05))
    assert all(v.verdict != stats.HOLDS for v in verdicts.values())


def test_the_claim_is_undecided_when_the_probe_cannot_resolve_the_signal():
    runs = _runs(50, 200, math.inf)  # |G|^2 <= 0 at the last epoch
    verdicts = claims.evaluate("noise-scale-rises", PLAN, runs)
    assert all(v.verdict == stats.UNDECIDED for v in verdicts.values())

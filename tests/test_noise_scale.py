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
from reproduction.errors import UsageError
from reproduction.model import build_cnn, split_gradients
from reproduction.noise_scale import (
    NoiseProbe,
    NoiseScale,
    epoch_noise,
    estimate,
    from_parts,
    gradient_moments,
    pooled,
    probe_indices,
    squared_norm,
    step_estimate,
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


# ------------------------------------------------------------------------------- from the training gradients
DATA = synthetic_digits()
SMALL = dict(base_batch=20, factor=2, steps=3, epochs_per_step=1)


@given(sizes=st.lists(st.integers(1, 40), min_size=2, max_size=6), seed=st.integers(0, 20))
@settings(max_examples=40, deadline=None)
def test_the_step_estimator_is_the_pairwise_closed_form(sizes, seed):
    """step_estimate from running sums equals the pairwise estimator written out in numpy: |G|^2 from the
    size-weighted inner products of distinct parts, tr(Sigma) from the parts' norms."""
    rng = np.random.default_rng(seed)
    sums = [rng.normal(size=7) * b + rng.normal(size=7) for b in sizes]  # c_j: sums over b_j examples
    batch, scale = sum(sizes), 1.0 / sum(sizes)
    total = np.sum(sums, axis=0)
    got = step_estimate(
        tf.constant(float(np.sum((scale * total) ** 2))),
        tf.constant(float(sum(np.sum((scale * c) ** 2) for c in sums))),
        tf.constant(sum(b * b for b in sizes)),
        tf.constant(batch),
        tf.constant(scale),
    )
    pairs = [(j, k) for j in range(len(sizes)) for k in range(len(sizes)) if j != k]
    g2 = sum(float(sums[j] @ sums[k]) for j, k in pairs) / sum(sizes[j] * sizes[k] for j, k in pairs)
    tr = (sum(float(c @ c) for c in sums) - g2 * sum(b * b for b in sizes)) / batch
    assert float(got[0]) == pytest.approx(g2, rel=1e-4, abs=1e-6)
    assert float(got[1]) == pytest.approx(tr, rel=1e-4, abs=1e-5)
    assert float(got[2]) == 1.0
    two = from_parts(
        sums[0] / sizes[0], sums[1] / sizes[1], sizes[0], sizes[1]
    )  # McCandlish et al. two-batch
    if len(sizes) == 2 and sizes[0] == sizes[1]:  # unequal halves: another unbiased estimator
        assert float(got[0]) == pytest.approx(two.gradient_sq, rel=1e-4, abs=1e-6)
        assert float(got[1]) == pytest.approx(two.trace, rel=1e-4, abs=1e-5)


def test_the_step_estimator_is_unbiased_on_sampled_halves():
    """Monte Carlo on the least-squares population: two halves of 8 drawn per step, pooled over steps."""
    g, g2, trace = least_squares_population(n=64, d=5, seed=3)
    rng = np.random.default_rng(2)
    sums = np.array(
        [g[rng.integers(0, len(g), size=(2, 8))].sum(axis=1) for _ in range(6000)]
    )  # (steps, 2, d)
    total = sums.sum(axis=1)
    got = step_estimate(
        tf.constant(np.sum(total**2, axis=1) / 256.0, tf.float32),
        tf.constant(np.sum(sums**2, axis=(1, 2)) / 256.0, tf.float32),
        tf.constant(128),
        tf.constant(16),
        tf.constant(1.0 / 16),
    )
    assert float(np.mean(got[0])) == pytest.approx(g2, rel=0.05)
    assert float(np.mean(got[1])) == pytest.approx(trace, rel=0.05)


def test_a_single_part_gives_no_estimate():
    assert [
        float(v)
        for v in step_estimate(
            tf.constant(4.0), tf.constant(4.0), tf.constant(100), tf.constant(10), tf.constant(0.1)
        )
    ] == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("normalization, virtual", [("ghost", 10), ("ghost", 4), ("none", 1)])
def test_split_gradients_are_the_gradient_in_two_independent_parts(normalization, virtual):
    """The two parts sum to the tape's gradient of the folded model, and each part is the gradient over its
    own whole virtual batches (the first half of them, then the rest) through the Keras layers."""
    keras.utils.set_random_seed(1)
    model = build_cnn(ModelOptions(normalization=normalization, virtual_batch_size=virtual))
    if normalization == "ghost":
        model.get_layer("norm").gamma.assign([1.3])
        model.get_layer("norm").beta.assign([0.2])
    n = 5 * virtual if normalization == "ghost" else 9
    x, y = tf.constant(DATA[0][:n]), tf.constant(DATA[1][:n])
    parts, sizes, loss_sum, _ = split_gradients(model, x, y, 1.0 / n)
    first = 3 * virtual if normalization == "ghost" else 5  # ceil(units / 2) whole units
    assert sizes.numpy().tolist() == [first, n - first]
    for k, rows in enumerate((slice(0, first), slice(first, n))):
        with tf.GradientTape() as tape:
            loss = (
                tf.reduce_sum(
                    keras.losses.sparse_categorical_crossentropy(y[rows], model(x[rows], training=True))
                )
                / n
            )
        for mine, ref in zip(parts, tape.gradient(loss, model.trainable_variables), strict=True):
            np.testing.assert_allclose(mine[k].numpy(), ref.numpy(), rtol=2e-4, atol=2e-6)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, model(x, training=True)))
    whole = tape.gradient(loss, model.trainable_variables)
    for mine, ref in zip(parts, whole, strict=True):
        np.testing.assert_allclose(tf.reduce_sum(mine, axis=0).numpy(), ref.numpy(), rtol=2e-4, atol=2e-6)
    assert float(loss_sum) / n == pytest.approx(float(loss), rel=1e-5)


def test_the_training_estimate_agrees_with_the_probe_on_the_same_weights():
    """At fixed weights, split gradients over 60 batches of 100 (as the engine forms them) pooled, against the
    probe's per-virtual-batch estimate on the same 6000 examples: equal within their noise."""
    keras.utils.set_random_seed(0)
    model = build_cnn(ModelOptions())
    x, y = tf.constant(DATA[0][:600]), tf.constant(DATA[1][:600])
    estimates = []
    for start in range(0, 600, 100):
        parts, sizes, _, _ = split_gradients(model, x[start : start + 100], y[start : start + 100], 1.0 / 100)
        grads = [tf.reduce_sum(p, axis=0) for p in parts]
        estimates.append(
            [
                float(v)
                for v in step_estimate(
                    squared_norm(grads),
                    tf.reduce_sum(squared_norm(parts, 0)),
                    tf.reduce_sum(tf.square(sizes)),
                    100,
                    1.0 / 100,
                )
            ]
        )
    g2 = np.array([e[0] for e in estimates])
    training = NoiseScale(
        float(g2.mean()), float(np.mean([e[1] for e in estimates])), float(g2.std(ddof=1) / 6**0.5)
    )
    probe = NoiseProbe(model, 10).measure(x, y)
    assert (
        abs(training.gradient_sq - probe.gradient_sq) < 3 * training.gradient_sq_se + 0.05 * probe.gradient_sq
    )
    assert training.trace == pytest.approx(probe.trace, rel=0.15)


def test_every_update_of_every_epoch_is_estimated():
    result = Trainer(DATA).train(RunConfig("sgd", "constant", seed=0, **SMALL))
    for e in result.epochs:
        assert e.noise_estimates == e.steps  # one chunk per update at these batch sizes
        assert math.isfinite(e.gradient_trace) and e.gradient_trace > 0 and e.gradient_sq_se > 0
    assert len({e.gradient_trace for e in result.epochs}) == len(result.epochs)  # the weights move
    assert RunResult.from_dict(result.to_dict()) == result  # JSON round trip keeps them


def test_chunked_updates_give_one_estimate_per_chunk():
    from reproduction.training import Engine

    keras.utils.set_random_seed(0)
    engine = Engine(build_cnn(), keras.optimizers.SGD(0.05), micro_batch=100)
    x, y = tf.constant(DATA[0]), tf.constant(DATA[1])
    engine.warm_up(x, y)
    applied = engine.train_epoch(x, y, 0.05, 300, (0, 0))
    assert applied.steps == 2 and applied.noise_estimates == 6 and applied.gradient_trace > 0


def _sampled_engine(every: int, lr: float = 0.05):
    from reproduction.training import Engine

    keras.utils.set_random_seed(0)
    return Engine(build_cnn(), keras.optimizers.SGD(lr), micro_batch=100, noise_every=every)


@pytest.mark.parametrize(
    ("batch", "every", "estimates"), [(100, 1, 6), (100, 4, 2), (300, 2, 3), (100, 9, 1)]
)
def test_one_update_in_k_is_measured_and_every_update_applied(batch, every, estimates):
    """noise_every=k: the first update of each k estimated (every chunk of it), all of them applied. 600
    examples: six updates of 100 (one chunk each), or two of 300 (three chunks each)."""
    x, y = tf.constant(DATA[0]), tf.constant(DATA[1])
    engine = _sampled_engine(every)
    engine.warm_up(x, y)
    applied = engine.train_epoch(x, y, 0.05, batch, (0, 0))
    assert applied.noise_estimates == estimates
    assert applied.steps == 600 // batch and applied.applied_examples == 600
    assert applied.applied_batch_min == applied.applied_batch_max == batch
    assert int(engine.optimizer.iterations.numpy()) == 600 // batch


def test_updates_out_of_the_estimate_train_as_measured_ones_do():
    """The same epoch with every update measured and with one in four: the same updates on the same batches,
    whose gradients differ only in rounding (one piece against two parts), so the weights agree to float32
    rounding; an update skipped or applied twice would move them by orders more."""
    x, y = tf.constant(DATA[0]), tf.constant(DATA[1])
    weights = []
    for every in (1, 4):
        engine = _sampled_engine(every, lr=0.1)
        engine.warm_up(x, y)
        for epoch in range(2):
            engine.train_epoch(x, y, 0.1, 50, (0, epoch))
        weights.append([v.numpy() for v in engine.model.variables])
    keras.utils.set_random_seed(0)
    initial = [v.numpy() for v in build_cnn().variables]
    assert max(np.abs(a - b).max() for a, b in zip(weights[0], initial, strict=True)) > 0.05
    for a, b in zip(*weights, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_one_update_in_k_estimates_what_every_update_does():
    """At fixed weights (learning rate 0) the estimate from one update in three and from every update are
    two estimates of the same |G|^2 and tr(Sigma): they agree within their errors."""
    x, y = tf.constant(DATA[0]), tf.constant(DATA[1])
    scales = []
    for every in (1, 3):
        engine = _sampled_engine(every, lr=0.0)
        engine.warm_up(x, y)
        applied = engine.train_epoch(x, y, 0.0, 20, (0, 0))
        scales.append(applied)
    full, sampled = scales
    assert (full.noise_estimates, sampled.noise_estimates) == (30, 10)
    error = math.hypot(full.gradient_sq_se, sampled.gradient_sq_se)
    assert abs(full.gradient_sq - sampled.gradient_sq) < 3 * error
    assert sampled.gradient_sq_se > full.gradient_sq_se  # fewer estimates, a wider error
    assert sampled.gradient_trace == pytest.approx(full.gradient_trace, rel=0.15)


def test_a_run_measured_on_one_update_in_k_is_its_own_run():
    """noise_every is part of the run: its own key and lineage (its rounding differs), left out of the JSON
    and the key at 1 (every run stored before it existed keeps its key); bad values refused by name."""
    from reproduction.sharing import lineage

    every, sampled = RunConfig("sgd", "constant", seed=0), RunConfig("sgd", "constant", seed=0, noise_every=4)
    assert "noise_every" not in every.to_dict() and sampled.to_dict()["noise_every"] == 4
    assert every.key() != sampled.key() and lineage(every) != lineage(sampled)
    assert RunConfig.from_dict(sampled.to_dict()) == sampled
    trainer = Trainer(DATA)  # one trainer: the engine for every update is not the one for one in four
    for k in (1, 4, 1):
        result = trainer.train(RunConfig("sgd", "constant", seed=0, noise_every=k, **SMALL))
        assert [e.noise_estimates for e in result.epochs] == [(e.steps + k - 1) // k for e in result.epochs]
    for bad in (0, -2, 1.5, True, "4"):
        with pytest.raises(UsageError, match="noise_every"):
            RunConfig(noise_every=bad)


def test_plain_batch_norm_runs_are_not_measured():
    config = RunConfig("sgd", "constant", seed=0, model=ModelOptions(normalization="batch"), **SMALL)
    result = Trainer(DATA).train(config)
    assert all(math.isnan(e.b_simple) and e.noise_estimates == 0 for e in result.epochs)


def test_an_epoch_with_one_estimate_rules_nothing_in():
    """A single estimate has no standard error: unresolved, lower bound 0, and the report's B / B_simple
    cell says so instead of dividing by that bound (it did, on the small user model, when one update in
    eight was measured: commit 5ad1d74)."""
    from reproduction.report import _b_simple, _batch_over_b_simple

    single = epoch_noise(0.5, 50.0, 0.25, 1)
    assert not single.resolved and single.lower_bound == 0.0
    assert _batch_over_b_simple(100, single) == "?" and _b_simple(single) == "?"
    assert _b_simple(NoiseScale(0.1, 100.0, 0.2)) == "> 200"
    assert _batch_over_b_simple(100, NoiseScale(0.1, 100.0, 0.2)) == "< 0.50"
    assert _batch_over_b_simple(100, NoiseScale(1.0, 100.0, 0.1)) == "1.00"


def test_resolution_from_the_standard_error():
    assert NoiseScale(1.0, 100.0, 0.1).resolved and NoiseScale(1.0, 100.0, 0.1).lower_bound == pytest.approx(
        100 / 1.2
    )
    unresolved = NoiseScale(0.1, 100.0, 0.2)
    assert not unresolved.resolved and unresolved.lower_bound == pytest.approx(200.0)
    assert NoiseScale(1.0, 10.0).resolved  # no error known: taken as resolved (the probe)
    assert epoch_noise(3.0, 30.0, 5.0, 3) == NoiseScale(
        1.0, 10.0, pytest.approx(math.sqrt((5 / 3 - 1) * 3 / 2 / 3))
    )


# ---------------------------------------------------------------------------------------------- the claim
PLAN = claims.Plan(claims.get_plan("mnist", "quick").workload, claims.get_plan("mnist", "quick", 3).profile)


def _runs(first, second, last, jitter_last=0.1, se=0.01):
    """Constant runs whose B_simple goes first -> second -> ... -> last (with seed jitter); |G|^2 = 1 with
    standard error ``se`` (1: unresolved)."""
    runs = {}
    for o in PLAN.workload.optimizers:
        for k in PLAN.seeds:
            config = PLAN.config(o, "constant", k)
            values = [first * (1 + 0.05 * k), second * (1 + 0.03 * k), last * (1 + jitter_last * k)]
            epochs = tuple(
                EpochRecord(
                    i,
                    0.1,
                    100,
                    600,
                    1.0,
                    0.1,
                    0.1,
                    0.1,
                    0.97,
                    gradient_sq=1.0,
                    gradient_trace=v,
                    b_simple=v,
                    gradient_sq_se=se if i == 2 else 0.01,
                    noise_estimates=600,
                )
                for i, v in enumerate(values)
            )
            runs[config] = RunResult(config, epochs, {})
    return runs


def test_the_claim_holds_when_b_simple_rises():
    verdicts = claims.evaluate("noise-scale-rises", PLAN, _runs(50, 200, 900))
    assert all(v.verdict == stats.HOLDS for v in verdicts.values())
    assert verdicts["sgd-from-epoch-1"].effect == pytest.approx(18 * 1.1 / 1.05, rel=0.05)


def test_the_claim_is_red_when_the_estimate_does_not_move():
    """Stale gradients (every epoch the same estimate): ratio 1, never a rise."""
    verdicts = claims.evaluate("noise-scale-rises", PLAN, _runs(50, 50, 50, jitter_last=0.05))
    assert all(v.verdict != stats.HOLDS for v in verdicts.values())


def test_an_unresolved_last_epoch_counts_at_its_lower_bound():
    """|G|^2 = 1 +- 1 in the last epoch: B_simple is at least tr / 3, and the rise is judged from that."""
    verdicts = claims.evaluate("noise-scale-rises", PLAN, _runs(50, 200, 900, se=1.0))
    assert verdicts["sgd-from-epoch-1"].effect == pytest.approx(6 * 1.1 / 1.05, rel=0.05)
    assert "[>300" in verdicts["sgd-from-epoch-1"].detail

"""Any Keras classifier through the engine (reproduction/classifier.py, training.GenericEngine): equal to the
folded fast path on the report's CNN, chunks and parts that give the batch's update, the refusals, and a
user's workload (tests/my_model.py) loaded, keyed and trained."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from reproduction.classifier import check_classifier, coupling_unit, output_kind
from reproduction.config import ModelOptions, RunConfig
from reproduction.data import DataError, checked_arrays
from reproduction.errors import UsageError
from reproduction.ghost_batch_norm import GhostBatchNormalization
from reproduction.model import MICRO_BATCH, build_cnn, micro_batch_size
from reproduction.training import Engine, GenericEngine, Trainer, configure_determinism
from reproduction.workloads import get_workload, register

MY_MODEL = "tests.my_model:workload"


@pytest.fixture(scope="module")
def digits():
    """2000 MNIST training images and 500 test images."""
    from reproduction.data import DatasetSource

    x, y, xt, yt = DatasetSource("mnist").load()
    return tf.constant(x[:2000]), tf.constant(y[:2000]), tf.constant(xt[:500]), tf.constant(yt[:500])


def _epochs(engine, plan):
    """One epoch per (images, labels, batch size) of ``plan``, at rate 0.05."""
    engine.warm_up(*plan[0][:2])
    return [engine.train_epoch(x, y, 0.05, b, (0, i)) for i, (x, y, b) in enumerate(plan)]


def _report_cnn(normalization: str, generic: bool, noise_every: int = 1, **engine_options):
    configure_determinism()
    options = ModelOptions(normalization=normalization)
    model = build_cnn(options, seed=0)
    optimizer = keras.optimizers.SGD(0.05, momentum=0.9)
    if generic:  # chunked as the fast path chunks (a user's model: GenericEngine's own default)
        engine_options.setdefault("chunk_target", MICRO_BATCH)
        return GenericEngine(model, optimizer, output_kind(model), noise_every=noise_every, **engine_options)
    return Engine(model, optimizer, micro_batch=micro_batch_size(options), noise_every=noise_every)


@pytest.mark.parametrize(
    ("normalization", "noise_every"), [("ghost", 1), ("none", 1), ("batch", 1), ("ghost", 2)]
)
def test_the_generic_engine_trains_the_report_cnn_as_the_folded_fast_path(digits, normalization, noise_every):
    """Two epochs (B 100 on 500 images, then B 1000 on 2000 in chunks of 100): the same losses, noise
    estimates and weights, moving statistics included, to float32 rounding; with every update measured, and
    with one in two. Only seven updates: over more, this model is chaotic (a one-ulp change of the fast
    path's own initial weights grows as large as a bug's effect), and the engines' different rounding would
    grow with it (docs/measurements.md, fifth session)."""
    fast = _report_cnn(normalization, False, noise_every)
    generic = _report_cnn(normalization, True, noise_every)
    x, y = digits[:2]
    plan = [(x[:500], y[:500], 100), (x, y, 1000)]
    for a, b in zip(_epochs(fast, plan), _epochs(generic, plan), strict=True):
        assert b.train_loss == pytest.approx(a.train_loss, rel=1e-4)
        assert (b.steps, b.applied_examples, b.noise_estimates) == (
            a.steps,
            a.applied_examples,
            a.noise_estimates,
        )
        if normalization != "batch":
            assert b.gradient_sq == pytest.approx(a.gradient_sq, rel=1e-3)
            assert b.gradient_trace == pytest.approx(a.gradient_trace, rel=1e-3)
    for u, v in zip(fast.model.get_weights(), generic.model.get_weights(), strict=True):
        np.testing.assert_allclose(v, u, atol=1e-5)
    assert generic.evaluate(*digits[2:])[1] == pytest.approx(fast.evaluate(*digits[2:])[1], abs=2e-3)


def test_chunks_and_parts_of_whole_virtual_batches_give_the_batch_update(digits):
    """A B-1000 update in chunks of 20 (two parts of one virtual batch each), in one piece of 1000, and in
    one piece without the noise estimate: one update, the same weights and moving statistics."""
    runs = [
        _report_cnn("ghost", True, chunk_target=20),
        _report_cnn("ghost", True, chunk_target=1000),
        _report_cnn("ghost", True, chunk_target=1000, noise=False),
    ]
    applied = [_epochs(engine, [(*digits[:2], 1000)])[0] for engine in runs]
    assert [a.steps for a in applied] == [2, 2, 2]
    assert [a.noise_estimates for a in applied] == [100, 2, 0]  # one per chunk that has two parts
    for engine in runs[1:]:
        for u, v in zip(runs[0].model.get_weights(), engine.model.get_weights(), strict=True):
            np.testing.assert_allclose(v, u, atol=1e-5)


# ---------------------------------------------------------------------------------------------- refusals
def _dense(out=10, activation=None, norm=None, features=16):
    layers = [keras.Input(shape=(features,)), keras.layers.Dense(32)]
    layers += [norm] if norm is not None else []
    return keras.Sequential([*layers, keras.layers.Dense(out, activation=activation)])


@pytest.mark.parametrize(
    "model, message",
    [
        (lambda: "a model", "returned str, expected a keras.Model"),
        (lambda: _dense(out=5), r"output shape \(None, 5\), expected \(None, 10\).*labels 0..9"),
        (lambda: _dense(activation="sigmoid"), "ends in 'sigmoid'; expected softmax"),
        (lambda: _dense(features=8), r"input shape \(None, 8\), expected \(None, 16\)"),
    ],
)
def test_a_model_that_is_not_a_classifier_of_the_data_is_refused_naming_the_problem(model, message):
    with pytest.raises(UsageError, match=message):
        check_classifier(model(), 10, (16,), "workload 'w': build_model(0)")


def test_output_kinds_and_coupling_units():
    assert output_kind(_dense(activation="softmax")) == "probabilities"
    assert output_kind(_dense()) == "logits"
    assert coupling_unit(_dense())[0] == 1
    ghost = _dense(norm=GhostBatchNormalization(4))
    assert coupling_unit(ghost) == (4, "ghost batch norm: parts of whole virtual batches (4 examples)")
    nested = keras.Sequential([keras.Input(shape=(16,)), ghost, GhostBatchNormalization(6)])
    assert coupling_unit(nested)[0] == 12  # both layers' virtual batches whole: their lcm
    unit, why = coupling_unit(_dense(norm=keras.layers.BatchNormalization(name="bn")))
    assert unit is None and "layer 'bn' (BatchNormalization) normalizes over the whole batch" in why


def _variant(**changes):
    """The user workload of tests/my_model.py with ``changes``, registered under its own name."""
    base = get_workload(MY_MODEL)
    name = "my-model-" + "-".join(sorted(changes))
    return register(dataclasses.replace(base, name=name, **changes)).name


def test_a_batch_that_is_not_whole_virtual_batches_is_refused_before_training():
    import my_model_variants as variants

    name = _variant(build_model=variants.ghost_of_8)
    trainer = Trainer(get_workload(name).source().load())
    with pytest.raises(
        UsageError, match="batch size 20 is not a whole number of the model's virtual batches of 8"
    ):
        trainer.train(get_workload(name).config("sgd", "decay", 0))


@pytest.mark.parametrize(
    "data, message",
    [
        (lambda: "arrays", "expected \\(x_train, y_train, x_test, y_test\\)"),
        (
            lambda: (np.zeros((4, 2)), np.zeros(3, int), np.zeros((2, 2)), np.zeros(2, int)),
            r"x_train \(4, 2\)",
        ),
        (lambda: (np.zeros((4, 2)), np.zeros(4), np.zeros((2, 2)), np.zeros(2, int)), "integer class labels"),
        (lambda: (np.zeros((4, 2)), np.zeros(4, int), np.zeros((2, 3)), np.zeros(2, int)), "train examples"),
        (lambda: (np.full((4, 2), np.nan), np.zeros(4, int), np.zeros((2, 2)), np.zeros(2, int)), "finite"),
        (lambda: ([1, 2], [3, 4]), "unbatched tf.data dataset"),
    ],
)
def test_data_of_the_wrong_form_is_refused_naming_the_problem(data, message):
    with pytest.raises(DataError, match=message):
        checked_arrays(data(), "workload 'w': load_data()")


def test_load_data_may_give_unbatched_tf_data_datasets():
    x, y, xt, yt = get_workload(MY_MODEL).load_data()
    pairs = [tf.data.Dataset.from_tensor_slices((a, b)) for a, b in ((x, y), (xt, yt))]
    for got, expected in zip(checked_arrays(pairs, "w"), checked_arrays((x, y, xt, yt), "w"), strict=True):
        np.testing.assert_array_equal(got, expected)


# ------------------------------------------------------------------------------------------- the workload
def test_a_user_workload_trains_through_the_generic_engine_with_its_noise_scale_and_model_in_the_record():
    workload = get_workload(MY_MODEL)
    result = Trainer(workload.source().load()).train(workload.config("momentum", "increase", 0))
    assert [e.batch_size for e in result.epochs] == [20, 20, 100, 100, 500, 500]
    assert result.final.test_accuracy > 0.85
    assert all(e.noise_estimates > 0 and e.b_simple > 0 for e in result.epochs)
    assert (
        result.metadata["model"] == "my_model"
        and result.metadata["parameters"] == 16 * 64 + 64 + 4 * 64 + 650
    )
    assert "parts of whole virtual batches (10 examples)" in result.metadata["noise_scale"]


def test_plain_batch_norm_trains_in_one_piece_and_the_run_says_why_there_is_no_noise_scale():
    import my_model_variants as variants

    name = _variant(build_model=variants.plain_batch_norm)
    result = Trainer(get_workload(name).source().load()).train(get_workload(name).config("sgd", "decay", 0))
    assert all(np.isnan(e.b_simple) and e.noise_estimates == 0 for e in result.epochs)
    assert "BatchNormalization) normalizes over the whole batch" in result.metadata["noise_scale"]
    assert result.final.test_accuracy > 0.8


def test_the_run_key_follows_the_source_of_a_users_model_and_data_and_not_the_builtin_ones():
    assert get_workload("mnist").fingerprint == ""
    assert RunConfig("sgd", "decay", 0).key() == "sgd-decay-seed0-" + RunConfig("sgd", "decay", 0).key()[-12:]
    mine = get_workload(MY_MODEL)
    assert len(mine.fingerprint) == 16
    import my_model_variants as variants

    other = _variant(build_model=variants.plain_batch_norm)  # its source lives in another file
    assert get_workload(other).fingerprint != mine.fingerprint
    assert (
        RunConfig("sgd", "decay", 0, workload=other).key()[-12:]
        != RunConfig("sgd", "decay", 0, workload=MY_MODEL).key()[-12:]
    )


@pytest.mark.parametrize(
    "spec, message",
    [
        ("tests.no_such_module:workload", "cannot import module 'tests.no_such_module'"),
        ("tests.my_model:no_such_function", "module 'tests.my_model' has no function 'no_such_function'"),
        ("tests.my_model:load_data", "load_data\\(\\) returned tuple, not a Workload"),
        ("os.path:join", r"join\(\) failed: TypeError: join\(\) missing"),
        (
            "my_model_variants:one_phase_workload",
            r"one_phase_workload\(\) failed: UsageError: Workload.steps=1",
        ),
        (":workload", "expected package.module:function"),
        (".my_model:workload", "expected package.module:function"),
        ("tests.my_model:", "expected package.module:function"),
    ],
)
def test_a_workload_spec_that_does_not_resolve_is_refused(spec, message):
    with pytest.raises(UsageError, match=message):
        get_workload(spec)


# ------------------------------------------------------------------------------ the noise scale's cross-check
def test_vectorised_unit_gradients_equal_a_loop_of_tapes_and_leave_the_statistics_alone():
    from reproduction.classifier import cross_entropy_sum, unit_gradients

    workload = get_workload(MY_MODEL)
    x, y, _, _ = workload.source().load()
    model = workload.build_model(0)
    x, y = tf.constant(x[:205]), tf.constant(y[:205])  # 20 whole units of 10; the last 5 left out
    norm = next(layer for layer in model.layers if isinstance(layer, GhostBatchNormalization))
    before = norm.moving_mean.numpy().copy()
    grads = unit_gradients(model, x, y, 10, "logits")
    assert [g.shape[0] for g in grads] == [20] * len(model.trainable_variables)
    np.testing.assert_array_equal(norm.moving_mean.numpy(), before)
    for u in (0, 13, 19):
        unit = slice(10 * u, 10 * u + 10)
        norm.defer_statistics([])
        with tf.GradientTape() as tape:
            loss = cross_entropy_sum(y[unit], model(x[unit], training=True), "logits") / 10
        norm.defer_statistics(None)
        for mine, ref in zip(grads, tape.gradient(loss, model.trainable_variables), strict=True):
            np.testing.assert_allclose(mine[u].numpy(), ref.numpy(), rtol=1e-5, atol=1e-7)


def test_the_generic_training_estimate_agrees_with_the_probe_on_the_same_weights():
    """At fixed weights (learning rate 0), the generic engine's per-update estimates over an epoch of 20
    batches of 100, pooled, against the probe's per-virtual-batch estimate on the same 2000 examples."""
    from reproduction import noise_scale
    from reproduction.classifier import unit_gradients

    configure_determinism()
    workload = get_workload(MY_MODEL)
    x_np, y_np, _, _ = workload.source().load()
    x, y = tf.constant(x_np), tf.constant(y_np)
    model = workload.build_model(0)
    engine = GenericEngine(model, keras.optimizers.SGD(0.0), "logits")
    engine.warm_up(x, y)
    applied = engine.train_epoch(x, y, 0.0, 100, (0, 0))
    assert applied.noise_estimates == 20
    small, big = noise_scale.gradient_moments(unit_gradients(model, x, y, 10, "logits"))
    probe = noise_scale.estimate(float(small), float(big), 10, 2000)
    assert (
        abs(applied.gradient_sq - probe.gradient_sq) < 3 * applied.gradient_sq_se + 0.05 * probe.gradient_sq
    )
    assert applied.gradient_trace == pytest.approx(probe.trace, rel=0.15)

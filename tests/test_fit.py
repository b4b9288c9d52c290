"""The Keras recipe (reproduction/fit.py) in real ``model.fit`` calls on a small dense model that is not this
project's: steps and learning rates per epoch read back from Keras, callbacks, resumption, and the errors."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from support import synthetic_digits

from reproduction.fit import BatchSizeScheduler, as_schedule, steps
from reproduction.schedules import SCHEDULES, Phase, Schedule

X, Y, _, _ = synthetic_digits(n_train=300, n_test=1)
SCHEDULE = SCHEDULES["increase"](
    base_lr=0.05, base_batch=20, factor=2, steps=3, epochs_per_step=1
)  # 20, 40, 80


def dense_model(optimizer=None):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(16, "relu"),
            keras.layers.Dense(10, "softmax"),
        ]
    )
    model.compile(
        optimizer or keras.optimizers.SGD(0.01, momentum=0.9),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


class Recorder(keras.callbacks.Callback):
    """What Keras did: updates per epoch (the optimizer's counter), batch sizes seen, the learning rate
    during each epoch, and the epoch numbers."""

    def __init__(self):
        super().__init__()
        self.steps, self.lrs, self.epochs, self.batches = [], [], [], []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = int(self.model.optimizer.iterations.numpy())
        self.epochs.append(epoch)
        self.batches.append([])

    def on_train_batch_end(self, batch, logs=None):
        self.lrs.append((self.epochs[-1], float(self.model.optimizer.learning_rate.numpy())))

    def on_epoch_end(self, epoch, logs=None):
        self.steps.append(int(self.model.optimizer.iterations.numpy()) - self._start)


class BatchSizes(keras.layers.Layer):
    """Identity that records the batch dimension it sees in training (through a function: Keras would
    track a list attribute as its own copy)."""

    def __init__(self, record, **kwargs):
        super().__init__(**kwargs)
        self.record = record

    def call(self, x, training=None):
        if training:
            tf.py_function(lambda b: self.record(int(b)), [tf.shape(x)[0]], [])
        return x


def fit(model, scheduler, callbacks=(), **kwargs):
    recorder = Recorder()
    history = model.fit(
        scheduler.dataset(X, Y),
        epochs=kwargs.pop("epochs", scheduler.epochs),
        callbacks=[scheduler, recorder, *callbacks],
        verbose=0,
        shuffle=False,
        **kwargs,
    )
    return recorder, history


def test_steps_and_learning_rates_per_epoch_follow_the_schedule():
    model = dense_model()
    recorder, history = fit(model, BatchSizeScheduler(SCHEDULE, seed=0))
    assert recorder.steps == [15, 8, 4] == SCHEDULE.updates_per_epoch(300)  # 300 = 3 x 80 + 60: partial kept
    assert int(model.optimizer.iterations.numpy()) == steps(300, SCHEDULE) == 27
    assert {e: lr for e, lr in recorder.lrs} == {
        0: pytest.approx(0.05),
        1: pytest.approx(0.05),
        2: pytest.approx(0.05),
    }
    assert history.history["batch_size"] == [20, 40, 80]
    assert history.history["learning_rate"] == pytest.approx([0.05] * 3)
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_every_example_once_per_epoch_with_the_partial_last_batch():
    seen = []
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            BatchSizes(seen.append),
            keras.layers.Flatten(),
            keras.layers.Dense(10, "softmax"),
        ]
    )
    model.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy", run_eagerly=True)
    scheduler = BatchSizeScheduler(SCHEDULE)
    model.fit(scheduler.dataset(X, Y), epochs=3, callbacks=[scheduler], verbose=0, shuffle=False)
    assert seen == [20] * 15 + [40] * 7 + [20] + [80] * 3 + [60]


def test_a_decaying_learning_rate_is_set_each_epoch():
    decay = SCHEDULES["decay"](base_lr=0.1, base_batch=30, factor=5, steps=3, epochs_per_step=1)
    recorder, _ = fit(dense_model(), BatchSizeScheduler(decay))
    assert sorted({e: round(lr, 6) for e, lr in recorder.lrs}.items()) == [(0, 0.1), (1, 0.02), (2, 0.004)]
    assert recorder.steps == [10, 10, 10]


def test_the_order_is_seeded_per_epoch_and_repeatable():
    def batches(seed):
        scheduler = BatchSizeScheduler(SCHEDULE, seed=seed)
        data = scheduler.dataset(X, Y)
        out = []
        for epoch in range(2):
            scheduler._epoch.assign(epoch)  # what on_epoch_begin does
            out.append(np.concatenate([b[1].numpy() for b in data]))
        return out

    a, b, c = batches(0), batches(0), batches(1)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], a[1]) and not np.array_equal(a[0], c[0])
    assert sorted(a[1].tolist()) == sorted(Y.tolist())  # a permutation: every example once


def test_early_stopping_stops_at_the_right_epoch():
    class Probe(keras.callbacks.Callback):  # a monitored value that stops improving after epoch 1
        def on_epoch_end(self, epoch, logs=None):
            logs["probe"] = [3.0, 1.0, 2.0][epoch]

    recorder, history = fit(
        dense_model(),
        BatchSizeScheduler(SCHEDULE),
        [Probe(), keras.callbacks.EarlyStopping(monitor="probe", mode="min", patience=0)],
    )
    assert recorder.epochs == [0, 1, 2] and history.history["probe"] == [3.0, 1.0, 2.0]
    five = SCHEDULES["increase"](base_lr=0.05, base_batch=20, factor=1, steps=5, epochs_per_step=1)

    class Flat(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["probe"] = [3.0, 1.0, 2.0, 2.0, 0.5][epoch]

    recorder, _ = fit(
        dense_model(),
        BatchSizeScheduler(five),
        [Flat(), keras.callbacks.EarlyStopping(monitor="probe", mode="min", patience=2)],
    )
    assert (
        recorder.epochs == [0, 1, 2, 3] and recorder.steps == [15] * 4
    )  # stopped after two epochs without gain


def test_checkpoint_and_csv_logger_see_ordinary_epochs(tmp_path):
    csv = tmp_path / "log.csv"
    fit(
        dense_model(),
        BatchSizeScheduler(SCHEDULE),
        [
            keras.callbacks.CSVLogger(str(csv)),
            keras.callbacks.ModelCheckpoint(str(tmp_path / "e{epoch}.keras")),
        ],
    )
    rows = csv.read_text().splitlines()
    assert rows[0].split(",")[0] == "epoch" and [r.split(",")[0] for r in rows[1:]] == ["0", "1", "2"]
    assert "batch_size" in rows[0]
    assert sorted(p.name for p in tmp_path.glob("*.keras")) == ["e1.keras", "e2.keras", "e3.keras"]


def test_resuming_with_initial_epoch_takes_the_schedule_from_there():
    recorder, _ = fit(dense_model(), BatchSizeScheduler(SCHEDULE), initial_epoch=1)
    assert recorder.epochs == [1, 2] and recorder.steps == [8, 4]


def test_a_dataset_of_examples_and_a_function_schedule():
    examples = tf.data.Dataset.from_tensor_slices((X, Y))
    scheduler = BatchSizeScheduler(lambda epoch: (0.02, 50 * (epoch + 1)), epochs=3, seed=1)
    model = dense_model()
    recorder = Recorder()
    model.fit(
        scheduler.dataset(examples), epochs=3, callbacks=[scheduler, recorder], verbose=0, shuffle=False
    )
    assert recorder.steps == [6, 3, 2] and scheduler.steps_per_epoch() == [6, 3, 2]


def test_any_schedule_spec():
    assert as_schedule(SCHEDULES["increase"]).parameter_updates(60_000) == 1488
    assert steps(60_000, SCHEDULES["increase"]) == 1488
    assert as_schedule(lambda e: (0.1, 100), epochs=2).per_epoch() == [Phase(1, 0.1, 100)] * 2
    with pytest.raises(ValueError, match="needs epochs="):
        as_schedule(lambda epoch: (0.1, 100))
    with pytest.raises(ValueError, match=r"schedule\(0\) = 0.1"):
        as_schedule(lambda e: 0.1, epochs=1)
    with pytest.raises(ValueError, match="expected a Schedule"):
        BatchSizeScheduler("increase")


# ---------------------------------------------------------------------------------------------- the errors
def test_a_batch_larger_than_the_data_is_refused():
    with pytest.raises(ValueError, match="batch size 400 exceeds the 300 examples"):
        BatchSizeScheduler(Schedule("big", (Phase(1, 0.1, 100), Phase(1, 0.1, 400)))).dataset(X, Y)


def test_a_batch_that_shrinks_below_the_first_is_refused():
    shrinking = Schedule("shrink", (Phase(1, 0.1, 100), Phase(1, 0.1, 50)))
    with pytest.raises(ValueError, match="epoch 1 takes 6 steps.*first epoch's 3"):
        BatchSizeScheduler(shrinking).dataset(X, Y)


def test_a_learning_rate_schedule_object_conflicts():
    decaying = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
    with pytest.raises(ValueError, match="ExponentialDecay.*conflicts"):
        fit(dense_model(keras.optimizers.SGD(decaying)), BatchSizeScheduler(SCHEDULE))


def test_an_already_batched_dataset_is_refused():
    with pytest.raises(ValueError, match="already batched.*unbatch"):
        BatchSizeScheduler(SCHEDULE).dataset(tf.data.Dataset.from_tensor_slices((X, Y)).batch(10))


def test_a_dataset_of_unknown_length_is_refused():
    unknown = tf.data.Dataset.from_tensor_slices((X, Y)).filter(lambda x, y: True)
    with pytest.raises(ValueError, match="assert_cardinality"):
        BatchSizeScheduler(SCHEDULE).dataset(unknown)


def test_fit_on_other_data_and_too_many_epochs_are_refused():
    model = dense_model()
    with pytest.raises(ValueError, match="scheduler.dataset"):
        model.fit(X, Y, epochs=1, callbacks=[BatchSizeScheduler(SCHEDULE)], verbose=0)
    with pytest.raises(ValueError, match="has 3 epochs"):
        fit(model, BatchSizeScheduler(SCHEDULE), epochs=4)

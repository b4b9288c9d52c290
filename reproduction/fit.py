"""Increase the batch size in your own Keras ``fit``: a batch-size (and learning-rate) schedule for any Keras
3
model, in one ``model.fit`` call.

    scheduler = BatchSizeScheduler(SCHEDULES["increase"](base_lr=0.1), seed=0)
    model.fit(scheduler.dataset(x_train, y_train), epochs=scheduler.epochs, callbacks=[scheduler],
              shuffle=False)  # the scheduler shuffles; Keras would warn that it ignores shuffle on a dataset

``BatchSizeScheduler`` is a Keras callback that owns the dataset it hands out. At the start of each epoch it
sets the optimizer's learning rate and the epoch the dataset reads; the dataset then yields that epoch's
batches: ceil(N / B) of them, the last one partial (as reproduction's engine trains), in an order drawn from
(seed, epoch), so a run can be repeated and resumed with ``initial_epoch``. Standard callbacks
(EarlyStopping, ModelCheckpoint, TensorBoard, CSVLogger) see ordinary epochs; ``steps_per_epoch`` is not
given. With arrays, the order is the engine's own (reproduction/training.py), so ``fit`` and the engine
feed identical batches.

How it fits Keras 3's loop (keras/src/trainers/epoch_iterator.py): a dataset of unknown length is read
until it ends, and Keras then keeps the first epoch's batch count as the most any later epoch may take.
Epochs with fewer batches (a growing batch size) end when the data does, so a schedule must never take
more steps in a later epoch than in the first one of the ``fit`` call: every batch size at least the first
epoch's. The scheduler refuses other schedules rather than let Keras cut epochs short, and silences
Keras's "Your input ran out of data" warning, which is expected here. An epoch that ends with its data
costs Keras one optimizer iteration that updates nothing (the counter's increment does not wait for the
missing batch); the scheduler puts the counter back at the epoch's end. Keras's progress bar keeps the
first epoch's step count as its target.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import keras
import tensorflow as tf

from reproduction.schedules import SCHEDULES, Phase, Schedule

EpochFunction = Callable[[int], tuple[float, int]]  # epoch (from 0) -> (learning rate, batch size)
_RAN_OUT = "Your input ran out of data"


def as_schedule(schedule, epochs: int | None = None) -> Schedule:
    """A Schedule from a Schedule, a factory of reproduction.schedules.SCHEDULES (its defaults), or a
    function epoch -> (learning rate, batch size) over ``epochs`` epochs."""
    if isinstance(schedule, Schedule):
        return schedule
    if not callable(schedule):
        raise ValueError(
            f"schedule={schedule!r}: expected a Schedule, a factory of SCHEDULES, or a function epoch -> "
            "(learning rate, batch size)"
        )
    if epochs is None:
        if schedule not in SCHEDULES.values():
            raise ValueError("schedule: a function epoch -> (learning rate, batch size) needs epochs=")
        return schedule()  # a factory, with its defaults
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs={epochs!r}: expected a positive integer")
    phases = []
    for e in range(epochs):
        value = schedule(e)
        if not (isinstance(value, tuple) and len(value) == 2):
            raise ValueError(f"schedule({e}) = {value!r}: expected a (learning rate, batch size) tuple")
        phases.append(Phase(1, float(value[0]), value[1]))
    return Schedule(getattr(schedule, "__name__", "custom"), tuple(phases))


class BatchSizeScheduler(keras.callbacks.Callback):
    """Sets each epoch's learning rate and batch size from ``schedule`` during ``model.fit``; pass the
    dataset from ``dataset()`` as fit's data and the scheduler among its callbacks."""

    def __init__(self, schedule, seed: int = 0, epochs: int | None = None):
        super().__init__()
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"seed={seed!r}: expected a non-negative integer")
        self.schedule = as_schedule(schedule, epochs)
        self.seed = seed
        phases = self.schedule.per_epoch()
        self._batch_sizes = tf.constant([p.batch_size for p in phases], tf.int64)
        self._epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="schedule_epoch")
        self.n_examples: int | None = None
        self._warnings = None

    @property
    def epochs(self) -> int:
        return self.schedule.epochs

    def steps_per_epoch(self) -> list[int]:
        if self.n_examples is None:
            raise ValueError(
                "steps_per_epoch: call dataset() first (the number of examples is not known yet)"
            )
        return self.schedule.updates_per_epoch(self.n_examples)

    # ------------------------------------------------------------------------------------------- the data
    def dataset(self, x, y=None) -> tf.data.Dataset:
        """Batches of each epoch of the schedule. ``x`` and ``y``: arrays (or nested structures of arrays)
        with the examples along the first axis; or ``x`` an *unbatched* tf.data.Dataset of (x, y) examples
        of known length, with ``y`` None."""
        if isinstance(x, tf.data.Dataset):
            return self._from_dataset(x, y)
        if y is None:
            raise ValueError("dataset(x, y): expected arrays x and y (or a tf.data.Dataset as x, y None)")
        arrays = tf.nest.map_structure(tf.convert_to_tensor, (x, y))
        sizes = {int(t.shape[0]) for t in tf.nest.flatten(arrays)}
        if len(sizes) != 1:
            raise ValueError(f"dataset(x, y): x and y hold different numbers of examples: {sorted(sizes)}")
        self._check(sizes.pop())
        batch_sizes, epoch, seed = self._batch_sizes, self._epoch, self.seed

        def one_epoch(*data):
            e = epoch.read_value()  # the epoch the callback set before Keras started reading
            n = tf.shape(tf.nest.flatten(data)[0], out_type=tf.int64)[0]
            b = batch_sizes[e]
            # the engine's order: argsort of stateless uniforms seeded (seed, epoch)
            order = tf.argsort(tf.random.stateless_uniform([n], seed=tf.stack([tf.cast(seed, tf.int64), e])))
            steps = (n + b - 1) // b
            return tf.data.Dataset.range(steps).map(
                lambda i: tf.nest.map_structure(
                    lambda t: tf.gather(t, order[i * b : tf.minimum((i + 1) * b, n)]), data
                )
            )

        return tf.data.Dataset.from_tensors(arrays).flat_map(lambda *data: one_epoch(*data)).prefetch(1)

    def _from_dataset(self, dataset: tf.data.Dataset, y) -> tf.data.Dataset:
        if y is not None:
            raise ValueError(
                "dataset(x, y): with a tf.data.Dataset as x, y must be None (the dataset holds both)"
            )
        kind = type(dataset).__name__
        if "Batch" in kind:
            raise ValueError(
                f"dataset: already batched ({kind}); pass unbatched examples (dataset.unbatch()): the "
                "scheduler batches each epoch itself"
            )
        n = int(dataset.cardinality())
        if n < 0:
            raise ValueError(
                "dataset: its number of examples is unknown or infinite; give it with "
                "dataset.apply(tf.data.experimental.assert_cardinality(N))"
            )
        self._check(n)
        # one pipeline per epoch (its own shuffle seed and batch size), the epoch's chosen at iteration time
        per_epoch = [
            dataset.shuffle(n, seed=self.seed * 1_000_003 + e, reshuffle_each_iteration=False).batch(
                p.batch_size
            )
            for e, p in enumerate(self.schedule.per_epoch())
        ]
        steps = tf.constant(self.schedule.updates_per_epoch(n), tf.int64)
        epoch = self._epoch

        def choices(_):
            e = epoch.read_value()
            return tf.data.Dataset.from_tensors(e).repeat(steps[e])

        choice = tf.data.Dataset.from_tensors(0).flat_map(choices)
        return tf.data.Dataset.choose_from_datasets(per_epoch, choice).prefetch(1)

    def _check(self, n: int) -> None:
        """The schedule fits the data, and no epoch needs more steps than the first (see the module)."""
        self.schedule.check_fits(n)  # names the batch size and the examples
        steps = self.schedule.updates_per_epoch(n)
        grows = [e for e, s in enumerate(steps) if s > steps[0]]
        if grows:
            raise ValueError(
                f"schedule {self.schedule.name!r}: epoch {grows[0]} takes {steps[grows[0]]} steps on {n} "
                f"examples, more than the first epoch's {steps[0]} (batch sizes "
                f"{[p.batch_size for p in self.schedule.phases]}); Keras's fit keeps the first epoch's step "
                "count as every later epoch's limit, so batch sizes must not fall below the first epoch's"
            )
        self.n_examples = n

    # ------------------------------------------------------------------------------------- the callback
    def on_train_begin(self, logs=None):
        if self.n_examples is None:
            raise ValueError("BatchSizeScheduler: fit the model on scheduler.dataset(...), not on other data")
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None:
            raise ValueError("BatchSizeScheduler: compile the model with an optimizer first")
        if not isinstance(optimizer.learning_rate, keras.Variable):
            raise ValueError(
                "BatchSizeScheduler: the optimizer's learning rate is a "
                f"{type(optimizer._learning_rate).__name__}, not a number: a learning-rate schedule "
                "conflicts with this one; compile with a plain learning rate"
            )
        epochs = self.params.get("epochs") if self.params else None
        if epochs is not None and epochs > self.epochs:
            raise ValueError(
                f"fit(epochs={epochs}): the schedule {self.schedule.name!r} has {self.epochs} epochs"
            )
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.filterwarnings("ignore", message=_RAN_OUT)  # an epoch shorter than the first: expected

    def on_epoch_begin(self, epoch, logs=None):
        if not 0 <= epoch < self.epochs:
            raise ValueError(
                f"epoch {epoch}: the schedule {self.schedule.name!r} has epochs 0-{self.epochs - 1}"
            )
        self._epoch.assign(epoch)
        self.model.optimizer.learning_rate.assign(self.schedule.learning_rate(epoch))
        self._start, self._steps = int(self.model.optimizer.iterations.numpy()), 0

    def on_train_batch_end(self, batch, logs=None):
        self._steps = batch + 1  # Keras passes the last step of the call (steps_per_execution may be > 1)

    def on_epoch_end(self, epoch, logs=None):
        # An epoch that ends with the data makes one more train-function call, whose get_next fails; TF still
        # runs its iteration increment (it does not wait for the batch), though no weight moves. Put the
        # counter back to the updates made, so Adam's bias correction and anything reading it stay exact.
        iterations = self.model.optimizer.iterations
        if int(iterations.numpy()) != self._start + self._steps:
            iterations.assign(self._start + self._steps)
        if logs is not None:  # beside the metrics: CSVLogger, TensorBoard and History record them
            logs["learning_rate"] = float(self.model.optimizer.learning_rate.numpy())
            logs["batch_size"] = self.schedule.batch_size(epoch)

    def on_train_end(self, logs=None):
        if self._warnings is not None:
            self._warnings.__exit__(None, None, None)
            self._warnings = None


def steps(n_examples: int, schedule) -> int:
    """Parameter updates of a whole ``fit`` over the schedule: sum over epochs of ceil(N / B)."""
    return sum(math.ceil(n_examples / p.batch_size) for p in as_schedule(schedule).per_epoch())

"""train(config, data) -> RunResult: one loop for every schedule, batch size changing between epochs.

How an epoch runs (measured fastest on a 2-core CPU, see docs/engine-speed.md):
  * the whole epoch is one traced tf.function whose batch dimension is None: one trace serves every batch
    size and every epoch (``trace_count`` lets tests assert it);
  * the training tensors are passed in, not captured (captured constants blow up graph memory);
  * shuffling happens in the graph, from a stateless seed (run seed, epoch): deterministic, resumable;
  * batches are ``tf.gather``-ed from memory; the last batch of an epoch keeps the remainder (N mod B), so
    an epoch is ceil(N/B) updates, as schedules.py counts them;
  * the forward pass folds the normalization into the convolution (model.forward), exactly;
  * a batch larger than ``micro_batch`` examples is computed in chunks whose gradients (weighted by their
    share of the batch) and ghost-BN statistics are summed, then applied as *one* update: the same
    gradient, but activations that stay in cache (B 2500 in one piece is memory-bound on a 2-core CPU);
  * the learning rate is the optimizer's variable, assigned before each epoch;
  * under a tf.distribute strategy each update runs on every replica (``strategy.run``), each on its
    contiguous slice of the global batch, its loss over the global batch; the optimizer sums the gradients
    (reproduction/distribute.py). The default strategy is one replica: the same ops as without one;
  * the epoch reports what it applied, counted in the graph: the smallest and largest learning rate the
    optimizer held at an update, the smallest and largest examples per update, and the examples fed. The
    records are observations, so a loop that ignored the schedule would show it (claim schedule-applied).
After each epoch the gradient noise scale B_simple is measured on a fixed probe of the training set
(reproduction/noise_scale.py), reading the weights only: a run is bit-identical with or without it.
Timing: ``train_seconds`` covers the epoch's training only (the trace is made before, on an empty epoch);
the noise measurement and the evaluation on the test set are timed apart (``noise_seconds``,
``eval_seconds``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from reproduction.config import RunConfig
from reproduction.distribute import check_split, describe
from reproduction.errors import UsageError
from reproduction.hostload import measured
from reproduction.model import build_cnn, forward, logits, micro_batch_size
from reproduction.noise_scale import PROBE_EXAMPLES, NoiseProbe, probe_indices, unit_size
from reproduction.optimizers import get_optimizer
from reproduction.provenance import metadata
from reproduction.results import EpochRecord, RunResult  # noqa: F401  (re-exported: the engine's output)

EVAL_BATCH = 10_000


def configure_determinism() -> None:
    """Same seed, same machine: bit-identical results."""
    tf.config.experimental.enable_op_determinism()


class Engine:
    """A model, its optimizer and the traced epoch and evaluation functions."""

    def __init__(
        self,
        model: keras.Model,
        optimizer: keras.optimizers.Optimizer,
        micro_batch: int | None = None,
        strategy: tf.distribute.Strategy | None = None,
    ):
        """``micro_batch``: chunk size for large batches (model.micro_batch_size), None: never split.
        ``strategy``: the one model and optimizer were created under (their ``strategy.scope()``); None: the
        default, one device."""
        self.model, self.optimizer = model, optimizer
        self.micro_batch = micro_batch
        self.strategy = strategy if strategy is not None else tf.distribute.get_strategy()
        self.replicas = self.strategy.num_replicas_in_sync
        if self.replicas > 1 and micro_batch is None:
            raise UsageError(
                f"replicas={self.replicas}: this model's normalization spans the whole batch "
                "(micro_batch=None), so it cannot be split over replicas"
            )
        self.variables = model.trainable_variables
        try:
            self.norm = model.get_layer("norm")
        except ValueError:
            self.norm = None
        with self.strategy.scope():
            optimizer.build(self.variables)
        image = tf.TensorSpec([None, 28, 28, 1], tf.float32)
        label = tf.TensorSpec([None], tf.int32)
        self._epoch = tf.function(
            self._epoch_fn,
            input_signature=[image, label, tf.TensorSpec([], tf.int32), tf.TensorSpec([2], tf.int32)],
        )
        self._evaluate = tf.function(self._evaluate_fn, input_signature=[image, label])

    @property
    def trace_count(self) -> int:
        return self._epoch.experimental_get_tracing_count()

    def _epoch_fn(self, x, y, batch_size, seed):
        """Mean train loss, and what the updates applied: [lr min, lr max], [examples per update min, max,
        examples in all]."""
        n = tf.shape(x)[0]
        order = tf.argsort(tf.random.stateless_uniform([n], seed=seed))
        steps = (n + batch_size - 1) // batch_size
        loss_sum = tf.constant(0.0)
        lr_min, lr_max = tf.constant(math.inf), tf.constant(-math.inf)
        batch_min, batch_max, examples = n, tf.constant(0), tf.constant(0)
        for i in tf.range(steps):
            idx = order[i * batch_size : tf.minimum((i + 1) * batch_size, n)]
            lr = tf.cast(self.optimizer.learning_rate, tf.float32)  # as the update below reads it
            loss_sum += self.strategy.reduce(
                tf.distribute.ReduceOp.SUM, self.strategy.run(self._step, (x, y, idx)), axis=None
            )
            b = tf.shape(idx)[0]
            lr_min, lr_max = tf.minimum(lr_min, lr), tf.maximum(lr_max, lr)
            batch_min, batch_max, examples = tf.minimum(batch_min, b), tf.maximum(batch_max, b), examples + b
        return (
            loss_sum / tf.cast(tf.maximum(n, 1), tf.float32),
            tf.stack([lr_min, lr_max]),
            tf.stack([batch_min, batch_max, examples]),
        )

    def _step(self, x, y, idx):
        """One parameter update on the examples ``idx`` (per replica: its slice of them); returns the summed
        loss over this replica's examples."""
        if self.micro_batch is None:  # plain BN: one replica only (__init__)
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(
                    tf.nn.sparse_softmax_cross_entropy_with_logits(
                        tf.gather(y, idx), logits(self.model, tf.gather(x, idx), training=True)
                    )
                )
            self.optimizer.apply_gradients(
                zip(tape.gradient(loss, self.variables), self.variables, strict=True)
            )
            return loss * tf.cast(tf.shape(idx)[0], tf.float32)
        total = tf.cast(tf.shape(idx)[0], tf.float32)  # the global batch, whose mean loss every replica takes
        if self.replicas > 1:  # whole virtual batches per replica (distribute.check_split)
            share = tf.shape(idx)[0] // self.replicas
            replica = tf.distribute.get_replica_context().replica_id_in_sync_group
            idx = idx[replica * share : (replica + 1) * share]
        b = tf.shape(idx)[0]
        chunk = tf.minimum(b, self.micro_batch)
        local = tf.cast(b, tf.float32)
        grads = [tf.zeros_like(v) for v in self.variables]
        stats = (
            [tf.zeros_like(self.norm.moving_mean), tf.zeros_like(self.norm.moving_mean)] if self.norm else []
        )
        loss_sum = tf.constant(0.0)
        for j in tf.range((b + chunk - 1) // chunk):
            part = idx[j * chunk : tf.minimum((j + 1) * chunk, b)]
            with tf.GradientTape() as tape:
                z, statistics = forward(self.model, tf.gather(x, part), training=True)
                # sum of per-example losses / B: the chunks' gradients add up to the batch mean's
                part_loss = tf.reduce_sum(
                    tf.nn.sparse_softmax_cross_entropy_with_logits(tf.gather(y, part), z)
                )
                scaled = part_loss / total
            grads = [g + d for g, d in zip(grads, tape.gradient(scaled, self.variables), strict=True)]
            if statistics is not None:  # size-weighted, as the layer's rule over virtual batches
                mean, variance, count = statistics
                stats = [stats[0] + mean * count / local, stats[1] + variance * count / local]
            loss_sum += part_loss
        if self.norm is not None:  # this replica's; the variables average them over replicas
            self.norm.update_moving_statistics(*stats)
        self.optimizer.apply_gradients(zip(grads, self.variables, strict=True))
        return loss_sum

    def _evaluate_fn(self, x, y):
        z = logits(self.model, x, training=False)
        loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(y, z))
        correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(z, axis=1, output_type=tf.int32), y), tf.float32))
        return loss, correct

    def warm_up(self, x, y) -> None:
        """Trace and instantiate both functions on empty input, so no epoch's timing includes it."""
        self._epoch(x[:0], y[:0], tf.constant(1), tf.constant([0, 0]))
        self._evaluate(x[:0], y[:0])

    def train_epoch(
        self, x, y, learning_rate: float, batch_size: int, seed: tuple[int, int]
    ) -> dict[str, Any]:
        """Train one epoch; returns its mean train loss, the updates the optimizer counted and the
        ``applied_*`` observations of EpochRecord."""
        self.optimizer.learning_rate.assign(learning_rate)
        before = int(self.optimizer.iterations.numpy())
        loss, lr, batch = self._epoch(x, y, tf.constant(batch_size, tf.int32), tf.constant(seed, tf.int32))
        lr, batch = lr.numpy().tolist(), batch.numpy().tolist()
        return {
            "train_loss": float(loss),
            "steps": int(self.optimizer.iterations.numpy()) - before,
            "applied_lr_min": lr[0],
            "applied_lr_max": lr[1],
            # baked into the traced update; Adam's beta_1 is a moving average, not the m of g
            "applied_momentum": float(getattr(self.optimizer, "momentum", 0.0)),
            "applied_batch_min": batch[0],
            "applied_batch_max": batch[1],
            "applied_examples": batch[2],
        }

    def evaluate(self, x, y) -> tuple[float, float]:
        """(mean loss, accuracy) in inference mode."""
        loss_sum, correct = 0.0, 0.0
        for start in range(0, int(x.shape[0]), EVAL_BATCH):
            l_, c_ = self._evaluate(x[start : start + EVAL_BATCH], y[start : start + EVAL_BATCH])
            loss_sum, correct = loss_sum + float(l_), correct + float(c_)
        n = max(int(x.shape[0]), 1)
        return loss_sum / n, correct / n


EpochCallback = Callable[[EpochRecord], None]


class Trainer:
    """Trains runs on one dataset, one after another, reusing what does not depend on the run: the data as
    tensors, and one traced ``Engine`` per (model options, optimizer, momentum). A reused engine starts each
    run from the weights a freshly built model would have (same seed, same draws) and a zeroed optimizer
    state (iterations, momentum/velocity slots), so its result is bit-identical to a fresh engine's
    (tests/test_training.py); what it saves is each run's trace and instantiation of the epoch function."""

    def __init__(
        self,
        data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
        noise_probe: int = PROBE_EXAMPLES,
        strategy: tf.distribute.Strategy | None = None,
    ):
        """``noise_probe``: examples on which B_simple is measured after each epoch; 0: not measured.
        ``strategy``: where each run trains (reproduction/distribute.py); None: the default, one device."""
        if not isinstance(noise_probe, int) or noise_probe < 0:
            raise UsageError(f"noise_probe={noise_probe!r}: expected a non-negative integer (0: off)")
        configure_determinism()
        self.strategy = strategy if strategy is not None else tf.distribute.get_strategy()
        self.x_train, self.y_train, self.x_test, self.y_test = data
        self._tensors = (
            tf.constant(self.x_train),
            tf.constant(self.y_train, tf.int32),
            tf.constant(self.x_test),
            tf.constant(self.y_test, tf.int32),
        )
        self._engines: dict[tuple, Engine] = {}
        self.noise_probe = noise_probe
        self._probes: dict[tuple, NoiseProbe] = {}  # one traced measurement per engine

    def _noise(self, config: RunConfig, engine: Engine, n_train: int):
        """A function measuring the engine's model on this run's probe, or None (off, or no unit: plain BN)."""
        unit = unit_size(config.model.normalization, config.model.virtual_batch_size)
        if self.noise_probe == 0 or unit is None:
            return None
        index = probe_indices(n_train, unit, self.noise_probe)
        x, y = tf.gather(self._tensors[0], index), tf.gather(self._tensors[1], index)
        probe = self._probes.get(id(engine))
        if probe is None:
            probe = self._probes[id(engine)] = NoiseProbe(engine.model, unit)
            probe.measure(x[: 2 * unit], y[: 2 * unit])  # trace now, so no epoch's noise_seconds includes it
        return lambda: probe.measure(x, y)

    def _engine(self, config: RunConfig, momentum: float | None) -> Engine:
        key = (config.model, get_optimizer(config.optimizer), momentum)
        keras.utils.set_random_seed(config.seed)
        engine = self._engines.get(key)
        if engine is None:
            with self.strategy.scope():  # the model's and optimizer's variables, one copy per replica
                model = build_cnn(config.model, seed=config.seed)
                optimizer = get_optimizer(config.optimizer).build(momentum=momentum)
            engine = self._engines[key] = Engine(
                model, optimizer, micro_batch=micro_batch_size(config.model), strategy=self.strategy
            )
            engine.warm_up(*self._tensors[:2])
        else:
            model = build_cnn(
                config.model, seed=config.seed
            )  # the run's initial weights, from its seed alone
            engine.model.set_weights(model.get_weights())
            for v in engine.optimizer.variables:  # iterations, learning rate (assigned per epoch), slots
                v.assign(tf.zeros_like(v))
        return engine

    def train_timed(self, config: RunConfig, on_epoch: EpochCallback | None = None) -> RunResult:
        """``train``, with the CPU time other processes used meanwhile in its metadata (``host_load``): the
        record a wall-clock claim needs to read the run's seconds (reproduction/hostload.py)."""
        result, load = measured(lambda: self.train(config, on_epoch))
        result.metadata["host_load"] = load
        return result

    def train(self, config: RunConfig, on_epoch: EpochCallback | None = None) -> RunResult:
        x, y, xt, yt = self._tensors
        n_train = len(self.x_train)
        if config.train_examples is not None:
            if config.train_examples > n_train:
                raise UsageError(f"train_examples={config.train_examples}: only {n_train} examples available")
            n_train = config.train_examples
            x, y = x[:n_train], y[:n_train]
        schedule = config.build_schedule()
        schedule.check_fits(n_train)
        replicas, strategy = self.strategy.num_replicas_in_sync, describe(self.strategy)["strategy"]
        if (config.strategy, config.replicas) != (strategy, replicas):
            raise UsageError(
                f"strategy={config.strategy!r}, replicas={config.replicas}: the trainer's strategy is "
                f"{strategy!r} with {replicas} replicas"
            )
        check_split(
            [p.batch_size for p in schedule.phases],
            n_train,
            replicas,
            config.model.normalization,
            config.model.virtual_batch_size,
        )
        engine = self._engine(config, schedule.momentum)
        measure_noise = self._noise(config, engine, n_train)
        initial = measure_noise() if measure_noise is not None else None  # before any update
        records = []
        for epoch, phase in enumerate(schedule.per_epoch()):
            start = time.perf_counter()
            applied = engine.train_epoch(x, y, phase.learning_rate, phase.batch_size, (config.seed, epoch))
            train_seconds = time.perf_counter() - start
            noise = {}
            if measure_noise is not None:
                start = time.perf_counter()
                scale = measure_noise()
                noise = {
                    "gradient_sq": scale.gradient_sq,
                    "gradient_trace": scale.trace,
                    "b_simple": scale.b_simple,
                    "noise_seconds": time.perf_counter() - start,
                }
            start = time.perf_counter()
            test_loss, test_accuracy = engine.evaluate(xt, yt)
            eval_seconds = time.perf_counter() - start
            record = EpochRecord(
                epoch=epoch,
                learning_rate=phase.learning_rate,
                batch_size=phase.batch_size,
                train_seconds=train_seconds,
                eval_seconds=eval_seconds,
                test_loss=test_loss,
                test_accuracy=test_accuracy,
                momentum=config.momentum,
                **applied,
                **noise,
            )
            records.append(record)
            if on_epoch is not None:
                on_epoch(record)
        meta = metadata()
        meta.update(describe(self.strategy))
        meta["trace_count"] = engine.trace_count
        meta["n_train"], meta["n_test"] = n_train, len(self.x_test)
        unit = unit_size(config.model.normalization, config.model.virtual_batch_size)
        meta["noise_probe"] = (
            0 if measure_noise is None else len(probe_indices(n_train, unit, self.noise_probe))
        )
        if initial is None:
            return RunResult(config, tuple(records), meta)
        return RunResult(config, tuple(records), meta, initial.gradient_sq, initial.trace)


def train(
    config: RunConfig,
    data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    on_epoch: EpochCallback | None = None,
    noise_probe: int = PROBE_EXAMPLES,
    strategy: tf.distribute.Strategy | None = None,
) -> RunResult:
    """Train one run on preprocessed (x_train, y_train, x_test, y_test); ``Trainer`` for many."""
    return Trainer(data, noise_probe, strategy).train(config, on_epoch)

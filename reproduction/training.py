"""train(config, data) -> RunResult: one loop for every schedule, batch size changing between epochs.

How an epoch runs (measured fastest on a 2-core CPU, see docs/engine.md):
  * the whole epoch is one traced tf.function whose batch dimension is None: one trace serves every batch
    size and every epoch (``trace_count`` lets tests assert it);
  * the training tensors are passed in, not captured (captured constants blow up graph memory);
  * shuffling happens in the graph, from a stateless seed (run seed, epoch): deterministic, resumable;
  * batches are ``tf.gather``-ed from memory; the last batch of an epoch keeps the remainder (N mod B), so
    an epoch is ceil(N/B) updates, as schedules.py counts them;
  * the forward pass folds the normalization into the convolution, exactly (model.py);
  * a batch larger than ``micro_batch`` examples is computed in chunks whose gradients (weighted by their
    share of the batch) and ghost-BN statistics are summed, then applied as *one* update: the same
    gradient, but activations that stay in cache;
  * each chunk's gradient comes in two parts of whole virtual batches (model.split_gradients), from which
    the gradient noise scale is estimated at every update, for the cost of one more filter-gradient call
    (reproduction/noise_scale.py); plain batch norm has no such parts and is not measured;
  * the learning rate is the optimizer's variable, assigned before each epoch;
  * any other Keras classifier (a workload's ``build_model``) trains through ``GenericEngine``: the same loop
    through the model's own call, chunks and parts of whole virtual batches (reproduction/classifier.py);
  * under a tf.distribute strategy each update runs on every replica (``strategy.run``), each on its
    contiguous slice of the global batch, its loss over the global batch; the optimizer sums the gradients
    (reproduction/distribute.py). The default strategy is one replica: the same ops as without one;
  * the epoch reports what it applied, counted in the graph: the learning rate the optimizer held, the
    smallest and largest examples per update, and the examples fed. The records are observations, so a loop
    that ignored the schedule would show it (claim schedule-applied).
Threads: every op runs on one intra-op thread (``THREADS``), in the main process and in every worker alike,
so a run's bits do not depend on where it trained (two threads sum in another order). Independent ops run
side by side on one inter-op thread per core (``inter_op_threads``; one in a worker that shares the machine):
a large batch's chunks overlap, and no bit moves, as each op still computes alone (docs/engine.md;
tests/test_training.py).
Timing: ``train_seconds`` covers the epoch's training only (the trace is made before, on an empty epoch); the
evaluation on the test set is timed apart (``eval_seconds``).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from reproduction.classifier import (
    check_batches,
    check_classifier,
    coupling_unit,
    cross_entropy_sum,
    ghost_layers,
    piece_gradient,
    regularization,
)
from reproduction.config import RunConfig
from reproduction.distribute import check_split, describe
from reproduction.errors import UsageError
from reproduction.hostload import combined, cores, measured
from reproduction.model import build_cnn, forward, logits, micro_batch_size, split_gradients, two_parts
from reproduction.noise_scale import NoiseScale, check_noise_every, epoch_noise, squared_norm, step_estimate
from reproduction.optimizers import get_optimizer
from reproduction.provenance import metadata
from reproduction.results import EpochRecord, RunResult
from reproduction.sharing import shares_start
from reproduction.workloads import call_user, get_workload

EVAL_BATCH = 10_000
# Intra-op threads: one, so that each op sums in one order and a run's bits do not depend on where it trains.
THREADS = 1


def inter_op_threads() -> int:
    """Threads that run independent ops side by side: TF_NUM_INTEROP_THREADS where set (a worker that shares
    its machine: 1, reproduction/cluster.py), else one per core. Each op computes alone, in its own order,
    so this count moves no bit; it lets the noise estimate overlap the update and a large batch's chunks
    overlap each other (docs/engine.md)."""
    return int(os.environ.get("TF_NUM_INTEROP_THREADS") or 0) or cores()


def configure_determinism() -> None:
    """Same seed, same CPU: bit-identical results, wherever the run trains."""
    tf.config.experimental.enable_op_determinism()
    configure_threads()


def configure_threads() -> None:
    """One intra-op thread (``THREADS``) and ``inter_op_threads()``, set before TensorFlow starts; refused if
    it already started with another intra-op count (set TF_NUM_INTRAOP_THREADS=1 before importing it). An
    inter-op count TensorFlow already started with is kept: it changes no result."""
    intra = tf.config.threading.get_intra_op_parallelism_threads() or int(
        os.environ.get("TF_NUM_INTRAOP_THREADS", 0)
    )
    try:
        tf.config.threading.set_intra_op_parallelism_threads(THREADS)
        tf.config.threading.set_inter_op_parallelism_threads(inter_op_threads())
    except RuntimeError:
        if intra != THREADS:
            raise UsageError(
                f"TensorFlow started with {intra} intra-op threads (0: one per core) before the trainer "
                f"could set {THREADS}: runs train on one intra-op thread so that their bits do not depend "
                "on where they train. Set TF_NUM_INTRAOP_THREADS=1 before importing TensorFlow"
            ) from None


@dataclasses.dataclass(frozen=True)
class AppliedEpoch:
    """What one epoch of the engine did, read back in the graph (the ``EpochRecord`` fields it fills)."""

    train_loss: float
    steps: int
    applied_lr_min: float
    applied_lr_max: float
    applied_momentum: float
    applied_batch_min: int
    applied_batch_max: int
    applied_examples: int
    gradient_sq: float
    gradient_trace: float
    gradient_sq_se: float
    noise_estimates: int


class Engine:
    """A model, its optimizer and the traced epoch and evaluation functions."""

    eval_batch = EVAL_BATCH  # examples per evaluation call

    def __init__(
        self,
        model: keras.Model,
        optimizer: keras.optimizers.Optimizer,
        micro_batch: int | None = None,
        strategy: tf.distribute.Strategy | None = None,
        noise: bool = True,
        noise_every: int = 1,
    ):
        """``micro_batch``: chunk size for large batches (model.micro_batch_size), None: never split (plain
        BN). ``strategy``: the one model and optimizer were created under (their ``strategy.scope()``); None:
        the default, one device. ``noise``: estimate the gradient noise scale (each chunk in two parts); False
        computes each chunk in one piece (what the estimate costs: benchmarks/test_engine_speed.py).
        ``noise_every``: estimate it on the first update of every ``noise_every`` (RunConfig.noise_every)."""
        check_noise_every(noise_every)
        self.model, self.optimizer = model, optimizer
        self.micro_batch = micro_batch
        self.noise, self.noise_every = noise, noise_every
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
        image = tf.TensorSpec([None, *model.input_shape[1:]], tf.float32)
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
        """Mean train loss; the learning rate held at its start and end; [examples per update min, max,
        examples in all]; the noise sums [|G|^2, tr(Sigma), |G|^2 squared, estimates]."""
        n = tf.shape(x)[0]
        order = tf.argsort(tf.random.stateless_uniform([n], seed=seed))
        steps = (n + batch_size - 1) // batch_size
        lr_start = tf.cast(self.optimizer.learning_rate, tf.float32)  # as the updates below read it
        totals = (tf.constant(0.0), tf.zeros([4]), n, tf.constant(0), tf.constant(0))

        def batch_of(i):
            return order[i * batch_size : tf.minimum((i + 1) * batch_size, n)]

        k = self.noise_every
        if k == 1:  # the suite's runs: no inner loop, whose overhead per update a B-100 epoch would feel
            for i in tf.range(steps):
                totals = self._update(x, y, batch_of(i), totals, measure=True)
        else:  # in groups of k updates: the first measured, the rest in a loop without the estimate's ops
            for g in tf.range((steps + k - 1) // k):
                totals = self._update(x, y, batch_of(g * k), totals, measure=True)
                for i in tf.range(g * k + 1, tf.minimum((g + 1) * k, steps)):
                    totals = self._update(x, y, batch_of(i), totals, measure=False)
        loss_sum, noise, batch_min, batch_max, examples = totals
        lr_end = tf.cast(self.optimizer.learning_rate, tf.float32)
        return (
            loss_sum / tf.cast(tf.maximum(n, 1), tf.float32),
            tf.stack([lr_start, lr_end]),
            tf.stack([batch_min, batch_max, examples]),
            noise,
        )

    def _update(self, x, y, idx, totals, measure: bool):
        """One update on the examples ``idx``, added to the epoch's totals (loss sum, noise sums, examples per
        update min and max, examples in all). ``measure``: with the noise estimate."""
        loss_sum, noise, batch_min, batch_max, examples = totals
        loss, step_noise = self.strategy.run(functools.partial(self._step, measure=measure), (x, y, idx))
        loss_sum += self.strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None)
        noise += self.strategy.reduce(tf.distribute.ReduceOp.SUM, step_noise, axis=None)
        b = tf.shape(idx)[0]
        return loss_sum, noise, tf.minimum(batch_min, b), tf.maximum(batch_max, b), examples + b

    def _step(self, x, y, idx, measure: bool = True):
        """One parameter update on the examples ``idx`` (per replica: its slice of them); returns the summed
        loss over this replica's examples and its noise sums (zeros unless ``measure``)."""
        if self.micro_batch is None:
            return self._plain_step(x, y, idx)
        total = tf.cast(tf.shape(idx)[0], tf.float32)  # the global batch, whose mean loss every replica takes
        idx = self._replica_slice(idx)
        grads, loss_sum, statistics, noise = self._chunked_gradient(x, y, idx, 1.0 / total, measure)
        self._apply_statistics(statistics)
        self.optimizer.apply_gradients(zip(grads, self.variables, strict=True))
        return loss_sum, noise

    def _apply_statistics(self, statistics) -> None:
        if self.norm is not None:  # this replica's; the variables average them over replicas
            self.norm.update_moving_statistics(*statistics)

    def _plain_step(self, x, y, idx):
        """Plain batch norm: the whole batch in one piece, on one replica (__init__), no noise estimate."""
        with tf.GradientTape() as tape:
            z = logits(self.model, tf.gather(x, idx), training=True)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(tf.gather(y, idx), z))
        self.optimizer.apply_gradients(zip(tape.gradient(loss, self.variables), self.variables, strict=True))
        return loss * tf.cast(tf.shape(idx)[0], tf.float32), tf.zeros([4])

    def _replica_slice(self, idx):
        """This replica's contiguous slice of whole virtual batches (distribute.check_split)."""
        if self.replicas == 1:
            return idx
        share = tf.shape(idx)[0] // self.replicas
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        return idx[replica * share : (replica + 1) * share]

    def _chunked_gradient(self, x, y, idx, scale, measure: bool = True):
        """The gradient of ``scale * sum(loss)`` over ``idx``, in chunks of at most ``micro_batch`` examples
        whose gradients and size-weighted ghost-BN statistics are summed; the loss sum; the statistics (mean,
        variance); and the noise sums over chunks, each chunk's gradient coming in two parts
        (model.split_gradients) that give one estimate (noise_scale.step_estimate) where ``measure``."""
        b = tf.shape(idx)[0]
        chunk = tf.minimum(b, self.micro_batch)
        grads = [tf.zeros_like(v) for v in self.variables]
        mean = variance = tf.zeros_like(self.norm.moving_mean) if self.norm is not None else tf.zeros([])
        loss_sum, noise = tf.constant(0.0), tf.zeros([4])
        for j in tf.range((b + chunk - 1) // chunk):
            part = idx[j * chunk : tf.minimum((j + 1) * chunk, b)]
            chunk_grads, part_loss, statistics, chunk_noise = self._chunk_gradient(x, y, part, scale, measure)
            grads = [g + d for g, d in zip(grads, chunk_grads, strict=True)]
            noise += chunk_noise
            if statistics is not None:  # size-weighted, as the layer's rule over virtual batches
                weight = statistics[2] / tf.cast(b, tf.float32)
                mean, variance = mean + statistics[0] * weight, variance + statistics[1] * weight
            loss_sum += part_loss
        return grads, loss_sum, (mean, variance), noise

    def _chunk_gradient(self, x, y, part, scale, measure: bool = True):
        """One chunk: its gradient, loss sum, ghost-BN statistics and noise estimate [|G|^2, tr(Sigma), |G|^2
        squared, 1] from its two parts (zeros without ``noise`` or ``measure``: the chunk in one piece,
        through the tape)."""
        if not (self.noise and measure):
            with tf.GradientTape() as tape:
                z, statistics = forward(self.model, tf.gather(x, part), training=True)
                part_loss = tf.reduce_sum(
                    tf.nn.sparse_softmax_cross_entropy_with_logits(tf.gather(y, part), z)
                )
                scaled = part_loss * scale
            return tape.gradient(scaled, self.variables), part_loss, statistics, tf.zeros([4])
        parts, sizes, part_loss, statistics = split_gradients(
            self.model, tf.gather(x, part), tf.gather(y, part), scale
        )
        chunk_grads = [tf.reduce_sum(p, axis=0) for p in parts]
        return chunk_grads, part_loss, statistics, noise_sums(chunk_grads, parts, sizes, scale)

    def _evaluate_fn(self, x, y):
        z = logits(self.model, x, training=False)
        loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(y, z))
        correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(z, axis=1, output_type=tf.int32), y), tf.float32))
        return loss, correct

    def warm_up(self, x, y) -> None:
        """Trace and instantiate both functions on empty input, so no epoch's timing includes it."""
        self._epoch(x[:0], y[:0], tf.constant(1), tf.constant([0, 0]))
        self._evaluate(x[:0], y[:0])

    def train_epoch(self, x, y, learning_rate: float, batch_size: int, seed: tuple[int, int]) -> AppliedEpoch:
        """Train one epoch; what it applied, read back."""
        self.optimizer.learning_rate.assign(learning_rate)
        before = int(self.optimizer.iterations.numpy())
        loss, lr, batch, noise = self._epoch(
            x, y, tf.constant(batch_size, tf.int32), tf.constant(seed, tf.int32)
        )
        (lr_start, lr_end), batch = lr.numpy().tolist(), batch.numpy().tolist()
        g_sum, t_sum, gg_sum, count = noise.numpy().tolist()
        scale = epoch_noise(g_sum, t_sum, gg_sum, int(count))
        return AppliedEpoch(
            train_loss=float(loss),
            steps=int(self.optimizer.iterations.numpy()) - before,
            applied_lr_min=min(lr_start, lr_end),
            applied_lr_max=max(lr_start, lr_end),
            # baked into the traced update; Adam's beta_1 is a moving average, not the m of g
            applied_momentum=float(getattr(self.optimizer, "momentum", 0.0)),
            applied_batch_min=batch[0],
            applied_batch_max=batch[1],
            applied_examples=batch[2],
            gradient_sq=scale.gradient_sq,
            gradient_trace=scale.trace,
            gradient_sq_se=scale.gradient_sq_se,
            noise_estimates=int(count),
        )

    def evaluate(self, x, y) -> tuple[float, float]:
        """(mean loss, accuracy) in inference mode."""
        loss_sum, correct = 0.0, 0.0
        for start in range(0, int(x.shape[0]), self.eval_batch):
            l_, c_ = self._evaluate(x[start : start + self.eval_batch], y[start : start + self.eval_batch])
            loss_sum, correct = loss_sum + float(l_), correct + float(c_)
        n = max(int(x.shape[0]), 1)
        return loss_sum / n, correct / n


def noise_sums(chunk_grads, parts, sizes, scale):
    """A chunk's noise sums [|G|^2, tr(Sigma), |G|^2 squared, 1] from its gradient and its two parts'
    (stacked on a first axis of 2) of ``sizes`` examples (noise_scale.step_estimate)."""
    estimate = step_estimate(
        squared_norm(chunk_grads),
        tf.reduce_sum(squared_norm(parts, axis=0)),
        tf.reduce_sum(tf.square(sizes)),
        tf.reduce_sum(sizes),
        scale,
    )
    return tf.stack([estimate[0], estimate[1], estimate[0] * estimate[0], estimate[2]])


class GenericEngine(Engine):
    """Any Keras 3 classifier (reproduction/classifier.py), through the model's own call. Each chunk of whole
    coupling units is computed in two parts (the first half of its units and the rest), one forward and
    backward pass each, over half the examples each: the chunk's gradient is their sum, and the pair is the
    noise estimate's. Ghost layers' statistics are combined over the parts and chunks and applied once per
    update, as one call over the batch would. A model with plain batch norm (no unit) trains each update in
    one piece, unmeasured. ``kind``: 'logits' or 'probabilities' (classifier.output_kind)."""

    eval_batch = 1000  # inference memory for larger models

    def __init__(
        self, model, optimizer, kind: str, strategy=None, noise: bool = True, chunk_target=500, noise_every=1
    ):
        self.kind = kind
        self.unit, self.noise_note = coupling_unit(model)
        self.ghost = ghost_layers(model)
        micro = None if self.unit is None else max(1, chunk_target // self.unit) * self.unit
        noise = noise and bool(micro)
        super().__init__(model, optimizer, micro, strategy, noise=noise, noise_every=noise_every)
        self.norm = None  # the report CNN's layer name means nothing here

    def _apply_statistics(self, statistics) -> None:
        for layer, (mean, variance) in zip(self.ghost, statistics, strict=True):
            layer.update_moving_statistics(mean, variance)

    def _plain_step(self, x, y, idx):
        b = tf.cast(tf.shape(idx)[0], tf.float32)
        with tf.GradientTape() as tape:
            outputs = self.model(tf.gather(x, idx), training=True)
            loss_sum = cross_entropy_sum(tf.gather(y, idx), outputs, self.kind)
            loss = loss_sum / b + regularization(self.model)
        grads = tape.gradient(loss, self.variables)
        self.optimizer.apply_gradients(zip(grads, self.variables, strict=True))
        return loss_sum, tf.zeros([4])

    def _chunked_gradient(self, x, y, idx, scale, measure: bool = True):
        """As ``Engine._chunked_gradient``, the statistics one (mean, variance) per ghost layer."""
        b = tf.shape(idx)[0]
        chunk = tf.minimum(b, self.micro_batch)
        grads = [tf.zeros_like(v) for v in self.variables]
        sums = [(tf.zeros_like(g.moving_mean), tf.zeros_like(g.moving_mean)) for g in self.ghost]
        loss_sum, noise = tf.constant(0.0), tf.zeros([4])
        for j in tf.range((b + chunk - 1) // chunk):
            part = idx[j * chunk : tf.minimum((j + 1) * chunk, b)]
            chunk_grads, part_loss, weighted, chunk_noise = self._chunk_gradient(x, y, part, scale, measure)
            grads = [g + d for g, d in zip(grads, chunk_grads, strict=True)]
            sums = [(m + dm, v + dv) for (m, v), (dm, dv) in zip(sums, weighted, strict=True)]
            loss_sum, noise = loss_sum + part_loss, noise + chunk_noise
        n = tf.cast(tf.maximum(b, 1), tf.float32)
        return grads, loss_sum, [(m / n, v / n) for m, v in sums], noise

    def _piece(self, x, y, scale):
        return piece_gradient(self.model, self.variables, self.ghost, x, y, self.kind, scale)

    def _chunk_gradient(self, x, y, part, scale, measure: bool = True):
        xs, ys = tf.gather(x, part), tf.gather(y, part)
        if not (self.noise and measure):
            return self._one_piece(xs, ys, scale)
        return tf.cond(  # a chunk of one unit has no second part (and some kernels mishandle an empty batch)
            tf.shape(part)[0] > self.unit,
            lambda: self._two_parts(xs, ys, scale),
            lambda: self._one_piece(xs, ys, scale),
        )

    def _one_piece(self, xs, ys, scale):
        grads, loss_sum, weighted = self._piece(xs, ys, scale)
        return grads, loss_sum, weighted, tf.zeros([4])

    def _two_parts(self, xs, ys, scale):
        n = tf.shape(xs)[0]
        split = two_parts(n, self.unit)
        g1, l1, w1 = self._piece(xs[:split], ys[:split], scale)
        g2, l2, w2 = self._piece(xs[split:], ys[split:], scale)
        grads = [a + b for a, b in zip(g1, g2, strict=True)]
        parts = [tf.stack([a, b]) for a, b in zip(g1, g2, strict=True)]
        weighted = [(m1 + m2, v1 + v2) for (m1, v1), (m2, v2) in zip(w1, w2, strict=True)]
        return grads, l1 + l2, weighted, noise_sums(grads, parts, tf.stack([split, n - split]), scale)

    def warm_up(self, x, y) -> None:
        """As ``Engine.warm_up``, but the evaluation on one example: some Keras layers' kernels mishandle an
        empty batch (a 'same' convolution returned its input's shape on oneDNN)."""
        self._epoch(x[:0], y[:0], tf.constant(1), tf.constant([0, 0]))
        self._evaluate(x[:1], y[:1])

    def _evaluate_fn(self, x, y):
        outputs = self.model(x, training=False)
        loss = cross_entropy_sum(y, outputs, self.kind)
        predicted = tf.argmax(outputs, axis=1, output_type=tf.int32)
        return loss, tf.reduce_sum(tf.cast(tf.equal(predicted, y), tf.float32))


EpochCallback = Callable[[EpochRecord], None]


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """A run's state after its first epochs: their records, the model's variables (weights, moving
    statistics, any seed generator's state) and the optimizer's (iterations, rate, slots). Runs that begin
    alike start from it (reproduction/sharing.py); restored by assignment, it continues as if never
    stopped."""

    config: RunConfig  # a run whose first len(records) epochs these are
    records: tuple[EpochRecord, ...]
    model: tuple[np.ndarray, ...]  # model.variables, in order
    optimizer: tuple[np.ndarray, ...]


class Trainer:
    """Trains runs on one dataset, one after another, reusing what does not depend on the run: the data as
    tensors, and one traced ``Engine`` per (model options, optimizer, momentum). A reused engine starts each
    run from the variables a freshly built model would have (weights and any random state, from the same
    seed) and a zeroed optimizer state (iterations, momentum/velocity slots), so its result is bit-identical
    to a fresh engine's (tests/test_training.py, tests/test_sharing.py); what it saves is each run's trace
    and instantiation of the epoch function."""

    def __init__(
        self,
        data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
        strategy: tf.distribute.Strategy | None = None,
    ):
        """``strategy``: where each run trains (reproduction/distribute.py); None: the default, one device."""
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

    def _engine(self, config: RunConfig, momentum: float | None, initial: bool = True) -> Engine:
        """The engine for ``config``, built and traced once per key; a reused one reset to the run's initial
        state unless ``initial`` is False (the caller assigns every variable from a snapshot)."""
        key = self._key(config, momentum)
        keras.utils.set_random_seed(config.seed)
        engine = self._engines.get(key)
        if engine is None:
            with self.strategy.scope():  # the model's and optimizer's variables, one copy per replica
                model = initial_model(config)
                optimizer = get_optimizer(config.optimizer).build(config.learning_rate, momentum=momentum)
            engine = self._engines[key] = self._new_engine(config, model, optimizer)
            engine.warm_up(*self._tensors[:2])
        elif initial:
            # the run's weights and any random state (a Dropout's seed generator), from its seed alone
            _assign(engine.model.variables, [v.numpy() for v in initial_model(config).variables])
            for v in engine.optimizer.variables:  # iterations, learning rate (assigned per epoch), slots
                v.assign(tf.zeros_like(v))
        return engine

    @staticmethod
    def _key(config: RunConfig, momentum: float | None) -> tuple:
        return (config.workload, config.model, get_optimizer(config.optimizer), momentum, config.noise_every)

    def engine(self, config: RunConfig) -> Engine:
        """The traced engine that trains ``config``, at the run's initial weights (benchmarks time it)."""
        return self._engine(config, config.build_schedule().momentum)

    def _new_engine(self, config: RunConfig, model, optimizer) -> Engine:
        if get_workload(config.workload).build_model is None:
            micro_batch = micro_batch_size(config.model)
            return Engine(model, optimizer, micro_batch, self.strategy, noise_every=config.noise_every)
        where = f"workload {config.workload!r}: build_model({config.seed})"
        data = (self.x_train, self.y_train, self.x_test, self.y_test)
        kind = check_classifier(model, n_classes(data), tuple(self.x_train.shape[1:]), where)
        return GenericEngine(model, optimizer, kind, strategy=self.strategy, noise_every=config.noise_every)

    def train_timed(
        self, block: Sequence[RunConfig], on_epoch: EpochCallback | None = None
    ) -> list[RunResult]:
        """A timed block's runs (the schedules of one optimizer and seed), their epochs interleaved: round e
        trains epoch e of each run in the block's order, each run's state kept in a ``Snapshot`` between
        its epochs. A drift of the host's speed (other virtual machines, the clock) then falls on every
        schedule of the block alike, not on whichever ran during it; the results are bit-identical to
        ``train``'s (tests/test_sharing.py). Each run's metadata has the CPU time other processes used while
        its own epochs trained (``host_load``): the record a wall-clock claim needs to read its seconds
        (reproduction/hostload.py)."""
        states: dict[RunConfig, Snapshot] = {}
        loads: dict[RunConfig, list] = {c: [] for c in block}
        for epoch in range(max(c.build_schedule().epochs for c in block)):
            for c in block:
                if epoch < c.build_schedule().epochs:
                    train = functools.partial(self.train_prefix, c, epoch + 1, states.get(c))
                    states[c], load = measured(train)
                    loads[c].append(load)
                    if on_epoch is not None:
                        on_epoch(states[c].records[-1])
        results = []
        for c in block:
            engine = self._engines[self._key(c, c.build_schedule().momentum)]
            result = RunResult(c, states[c].records, self._metadata(c, engine))
            result.metadata.update(host_load=combined(loads[c]), timed_block=[b.key() for b in block])
            results.append(result)
        return results

    def _n_train(self, config: RunConfig) -> int:
        n_train = len(self.x_train)
        if config.train_examples is not None:
            if config.train_examples > n_train:
                raise UsageError(f"train_examples={config.train_examples}: only {n_train} examples available")
            n_train = config.train_examples
        return n_train

    def _training_set(self, config: RunConfig):
        x, y = self._tensors[:2]
        n_train = self._n_train(config)
        return x[:n_train], y[:n_train]

    def _check(self, config: RunConfig, n_train: int) -> None:
        replicas, strategy = self.strategy.num_replicas_in_sync, describe(self.strategy)["strategy"]
        if (config.strategy, config.replicas) != (strategy, replicas):
            raise UsageError(
                f"strategy={config.strategy!r}, replicas={config.replicas}: the trainer's strategy is "
                f"{strategy!r} with {replicas} replicas"
            )
        config.check_fits(n_train)  # the commands' check, on the data as loaded

    def _check_generic(self, config: RunConfig, engine: GenericEngine, n_train: int) -> None:
        """A user's model: every batch whole coupling units, on one device or split over the replicas."""
        batches = [p.batch_size for p in config.build_schedule().phases]
        check_batches(batches, engine.unit, f"workload {config.workload!r}")
        normalization = "batch" if engine.unit is None else "ghost"
        check_split(batches, n_train, self.strategy.num_replicas_in_sync, normalization, engine.unit or 1)

    def train(
        self, config: RunConfig, on_epoch: EpochCallback | None = None, start: Snapshot | None = None
    ) -> RunResult:
        """Train ``config``; from ``start`` (a snapshot of its first epochs, trained for runs that begin
        alike: reproduction/sharing.py), the same result, bit for bit, without training those epochs again."""
        engine, records = self._begin(config, start)
        for record in self._epochs(config, engine, len(records), None):
            records.append(record)
            if on_epoch is not None:
                on_epoch(record)
        meta = self._metadata(config, engine)
        if start is not None:
            meta["shared_epochs"] = len(start.records)
        return RunResult(config, tuple(records), meta)

    def _metadata(self, config: RunConfig, engine: Engine) -> dict:
        meta = {
            **metadata(),
            **describe(self.strategy),
            "trace_count": engine.trace_count,
            "n_train": self._n_train(config),
            "n_test": len(self.x_test),
        }
        if isinstance(engine, GenericEngine):  # a user's model: what it was, and whether B_simple is measured
            meta.update(
                model=engine.model.name, parameters=engine.model.count_params(), noise_scale=engine.noise_note
            )
        return meta

    def train_prefix(self, config: RunConfig, epochs: int, start: Snapshot | None = None) -> Snapshot:
        """The first ``epochs`` epochs of ``config`` (from ``start``, a shorter prefix of them): the state
        that the runs sharing them start from."""
        engine, records = self._begin(config, start)
        records += self._epochs(config, engine, len(records), epochs)
        return Snapshot(
            config,
            tuple(records),
            tuple(v.numpy() for v in engine.model.variables),
            tuple(v.numpy() for v in engine.optimizer.variables),
        )

    def _begin(self, config: RunConfig, start: Snapshot | None) -> tuple[Engine, list[EpochRecord]]:
        """The run's engine, checked, at its initial weights or at ``start``'s; the records so far."""
        n_train = self._n_train(config)
        self._check(config, n_train)
        engine = self._engine(config, config.build_schedule().momentum, initial=start is None)
        if isinstance(engine, GenericEngine):
            self._check_generic(config, engine, n_train)
        if start is None:
            return engine, []
        if not shares_start(config, start.config, len(start.records)):
            raise UsageError(
                f"start: a snapshot of {start.config.key()}'s first {len(start.records)} epochs is not the "
                f"start of {config.key()} (another lineage, or other rates or batches)"
            )
        _assign(engine.model.variables, start.model)
        _assign(engine.optimizer.variables, start.optimizer)
        return engine, list(start.records)

    def _epochs(self, config: RunConfig, engine: Engine, first: int, last: int | None):
        """Train epochs ``first``..``last`` (None: to the end), one record each, as each ends."""
        x, y = self._training_set(config)
        for epoch, phase in enumerate(config.build_schedule().per_epoch()[:last]):
            if epoch < first:
                continue
            start = time.perf_counter()
            applied = engine.train_epoch(x, y, phase.learning_rate, phase.batch_size, (config.seed, epoch))
            train_seconds = time.perf_counter() - start
            start = time.perf_counter()
            test_loss, test_accuracy = engine.evaluate(*self._tensors[2:])
            yield EpochRecord(
                epoch=epoch,
                learning_rate=phase.learning_rate,
                batch_size=phase.batch_size,
                train_seconds=train_seconds,
                eval_seconds=time.perf_counter() - start,
                test_loss=test_loss,
                test_accuracy=test_accuracy,
                momentum=config.momentum,
                b_simple=NoiseScale(applied.gradient_sq, applied.gradient_trace).b_simple,
                **dataclasses.asdict(applied),
            )


def _assign(variables, values) -> None:
    for variable, value in zip(variables, values, strict=True):
        variable.assign(value)


def initial_model(config: RunConfig) -> keras.Model:
    """The run's model with its initial weights: the report's CNN, or the workload's ``build_model``."""
    build = get_workload(config.workload).build_model
    if build is None:
        return build_cnn(config.model, seed=config.seed)
    return call_user(build, f"workload {config.workload!r}: build_model({config.seed})", config.seed)


def n_classes(arrays) -> int:
    """Classes of (x_train, y_train, x_test, y_test): the largest label, plus one."""
    return int(max(np.max(arrays[1]), np.max(arrays[3]))) + 1


def check_models(configs, arrays) -> None:
    """Each user model among ``configs`` built once (seed 0) and checked against the data and every batch
    its runs use: a model the engine cannot train is refused here, in one line, before any run trains."""
    batches: dict[str, set[int]] = {}
    for c in configs:
        if get_workload(c.workload).build_model is not None:
            batches.setdefault(c.workload, set()).update(p.batch_size for p in c.build_schedule().phases)
    for name, sizes in batches.items():
        model = call_user(get_workload(name).build_model, f"workload {name!r}: build_model(0)", 0)
        check_classifier(
            model, n_classes(arrays), tuple(arrays[0].shape[1:]), f"workload {name!r}: build_model(0)"
        )
        check_batches(sorted(sizes), coupling_unit(model)[0], f"workload {name!r}")


def train(
    config: RunConfig,
    data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    on_epoch: EpochCallback | None = None,
    strategy: tf.distribute.Strategy | None = None,
) -> RunResult:
    """Train one run on preprocessed (x_train, y_train, x_test, y_test); ``Trainer`` for many."""
    return Trainer(data, strategy).train(config, on_epoch)

"""Test helpers (on the test path through pytest's ``pythonpath``; never imported by the package): hypothesis
strategies for schedule arguments, and a small synthetic stand-in for MNIST."""

from __future__ import annotations

import os

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st


@st.composite
def schedule_args(draw, max_factor: int = 10, min_factor: int = 1):
    """(factory kwargs, N, momentum) with every batch size of every main schedule fitting in N."""
    kwargs = {
        "base_lr": draw(st.floats(1e-4, 10.0, allow_nan=False, allow_infinity=False)),
        "base_batch": draw(st.integers(1, 512)),
        "factor": draw(st.integers(min_factor, max_factor)),
        "steps": draw(st.integers(1, 5)),
        "epochs_per_step": draw(st.integers(1, 4)),
    }
    largest = kwargs["base_batch"] * kwargs["factor"] ** (kwargs["steps"] - 1)
    assume(largest <= 10_000_000)
    n = draw(st.integers(largest, max(largest, 2_000_000)))
    momentum = draw(st.sampled_from([0.0, 0.5, 0.9, 0.99]))
    return kwargs, n, momentum


def synthetic_digits(n_train: int = 600, n_test: int = 200, seed: int = 0):
    """(x_train, y_train, x_test, y_test) preprocessed like MNIST: each label is a bright 4x4 block at a
    label-dependent place on a noisy 28x28 image, so the CNN can learn it in an epoch or two."""
    rng = np.random.default_rng(seed)

    def make(n):
        y = rng.integers(0, 10, size=n).astype(np.int32)
        x = rng.normal(0.0, 0.1, size=(n, 28, 28, 1)).astype(np.float32)
        rows, cols = 2 + 6 * (y // 4), 2 + 6 * (y % 4)
        for i in range(n):
            x[i, rows[i] : rows[i] + 4, cols[i] : cols[i] + 4, 0] += 1.0
        return x, y

    return (*make(n_train), *make(n_test))


def train_single_threaded(config: dict, data) -> dict:
    """A run trained in this process with one TensorFlow thread, as a dict (a spawned reference process for
    tests and benchmarks: it must be importable by name, so it lives here rather than in a test module)."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from reproduction.config import RunConfig
    from reproduction.training import Trainer

    return Trainer(data).train(RunConfig.from_dict(config)).to_dict()


def noise_cost_single_threaded(schedule: str, everies: tuple[int, ...], rounds: int) -> dict:
    """Run in a fresh process, as a worker trains (one intra- and one inter-op thread): whole MNIST runs of
    ``schedule`` (SGD, its batches and rates) by engines with the noise estimate off ('none') and on one
    update in k for each k of ``everies`` ('every{k}'), runs alternating: each run's training seconds."""
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"  # what configure_threads sets
    import time

    import keras
    import tensorflow as tf

    from reproduction.config import ModelOptions, RunConfig
    from reproduction.data import load_mnist
    from reproduction.model import build_cnn, micro_batch_size
    from reproduction.training import Engine, configure_determinism

    configure_determinism()
    x, y = (tf.constant(a) for a in load_mnist().preprocessed()[:2])
    micro = micro_batch_size(ModelOptions())
    engines = {"none": Engine(build_cnn(seed=0), keras.optimizers.SGD(0.05), micro, noise=False)}
    for k in everies:
        engines[f"every{k}"] = Engine(build_cnn(seed=0), keras.optimizers.SGD(0.05), micro, noise_every=k)
    epochs = [
        (p.learning_rate, p.batch_size) for p in RunConfig("sgd", schedule).build_schedule().per_epoch()
    ]
    for engine in engines.values():  # traced, and one epoch at each batch: caches and allocator
        engine.warm_up(x, y)
        for lr, batch in dict.fromkeys(epochs):
            engine.train_epoch(x, y, lr, batch, (0, 99))
    seconds: dict[str, list[float]] = {name: [] for name in engines}
    for r in range(rounds):
        for name, engine in engines.items():
            start = time.perf_counter()
            for e, (lr, batch) in enumerate(epochs):
                engine.train_epoch(x, y, lr, batch, (r, e))
            seconds[name].append(time.perf_counter() - start)
    return seconds


def chunked_epochs(inter_op_threads: int) -> dict:
    """Run in a fresh process: two epochs of the engine (Adam, noise estimate on) whose batches of 80 come in
    chunks of 30 (so chunks and parts can run side by side), on ``inter_op_threads`` inter-op threads and
    one intra-op thread; the threads TensorFlow ran, the epochs' losses and noise sums, and every weight's
    and optimizer slot's bytes."""
    os.environ["TF_NUM_INTEROP_THREADS"] = str(inter_op_threads)  # what configure_threads sets
    import keras
    import tensorflow as tf

    from reproduction.model import build_cnn
    from reproduction.training import Engine, configure_determinism

    configure_determinism()
    x, y = synthetic_digits(n_train=240)[:2]
    engine = Engine(build_cnn(seed=3), keras.optimizers.Adam(0.01), micro_batch=30)
    epochs = [engine.train_epoch(tf.constant(x), tf.constant(y), 0.01, 80, (0, e)) for e in range(2)]
    return {
        "threads": (
            tf.config.threading.get_intra_op_parallelism_threads(),
            tf.config.threading.get_inter_op_parallelism_threads(),
        ),
        "epochs": [(a.train_loss, a.gradient_sq, a.gradient_trace, a.steps) for a in epochs],
        "state": [v.numpy().tobytes() for v in engine.model.weights + engine.optimizer.variables],
    }


def mirrored_against_one_device(
    replicas: int, train_examples: int, optimizers: list[str], runs_dir: str
) -> dict:
    """Run in a fresh process (logical CPU devices must be configured before TensorFlow starts): each
    optimizer's increase schedule through the engine on one device and on ``replicas`` logical CPU devices
    (MirroredStrategy); their largest differences, the spread between the replicas' copies of every variable,
    what the trainer says to a batch that does not split and to a config with the wrong replicas, and the
    exit code of ``reproduction run --strategy mirrored --replicas N`` into ``runs_dir``."""
    from reproduction.distribute import make_strategy

    strategy = make_strategy("mirrored", replicas=replicas)
    import numpy as np
    import tensorflow as tf

    from reproduction import data
    from reproduction.config import RunConfig
    from reproduction.model import build_cnn, micro_batch_size
    from reproduction.optimizers import get_optimizer
    from reproduction.training import Engine, Trainer, configure_determinism

    configure_determinism()
    arrays = data.load_mnist().preprocessed()
    x, y = tf.constant(arrays[0][:train_examples]), tf.constant(arrays[1][:train_examples])
    out: dict = {}
    for name in optimizers:
        runs = {}
        for label, strat in (("one", tf.distribute.get_strategy()), ("mirrored", strategy)):
            config = RunConfig(optimizer=name, schedule="increase", seed=0, train_examples=train_examples)
            with strat.scope():
                model = build_cnn(config.model, seed=config.seed)
                optimizer = get_optimizer(name).build(momentum=config.build_schedule().momentum)
            engine = Engine(model, optimizer, micro_batch=micro_batch_size(config.model), strategy=strat)
            losses = [
                engine.train_epoch(x, y, p.learning_rate, p.batch_size, (config.seed, e)).train_loss
                for e, p in enumerate(config.build_schedule().per_epoch())
            ]
            spread = max(
                float(np.max(np.abs(c.numpy() - strat.experimental_local_results(v.value)[0].numpy())))
                for v in model.weights
                for c in strat.experimental_local_results(v.value)
            )
            runs[label] = (losses, {v.path: v.numpy() for v in model.weights}, spread)
        (one_losses, one_weights, _), (losses, weights, spread) = runs["one"], runs["mirrored"]
        out[name] = {
            "loss": max(abs(a - b) for a, b in zip(one_losses, losses, strict=True)),
            "weights": {k: float(np.max(np.abs(one_weights[k] - weights[k]))) for k in one_weights},
            "replica_spread": spread,
        }
    refusals = {}
    trainer = Trainer(arrays, strategy=strategy)
    for label, config in (
        (
            "bad_split",
            RunConfig(base_batch=110, train_examples=train_examples, strategy="mirrored", replicas=replicas),
        ),
        ("wrong_replicas", RunConfig(train_examples=train_examples)),
    ):
        try:
            trainer.train(config)
            refusals[label] = None
        except ValueError as exc:
            refusals[label] = str(exc)
    out["refusals"] = refusals
    out["generic"] = _generic_mirrored(strategy)
    from reproduction.cli import main

    out["cli"] = main(
        [
            "run",
            "--strategy",
            "mirrored",
            "--replicas",
            str(replicas),
            "--train-examples",
            str(train_examples),
            "--runs-dir",
            runs_dir,
            "--quiet",
        ]
    )
    return out


def _generic_mirrored(strategy) -> dict:
    """A user's model (tests/my_model.py, the generic engine) on one device and over the strategy's
    replicas: the largest differences of the epochs' losses and of the final weights."""
    import dataclasses

    import numpy as np

    from reproduction.training import Trainer
    from reproduction.workloads import get_workload

    workload = get_workload("tests.my_model:workload")
    arrays = workload.source().load()
    config = workload.config("momentum", "increase", 0)
    results, weights = [], []
    for strat, replicas in ((None, 1), (strategy, strategy.num_replicas_in_sync)):
        trainer = Trainer(arrays, strategy=strat)
        name = "default" if strat is None else "mirrored"
        results.append(trainer.train(dataclasses.replace(config, strategy=name, replicas=replicas)))
        weights.append(next(iter(trainer._engines.values())).model.get_weights())
    one, many = results
    return {
        "loss": max(abs(a.train_loss - b.train_loss) for a, b in zip(one.epochs, many.epochs, strict=True)),
        "weights": max(float(np.max(np.abs(a - b))) for a, b in zip(*weights, strict=True)),
        "replicas": many.metadata["replicas"],
        "same_steps": [e.steps for e in many.epochs] == [e.steps for e in one.epochs],
    }


# ------------------------------------------------------------------------------ synthetic runs for the claims
def make_run(config, accuracy: float, loss: float, seconds=None, alone: bool = True, metadata=None):
    """A RunResult whose epochs follow ``config``'s schedule, ending at ``accuracy`` (fraction) and ``loss``
    (NaN: diverged). ``seconds``: batch size -> training seconds per epoch (default 1.0); ``alone``: record a
    host load with no other process (a timed run), else none."""
    from reproduction.results import EpochRecord, RunResult

    phases = config.build_schedule().per_epoch()
    epochs = tuple(
        EpochRecord(
            e,
            p.learning_rate,
            p.batch_size,
            -(-60_000 // p.batch_size),
            (seconds or {}).get(p.batch_size, 1.0),
            0.1,
            loss,
            loss,
            accuracy,
        )
        for e, p in enumerate(phases)
    )
    meta = dict(metadata or {})
    if alone:
        meta["host_load"] = {"other_cores": 0.0, "own_cores": 1.0, "steal_cores": 0.0}
    return RunResult(config, epochs, meta)


def plan_with_seeds(workload: str = "mnist", seeds: int = 3, profile: str = "quick"):
    from reproduction.claims import Plan
    from reproduction.workloads import get_workload

    w = get_workload(workload)
    return Plan(w, w.profile(profile, seeds))


def synthetic_runs(plan, configs, accuracy=0.975, loss=0.05, jitter=0.0005):
    """Every config at ``accuracy`` / ``loss`` plus a small seed- and schedule-dependent jitter (so paired
    differences have spread)."""
    out = {}
    for c in configs:
        j = jitter * (((c.seed * 7 + len(c.schedule) + (c.base_lr or 0) * 13) % 5) - 2)
        out[c] = make_run(c, accuracy + j / 10, loss + j)
    return out


def fake_margins(plan, margin: float = 0.005):
    """Pre-registered margins for every optimizer of the plan's workload (for tests that need no file)."""
    from reproduction.calibration import Margin

    return {o: Margin(o, margin, margin / 2, (1000, 1001)) for o in plan.workload.optimizers}

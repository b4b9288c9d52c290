"""The engine on a small synthetic data set: follows the schedule, one trace, deterministic, learns;
the config and the run store."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
from support import synthetic_digits

from reproduction.config import RunConfig
from reproduction.model import ModelOptions
from reproduction.store import RunStore
from reproduction.training import RunResult, Trainer, train

DATA = synthetic_digits()
SMALL = dict(base_batch=20, factor=2, steps=3, epochs_per_step=1)  # B 20, 40, 80 on 600 examples


@pytest.fixture(scope="module")
def increase_run():
    return train(RunConfig("sgd", "increase", seed=0, **SMALL), DATA)


def test_records_follow_the_schedule(increase_run):
    schedule = increase_run.config.build_schedule()
    assert [e.epoch for e in increase_run.epochs] == [0, 1, 2]
    assert [e.batch_size for e in increase_run.epochs] == [20, 40, 80]
    assert [e.learning_rate for e in increase_run.epochs] == [schedule.learning_rate(e) for e in range(3)]
    # steps from the optimizer's iteration counter: ceil(600 / 80) = 8 keeps the last partial batch
    assert [e.steps for e in increase_run.epochs] == [30, 15, 8] == schedule.updates_per_epoch(600)
    assert increase_run.parameter_updates == schedule.parameter_updates(600)


def test_records_read_back_what_was_applied(increase_run):
    """Observed in the graph, not copied: float32 learning rates, every example once, the partial last
    batch."""
    e = increase_run.epochs
    assert [(r.applied_batch_max, r.applied_batch_min, r.applied_examples) for r in e] == [
        (20, 20, 600),
        (40, 40, 600),
        (80, 40, 600),
    ]  # 600 = 7 x 80 + 40
    assert all(r.applied_lr_min == r.applied_lr_max == pytest.approx(r.learning_rate, rel=1e-7) for r in e)
    assert all(r.applied_momentum == r.momentum == 0.0 for r in e)


def test_one_trace_for_all_batch_sizes(increase_run):
    assert increase_run.metadata["trace_count"] == 1


def test_learns(increase_run):
    losses = [e.train_loss for e in increase_run.epochs]
    assert losses[-1] < losses[0] < math.log(10) * 1.5
    assert increase_run.final.test_accuracy > 0.5  # chance is 0.1


def test_timing_and_metadata_recorded(increase_run):
    assert all(e.train_seconds > 0 and e.eval_seconds > 0 for e in increase_run.epochs)
    for key in ("tensorflow", "keras", "cpu", "intra_op_threads", "code_version", "git_commit"):
        assert key in increase_run.metadata


def test_same_seed_is_bit_identical(increase_run):
    again = train(increase_run.config, DATA)
    for a, b in zip(increase_run.epochs, again.epochs, strict=True):
        assert (a.train_loss, a.test_loss, a.test_accuracy) == (b.train_loss, b.test_loss, b.test_accuracy)


def test_another_seed_differs(increase_run):
    other = train(RunConfig("sgd", "increase", seed=1, **SMALL), DATA)
    assert other.final.train_loss != increase_run.final.train_loss


def _outcome(result):
    return [(e.train_loss, e.test_loss, e.test_accuracy, e.steps) for e in result.epochs]


def test_reused_engines_are_bit_identical_to_fresh_ones():
    """A Trainer reuses one traced engine per (model, optimizer, momentum); each run must still start from
    its own seed's weights and a zeroed optimizer state (Adam's bias correction reads the iteration count,
    momentum its slots). Interleaved so every reuse follows a run that moved weights and state."""
    configs = [RunConfig(o, "increase", seed=k, **SMALL) for k in (0, 1) for o in ("adam", "momentum")]
    trainer = Trainer(DATA)
    reused = [trainer.train(c) for c in configs]
    assert len(trainer._engines) == 2
    assert all(r.metadata["trace_count"] == 1 for r in reused)
    for config, result in zip(configs, reused, strict=True):
        assert _outcome(result) == _outcome(train(config, DATA)), config.key()


def test_momentum_override_reaches_the_optimizer():
    result = train(
        RunConfig(
            "momentum", "increase-momentum", seed=0, base_batch=4, factor=2, steps=2, epochs_per_step=1
        ),
        DATA,
    )
    assert [e.batch_size for e in result.epochs] == [20, 40]  # B x (1 - 0.9) / (1 - 0.98) = x5
    assert result.config.momentum == 0.98


def test_no_normalization_and_plain_bn_train():
    for norm in ("none", "batch"):
        r = train(
            RunConfig(
                "adam",
                "constant",
                seed=0,
                base_lr=0.01,
                base_batch=32,
                steps=1,
                epochs_per_step=1,
                model=ModelOptions(normalization=norm),
            ),
            DATA,
        )
        assert r.final.test_accuracy > 0.3


def test_train_examples_subset_and_too_large_batch():
    r = train(
        RunConfig("sgd", "constant", seed=0, base_batch=50, steps=1, epochs_per_step=1, train_examples=100),
        DATA,
    )
    assert r.epochs[0].steps == 2 and r.metadata["n_train"] == 100
    with pytest.raises(ValueError, match="batch size 1000 exceeds the 600 examples"):
        train(RunConfig("sgd", "constant", base_batch=1000, steps=1, epochs_per_step=1), DATA)


# ----------------------------------------------------------------------------------------------- config
@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"optimizer": "rmsprop"},
            r"optimizer='rmsprop': unknown; known optimizers are \['adam', 'momentum', ",
        ),
        ({"schedule": "cosine"}, "schedule='cosine': unknown"),
        ({"seed": -1}, "seed=-1"),
        ({"base_lr": 0.0}, "base_lr=0.0"),
        ({"base_batch": 0}, "base_batch=0"),
        ({"model": "cnn"}, "model='cnn'"),
        ({"train_examples": 0}, "train_examples=0"),
    ],
)
def test_config_validation_names_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RunConfig(**kwargs)


def test_config_json_round_trip_and_key():
    c = RunConfig("nesterov", "hybrid", seed=3, base_lr=0.01, model=ModelOptions(virtual_batch_size=5))
    again = RunConfig.from_dict(json.loads(json.dumps(c.to_dict())))
    assert again == c and hash(again) == hash(c) and again.key() == c.key()
    assert c.key().startswith("nesterov-hybrid-seed3-")
    assert RunConfig("nesterov", "hybrid", seed=4).key() != c.key()
    with pytest.raises(ValueError, match=r"unknown fields \['colour'\]"):
        RunConfig.from_dict({**c.to_dict(), "colour": "red"})


def test_same_base_rate_for_every_schedule():
    """The paper's protocol: the optimizer's base rate is shared by decay, hybrid and increase."""
    rates = {RunConfig("adam", s).build_schedule().learning_rate(0) for s in ("decay", "hybrid", "increase")}
    assert len(rates) == 1


# ----------------------------------------------------------------------------------------------- store
def test_store_round_trip_and_reuse(tmp_path, increase_run):
    store = RunStore(tmp_path)
    path = store.put(increase_run)
    assert store.get(increase_run.config) == increase_run
    data = json.loads(path.read_text())
    assert set(data["epochs"][0]) == {
        "epoch",
        "learning_rate",
        "batch_size",
        "steps",
        "train_seconds",
        "eval_seconds",
        "train_loss",
        "test_loss",
        "test_accuracy",
        "momentum",
        "applied_lr_min",
        "applied_lr_max",
        "applied_momentum",
        "applied_batch_min",
        "applied_batch_max",
        "applied_examples",
        "gradient_sq",
        "gradient_trace",
        "b_simple",
        "gradient_sq_se",
        "noise_estimates",
    }


def test_store_ignores_a_torn_file_and_retrains(tmp_path, increase_run):
    store = RunStore(tmp_path)
    store.path(increase_run.config).parent.mkdir(parents=True, exist_ok=True)
    store.path(increase_run.config).write_text('{"config": {"optimizer": "sg')  # a killed non-atomic writer
    assert store.get(increase_run.config) is None  # absent, so run_all trains it again
    store.put(increase_run)
    assert RunResult.from_dict(json.loads(store.path(c := increase_run.config).read_text())).config == c


def test_store_write_is_atomic(tmp_path, increase_run, monkeypatch):
    """A crash in the middle of a write leaves the previous file whole and no temporary behind."""
    store = RunStore(tmp_path)
    store.put(increase_run)
    before = store.path(increase_run.config).read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        store.put(increase_run)
    assert store.path(increase_run.config).read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [store.path(increase_run.config).name]


@pytest.mark.parametrize("normalization", ["ghost", "none"])
def test_micro_batches_give_the_same_update(normalization):
    """A batch computed in chunks (gradients and ghost-BN statistics combined) = the batch in one piece."""
    import keras
    import tensorflow as tf

    from reproduction.model import build_cnn
    from reproduction.training import Engine

    x, y = tf.constant(DATA[0][:240]), tf.constant(DATA[1][:240])
    engines = []
    for micro in (None, 30):
        keras.utils.set_random_seed(5)
        engine = Engine(
            build_cnn(ModelOptions(normalization=normalization)),
            keras.optimizers.SGD(0.1, momentum=0.9),
            micro_batch=micro,
        )
        applied = engine.train_epoch(x, y, 0.1, 80, (0, 0))  # 3 updates of 80 = 3 chunks of 30, 30, 20
        loss = applied.train_loss
        assert applied.steps == 3 and applied.applied_batch_max == 80 and applied.applied_examples == 240
        engines.append((engine, loss))
    (whole, loss_whole), (chunked, loss_chunked) = engines
    assert loss_chunked == pytest.approx(loss_whole, rel=1e-5)
    for a, b in zip(whole.model.weights, chunked.model.weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6, err_msg=a.name)


@pytest.mark.slow
def test_inter_op_threads_move_no_bit():
    """Runs train on one intra-op thread but one inter-op thread per core, so that a large batch's chunks
    and the noise estimate run side by side (training.configure_threads). That must not move a bit: two
    fresh processes, one inter-op thread against four, give the same losses, noise sums, weights and
    optimizer state."""
    import concurrent.futures
    import multiprocessing

    from support import chunked_epochs

    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as pool:
        one, four = (r.result() for r in [pool.submit(chunked_epochs, n) for n in (1, 4)])
    assert (one["threads"], four["threads"]) == ((1, 1), (1, 4))
    assert one["epochs"] == four["epochs"] and all(e[3] == 3 for e in one["epochs"])
    assert one["state"] == four["state"]


def test_threads_are_one_intra_op_and_one_inter_op_per_core(monkeypatch):
    """The trainer's thread counts: TF_NUM_INTEROP_THREADS where set (a worker sharing its machine), else
    one per core; the process these tests run in has TensorFlow's intra-op count at one."""
    import tensorflow as tf

    from reproduction.hostload import cores
    from reproduction.training import configure_threads, inter_op_threads

    monkeypatch.setenv("TF_NUM_INTEROP_THREADS", "1")
    assert inter_op_threads() == 1
    monkeypatch.delenv("TF_NUM_INTEROP_THREADS")
    assert inter_op_threads() == cores()
    configure_threads()  # TensorFlow has started here: accepted, as its intra-op count is one
    assert tf.config.threading.get_intra_op_parallelism_threads() in (0, 1)


def test_retuned_base_rate_changes_the_key_and_stale_runs_are_not_reused(tmp_path, increase_run, monkeypatch):
    """A run stored under the workload's old base rate must not be served after the rate is retuned."""
    import dataclasses

    from reproduction import workloads

    store = RunStore(tmp_path)
    store.put(increase_run)
    old_key = increase_run.config.key()
    mnist = workloads.get_workload("mnist")
    retuned = dataclasses.replace(mnist, base_lr={**mnist.base_lr, "sgd": mnist.base_lr["sgd"] / 2})
    monkeypatch.setitem(workloads.WORKLOADS, "mnist", retuned)
    assert increase_run.config.key() != old_key
    assert store.get(increase_run.config) is None
    # and even a file under the new key whose epochs disagree with the schedule is refused
    store.path(increase_run.config).write_text(json.dumps(increase_run.to_dict()))
    assert store.get(increase_run.config) is None

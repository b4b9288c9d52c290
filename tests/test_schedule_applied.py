"""Claim schedule-applied can fail: an engine broken in each of the four ways it checks is refuted.

Each break is what a plausible bug would do (a learning rate set once per run, a momentum override that
never reaches the optimizer, a loop that keeps the first batch size, a loader that drops the last partial
batch); the records must show it, because they are read back from the optimizer and the traced loop.
"""

from __future__ import annotations

import pytest
from support import synthetic_digits

from reproduction import claims, stats
from reproduction.config import RunConfig
from reproduction.optimizers import OptimizerSpec
from reproduction.training import Engine, Trainer

DATA = synthetic_digits()  # 600 examples: B 80 leaves a partial last batch of 40
SMALL = dict(base_batch=20, factor=2, steps=3, epochs_per_step=1)
CONFIGS = {  # each quantity changes between epochs in the config that checks it
    "learning_rate": RunConfig("sgd", "decay", 0, **SMALL),
    "momentum": RunConfig("momentum", "increase-momentum", 0, **SMALL),  # 0.98 instead of the spec's 0.9
    "batch_size": RunConfig("sgd", "increase", 0, **SMALL),
    "updates": RunConfig("sgd", "increase", 0, **SMALL),
}


def _mismatches(config):
    result = Trainer(DATA).train(config)
    verdict = claims.schedule_applied_verdict(config.optimizer, [result])
    return verdict, {kind for kind, _ in claims.schedule_mismatches(result)}


@pytest.mark.parametrize("config", sorted(set(CONFIGS.values()), key=RunConfig.key), ids=RunConfig.key)
def test_the_engine_applies_every_schedule(config):
    verdict, kinds = _mismatches(config)
    assert verdict.verdict == stats.HOLDS and not kinds, verdict.summary()


def _lr_set_once(monkeypatch):
    real = Engine.train_epoch
    first = {}

    def train_epoch(self, x, y, learning_rate, batch_size, seed):
        return real(self, x, y, first.setdefault(id(self), learning_rate), batch_size, seed)

    monkeypatch.setattr(Engine, "train_epoch", train_epoch)


def _momentum_override_ignored(monkeypatch):
    real = OptimizerSpec.build
    monkeypatch.setattr(
        OptimizerSpec, "build", lambda self, learning_rate=0.01, momentum=None: real(self, learning_rate)
    )


def _first_batch_kept(monkeypatch):
    real = Engine.train_epoch
    first = {}

    def train_epoch(self, x, y, learning_rate, batch_size, seed):
        return real(self, x, y, learning_rate, first.setdefault(id(self), batch_size), seed)

    monkeypatch.setattr(Engine, "train_epoch", train_epoch)


def _last_partial_batch_dropped(monkeypatch):
    real = Engine.train_epoch

    def train_epoch(self, x, y, learning_rate, batch_size, seed):
        whole = (int(x.shape[0]) // batch_size) * batch_size
        return real(self, x[:whole], y[:whole], learning_rate, batch_size, seed)

    monkeypatch.setattr(Engine, "train_epoch", train_epoch)


BREAKS = {
    "learning_rate": _lr_set_once,
    "momentum": _momentum_override_ignored,
    "batch_size": _first_batch_kept,
    "updates": _last_partial_batch_dropped,
}


@pytest.mark.parametrize("quantity", sorted(BREAKS))
def test_an_engine_that_ignores_it_is_refuted(quantity, monkeypatch):
    BREAKS[quantity](monkeypatch)
    verdict, kinds = _mismatches(CONFIGS[quantity])
    assert verdict.verdict == stats.REFUTED, verdict.summary()
    assert quantity in kinds and quantity in verdict.detail


def test_unobserved_records_do_not_pass():
    """A record without the applied fields (NaN, 0) is a mismatch, never a silent pass."""
    from reproduction.training import EpochRecord, RunResult

    config = RunConfig("sgd", "constant", 0, steps=1, epochs_per_step=1)
    result = RunResult(config, (EpochRecord(0, 0.1, 100, 600, 1.0, 0.1, 0.1, 0.1, 0.9),), {"n_train": 60_000})
    kinds = {kind for kind, _ in claims.schedule_mismatches(result)}
    assert kinds == {"learning_rate", "momentum", "batch_size"}

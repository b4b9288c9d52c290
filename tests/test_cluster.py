"""Worker processes for the untimed runs: single-threaded, deterministic, and a clear error for bad counts."""

from __future__ import annotations

import pytest
from support import synthetic_digits

from reproduction.cli import main
from reproduction.config import RunConfig
from reproduction.pool import check_workers, train_in_workers

SMALL = dict(base_batch=20, factor=2, steps=2, epochs_per_step=1)


@pytest.mark.slow
def test_workers_train_single_threaded_and_deterministically():
    """The same config in two workers at once: bit-identical records (op determinism holds per worker)."""
    same = RunConfig("momentum", "increase", seed=3, **SMALL)
    configs = [same, same, RunConfig("adam", "hybrid", seed=0, **SMALL)]
    results = list(train_in_workers(configs, synthetic_digits(), workers=2))
    assert sorted(r.config.key() for r in results) == sorted(c.key() for c in configs)
    assert all(r.metadata["trained_in"] == "worker" and r.metadata["intra_op_threads"] == 1 for r in results)
    twins = [r for r in results if r.config == same]
    assert [e.train_loss for e in twins[0].epochs] == [e.train_loss for e in twins[1].epochs]
    assert twins[0].final.test_accuracy > 0.3


@pytest.mark.parametrize("bad", [-1, 1.5, True, "2"])
def test_bad_worker_counts_name_the_field(bad):
    with pytest.raises(ValueError, match=r"workers=.*expected an integer >= 0"):
        check_workers(bad)


def test_cli_rejects_a_negative_worker_count(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["reproduce", "--workers", "-1"])
    assert exc.value.code == 2
    assert "--workers '-1': expected an integer >= 0" in capsys.readouterr().err


@pytest.mark.slow
def test_stopping_early_ends_the_workers_at_once():
    """What Ctrl-C does through run_all: the caller stops iterating; no worker goes on to its next run."""
    import multiprocessing
    import time

    # runs of a few seconds each, so waiting for the ones in flight would show
    configs = [RunConfig("sgd", "constant", seed=k, base_batch=20, steps=1, epochs_per_step=40) for k in range(6)]
    results = train_in_workers(configs, synthetic_digits(), workers=2)
    first = next(results)
    start = time.perf_counter()
    results.close()
    stopped_after = time.perf_counter() - start
    assert first.config in configs
    assert stopped_after < first.train_seconds / 2, (stopped_after, first.train_seconds)
    assert not [p for p in multiprocessing.active_children() if p.is_alive()]

"""The grid on Dask distributed (reproduction/cluster.py), on synthetic data and loopback addresses only: a
LocalCluster trains like a single-threaded process, a scheduler and workers started by hand share a grid
(timed blocks on the worker that holds a machine), a killed worker loses nothing, failures and bad
addresses are reported clearly, and stopping early ends the cluster."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from support import synthetic_digits, train_single_threaded

from reproduction.cli import main
from reproduction.cluster import MACHINE, RunFailed, check_workers, connect, train_on_cluster
from reproduction.config import RunConfig
from reproduction.runner import run_all, timed_blocks
from reproduction.store import RunStore

SMALL = dict(base_batch=20, factor=2, steps=2, epochs_per_step=1)
DATA = synthetic_digits()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_a_local_cluster_trains_like_a_single_threaded_process():
    """Bit-identical to the same config in a fresh single-threaded process (what the old process pool ran),
    twins identical, on two workers bound to 127.0.0.1."""
    same = RunConfig("momentum", "increase", seed=3, **SMALL)
    configs = [same, same, RunConfig("adam", "hybrid", seed=0, **SMALL)]
    results = list(train_on_cluster(configs, DATA, workers=2))
    assert sorted(r.config.key() for r in results) == sorted(c.key() for c in configs)
    assert all(
        r.metadata["trained_in"] == "worker"
        and r.metadata["intra_op_threads"] == 1
        and r.metadata["worker"].startswith("tcp://127.0.0.1:")
        for r in results
    )
    twins = [[e.train_loss for e in r.epochs] for r in results if r.config == same]
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        reference = [
            e["train_loss"]
            for e in pool.submit(train_single_threaded, same.to_dict(), DATA).result()["epochs"]
        ]
    assert twins[0] == twins[1] == reference
    assert results[0].final.test_accuracy > 0.3


@pytest.fixture
def hand_started_cluster():
    """A `dask scheduler` and two `dask worker` processes on 127.0.0.1, as if on two machines; the first
    worker holds a machine (resource machine=1). Yields (address, worker processes)."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    python = [sys.executable, "-m"]
    processes = [
        subprocess.Popen(
            [
                *python,
                "distributed.cli.dask_scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-dashboard",
                "--dashboard-address",
                ":0",
            ],
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    workers = []
    for resources in (f"{MACHINE}=1", None):
        args = [
            *python,
            "distributed.cli.dask_worker",
            address,
            "--nthreads",
            "1",
            "--host",
            "127.0.0.1",
            "--no-dashboard",
            "--dashboard-address",
            ":0",
            "--death-timeout",
            "60",
        ]
        workers.append(
            subprocess.Popen(
                args + (["--resources", resources] if resources else []),
                start_new_session=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    processes += workers
    try:
        client, _ = connect(address, 0)
        try:
            client.wait_for_workers(2, timeout=60)
        finally:
            client.close()
        yield address, workers
    finally:
        for p in reversed(processes):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in processes:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


@pytest.mark.slow
def test_a_scheduler_and_workers_started_by_hand_share_the_grid(hand_started_cluster, tmp_path):
    address, _ = hand_started_cluster
    timed = [RunConfig("sgd", s, seed=0, **SMALL) for s in ("decay", "hybrid", "increase")]
    untimed = [RunConfig("adam", "constant", seed=k, **SMALL) for k in range(4)]
    outcome = run_all(
        timed + untimed,
        DATA,
        RunStore(tmp_path),
        quiet=True,
        say=lambda text: None,
        timed=timed,
        workers=2,
        scheduler=address,
    )
    assert set(outcome.trained) == set(timed + untimed) and len(list(tmp_path.glob("*.json"))) == 7
    block = {outcome.runs[c].metadata["worker"] for c in timed}
    assert len(block) == 1  # the three schedules of one block trained back to back on one worker
    assert all(outcome.runs[c].metadata["intra_op_threads"] == 1 for c in timed)  # one thread, as everywhere
    assert all(outcome.runs[c].metadata["host_load"]["other_cores"] is not None for c in timed)
    workers = {outcome.runs[c].metadata["worker"] for c in untimed}
    assert workers - block, "the second worker trained none of the grid"
    assert all(r.metadata["host"] == socket.gethostname() for r in outcome.runs.values())


@pytest.mark.slow
def test_a_killed_worker_loses_no_finished_run_and_its_run_is_retrained(hand_started_cluster, tmp_path):
    address, workers = hand_started_cluster
    configs = [
        RunConfig("sgd", "constant", seed=k, base_batch=20, steps=1, epochs_per_step=6) for k in range(6)
    ]
    store, stored = RunStore(tmp_path), []
    for result in train_on_cluster(configs, DATA, scheduler=address):
        store.put(result)
        stored.append(result.config)
        if len(stored) == 1:
            os.killpg(workers[1].pid, signal.SIGKILL)  # the whole `dask worker` process group: a dead machine
    assert sorted(c.key() for c in stored) == sorted(c.key() for c in configs)
    assert all(store.get(c) is not None for c in configs)


def test_timed_blocks_are_consecutive_runs_of_one_optimizer_and_seed():
    grid = [
        RunConfig(o, s, k) for k in (0, 1) for o in ("sgd", "adam") for s in ("decay", "hybrid", "increase")
    ]
    blocks = timed_blocks(grid)
    assert len(blocks) == 4 and all(
        len(b) == 3 and len({(c.optimizer, c.seed) for c in b}) == 1 for b in blocks
    )


@pytest.mark.slow
def test_a_failing_run_is_reported_with_its_error_and_the_others_are_stored(tmp_path):
    good = RunConfig("sgd", "increase", seed=0, **SMALL)
    bad = RunConfig("sgd", "increase", seed=1, train_examples=10_000, **SMALL)  # more than the 600 examples
    with pytest.raises(RunFailed, match=rf"{bad.key()}: UsageError: train_examples=10000: only 600"):
        run_all([good, bad], DATA, RunStore(tmp_path), quiet=True, say=lambda text: None, timed=[], workers=2)
    assert RunStore(tmp_path).get(good) is not None and RunStore(tmp_path).get(bad) is None


def test_an_unreachable_scheduler_fails_fast_with_a_clear_error():
    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"no Dask scheduler answered within 5 s.*dask scheduler"):
        connect(address, 0)
    assert time.perf_counter() - start < 15


@pytest.mark.slow
def test_timed_blocks_need_a_worker_that_holds_a_machine():
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=False,
        protocol="tcp://",
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
    ) as cluster:
        block = [RunConfig("sgd", "decay", 0, **SMALL)]
        with pytest.raises(ValueError, match=r"resource machine=1.*--resources machine=1"):
            list(train_on_cluster([], DATA, scheduler=cluster.scheduler_address, blocks=[block]))


@pytest.mark.slow
def test_runs_that_need_a_worker_resource_go_only_where_it_is_offered():
    """A workload asking {"GPU": 1}: a cluster without such a worker is one line naming the resource and
    the worker option; the local grid's workers offer what the runs ask for, and train them."""
    from distributed import LocalCluster

    from reproduction.workloads import get_workload

    workload = get_workload("my_model_variants:gpu_workload")
    config = workload.config("sgd", "decay", 0)
    with (
        LocalCluster(
            n_workers=1, processes=False, protocol="tcp://", host="127.0.0.1", dashboard_address="127.0.0.1:0"
        ) as cluster,
        pytest.raises(ValueError, match=r"resource GPU=1, which no worker.*--resources GPU=1"),
    ):
        list(train_on_cluster([config], workload.source(), scheduler=cluster.scheduler_address))
    (result,) = train_on_cluster([config], workload.source(), workers=1)
    assert result.config == config and result.metadata["trained_in"] == "worker"


@pytest.mark.slow
def test_stopping_early_ends_the_local_cluster_at_once():
    """What Ctrl-C does through run_all: the caller stops iterating; the cluster's processes end."""
    configs = [
        RunConfig("sgd", "constant", seed=k, base_batch=20, steps=1, epochs_per_step=40) for k in range(6)
    ]
    results = train_on_cluster(configs, DATA, workers=2)
    first = next(results)
    start = time.perf_counter()
    results.close()
    assert first.config in configs
    assert time.perf_counter() - start < 15
    assert not [p for p in multiprocessing.active_children() if p.is_alive()]


@pytest.mark.parametrize("bad", [-1, 1.5, True, "2"])
def test_bad_worker_counts_name_the_field(bad):
    with pytest.raises(ValueError, match=r"workers=.*expected an integer >= 0"):
        check_workers(bad)


def test_cli_rejects_a_negative_worker_count_and_a_bad_scheduler(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["reproduce", "--workers", "-1"])
    assert exc.value.code == 2
    assert "--workers: '-1': expected an integer >= 0" in capsys.readouterr().err
    assert main(["reproduce", "--scheduler", "nowhere", "--runs-dir", "/nonexistent"]) == 2
    assert "scheduler='nowhere': expected tcp://HOST:PORT or tls://HOST:PORT" in capsys.readouterr().err


@pytest.mark.slow
def test_a_script_without_a_main_guard_fails_with_the_fix_instead_of_hanging(tmp_path):
    # Spawned workers import the main script again; before the check they waited forever on the
    # locks of the runs their parent was training.
    script = tmp_path / "unguarded.py"
    script.write_text(
        "from reproduction.config import RunConfig\n"
        "from reproduction.data import DatasetSource\n"
        "from reproduction.runner import run_all\n"
        "from reproduction.store import RunStore\n"
        f"run_all([RunConfig('sgd', 'decay', 0)], DatasetSource('mnist'), RunStore({str(tmp_path)!r}),\n"
        "        timed=[], workers=1, quiet=True)\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=180)
    assert done.returncode != 0
    assert 'if __name__ == "__main__":' in done.stderr

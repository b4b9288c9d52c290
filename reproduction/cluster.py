"""The grid of runs on Dask distributed: a LocalCluster on 127.0.0.1 by default, any cluster by address.

Default (no scheduler): a ``LocalCluster`` bound to 127.0.0.1, process workers (spawned: TensorFlow does
not survive a fork), one task thread and one TensorFlow thread each, as many as ``workers``. On a 2-core
CPU a B-100 step gains little from a second thread, so two single-threaded processes train more runs than
one two-threaded process (benchmarks/test_engine_speed.py). Runs whose training seconds a claim reads do
not come here: they train in the main process, alone (the timing policy: reproduction/runner.py).

With a scheduler address (``--scheduler tcp://HOST:PORT`` or ``$REPRODUCTION_SCHEDULER``) the grid goes to
an existing cluster, started by hand (``dask scheduler``; ``dask worker ADDRESS --nthreads 1``), by
dask-jobqueue or on Kubernetes. The timed runs then go too, as *blocks*: the three schedules of one
(optimizer, seed) train back to back in one task on a worker that holds a whole machine (started with
``--resources machine=1``, the only worker on its machine, so nothing else runs there), so the pairs a
wall-clock claim compares never mix machines or neighbours.

Data: a worker loads it itself through ``DatasetSource.load`` (the verified loader and the worker's own
cache), so nothing but a small description travels; synthetic arrays (tests) are scattered once.
Results come back to the client, which stores them (atomic writes: no shared filesystem is needed).
Faults: a worker that dies mid-run loses only that run, which the scheduler gives to another worker (at
most ``distributed.scheduler.allowed-failures`` times, then it is reported failed); a run that raises is
reported failed with the worker's error; finished runs are never lost. Each run's metadata records the
host and the worker that trained it, and its TensorFlow thread count.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator, Sequence

from reproduction.config import RunConfig
from reproduction.data import ArraySource, as_source
from reproduction.errors import UsageError
from reproduction.results import RunResult


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# One single-threaded worker per core (runs train on one TensorFlow thread wherever they train: training.THREADS);
# each holds TensorFlow and the data (about 1 GB).
DEFAULT_WORKERS = _cores()
MACHINE = "machine"  # the worker resource of a worker that holds a whole machine (timed blocks)
CONNECT_TIMEOUT_S = 5
# A training run is one long task: Dask's defaults for short tasks cost it 15-40% on 2 cores against a plain
# process (docs/engine-speed.md): the statistical profiler samples every 10 ms, the event loop ticks every
# 20 ms, and MALLOC_TRIM_THRESHOLD_ fixes glibc's mmap threshold, so TensorFlow's large temporaries are
# mapped and unmapped at every step. Without them a worker trains as fast as a plain process.
LOCAL_CLUSTER_CONFIG = {
    "distributed.worker.multiprocessing-method": "spawn",  # TensorFlow does not survive a fork
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.nanny.pre-spawn-environ": {
        "OMP_NUM_THREADS": 1,
        "MKL_NUM_THREADS": 1,
        "OPENBLAS_NUM_THREADS": 1,
        "TF_NUM_INTRAOP_THREADS": 1,
        "TF_NUM_INTEROP_THREADS": 1,
    },
}


def check_workers(workers) -> int:
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 0:
        raise UsageError(
            f"workers={workers!r}: expected an integer >= 0 (0: train every run in this process)"
        )
    return workers


def check_scheduler(address) -> str | None:
    """None (a LocalCluster) or a Dask scheduler address such as tcp://10.0.0.5:8786."""
    if address is None or address == "":
        return None
    if not isinstance(address, str) or "://" not in address and ":" not in address:
        raise UsageError(f"scheduler={address!r}: expected a Dask scheduler address such as tcp://HOST:8786")
    return address


# ------------------------------------------------------------------------------------------- the worker side
_trainers: dict = {}  # per worker process: one Trainer per data source


def _trainer(source):
    """This process's Trainer for ``source`` (one TensorFlow thread: training.configure_threads)."""
    trainer = _trainers.get(source.key)
    if trainer is None:
        from reproduction.training import Trainer

        trainer = _trainers[source.key] = Trainer(source.load())
    return trainer


def train_runs(configs: list[dict], source, timed: bool = False) -> list[dict]:
    """Train ``configs`` back to back in this worker (one run, or a timed block, measured for the host's load
    while it trains); results as dicts."""
    from distributed import get_worker

    trainer = _trainer(source)
    out = []
    for config in configs:
        train = trainer.train_timed if timed else trainer.train
        result = train(RunConfig.from_dict(config))
        result.metadata.update(
            {
                "trained_in": "worker",
                "host": socket.gethostname(),
                "worker": get_worker().address,
                "worker_pid": os.getpid(),
            }
        )
        out.append(result.to_dict())
    return out


# ------------------------------------------------------------------------------------------- the client side
class RunFailed(RuntimeError):
    """Runs that failed on the cluster, each with its worker's error; the finished ones were stored."""

    def __init__(self, failures: Sequence[tuple[RunConfig, str]]):
        self.failures = tuple(failures)
        super().__init__(
            f"{len(self.failures)} run(s) failed on the cluster: "
            + "; ".join(f"{c.key()}: {error}" for c, error in self.failures)
        )


def connect(scheduler: str | None, workers: int):
    """(client, cluster): a client of the scheduler at ``scheduler`` (cluster None), or of a LocalCluster
    of ``workers`` single-threaded process workers on 127.0.0.1 that the caller must close."""
    import dask
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            return Client(scheduler, timeout=CONNECT_TIMEOUT_S), None
        except (OSError, TimeoutError) as exc:
            raise UsageError(
                f"scheduler={scheduler!r}: no Dask scheduler answered within {CONNECT_TIMEOUT_S} s "
                f"({exc}); start one with 'dask scheduler' and workers with 'dask worker "
                f"{scheduler} --nthreads 1'"
            ) from None
    with dask.config.set(LOCAL_CLUSTER_CONFIG):
        # loopback only, and free ports: the scheduler's HTTP server would otherwise take 127.0.0.1:8787
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",
            silence_logs=logging.ERROR,
        )
    try:
        return Client(cluster), cluster
    except BaseException:
        cluster.close()
        raise


def _check_machine_workers(client) -> None:
    workers = client.scheduler_info()["workers"].values()
    if not any(w.get("resources", {}).get(MACHINE, 0) >= 1 for w in workers):
        raise UsageError(
            f"the timed runs need a worker that holds a whole machine, and no worker of this cluster "
            f"offers the resource {MACHINE}=1: start one per machine with 'dask worker ADDRESS "
            f"--nthreads 1 --resources {MACHINE}=1', alone on its machine"
        )


def train_on_cluster(
    runs: Sequence[RunConfig],
    data,
    workers: int = DEFAULT_WORKERS,
    scheduler: str | None = None,
    blocks: Sequence[Sequence[RunConfig]] = (),
) -> Iterator[RunResult]:
    """Train ``runs`` one per task, and each of ``blocks`` back to back in one task on a worker holding a
    machine (needs a scheduler); yield every result as it arrives. Failed runs are raised together at the
    end (``RunFailed``), after every other result was yielded. Stopping early (Ctrl-C, the caller stops
    iterating) closes the client and the LocalCluster it started."""
    check_workers(workers)
    scheduler = check_scheduler(scheduler)
    if blocks and scheduler is None:
        raise UsageError(
            "timed blocks go to a cluster only; without a scheduler they train in the main process"
        )
    if not runs and not blocks:
        return
    from distributed import as_completed

    client, cluster = connect(scheduler, max(1, min(workers, len(runs) + len(blocks))))
    try:
        if blocks:
            _check_machine_workers(client)
        source = as_source(data)
        if isinstance(source, ArraySource):
            source = client.scatter(source, broadcast=True)
        tasks = {}
        for block in blocks:
            future = client.submit(
                train_runs, [c.to_dict() for c in block], source, True, resources={MACHINE: 1}, pure=False
            )
            tasks[future] = tuple(block)
        for config in runs:
            tasks[client.submit(train_runs, [config.to_dict()], source, pure=False)] = (config,)
        failures = []
        for future in as_completed(tasks):
            if future.status == "error":
                error = future.exception()
                failures += [(c, f"{type(error).__name__}: {error}") for c in tasks[future]]
                continue
            for item in future.result():
                yield RunResult.from_dict(item)
        if failures:
            raise RunFailed(failures)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()

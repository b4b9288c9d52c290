"""The grid of runs on Dask distributed: a LocalCluster on 127.0.0.1 by default, any cluster by address.

Default (no scheduler): a ``LocalCluster`` bound to 127.0.0.1, process workers (spawned: TensorFlow does
not survive a fork), one task thread and one TensorFlow thread each, as many as ``workers``. On a 2-core
CPU a B-100 step gains little from a second thread, so two single-threaded processes train more runs than
one two-threaded process (benchmarks/test_engine_speed.py). Runs whose training seconds a claim reads do
not come here: they train in the main process, alone (the timing policy: reproduction/runner.py).

With a scheduler address (``--scheduler tcp://HOST:PORT`` or ``$REPRODUCTION_SCHEDULER``) the grid goes to
an existing cluster, started by hand (``dask scheduler``; ``dask worker ADDRESS --nthreads 1``), by
dask-jobqueue or on Kubernetes. The timed runs then go too, as *blocks*: the three schedules of one
(optimizer, seed) train in one task, their epochs interleaved, on a worker that holds a whole machine (started
with ``--resources machine=1``, the only worker on its machine, so nothing else runs there), so the pairs a
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

import dataclasses
import logging
import os
import socket
from collections.abc import Iterator, Sequence

from reproduction.config import RunConfig
from reproduction.data import ArraySource, as_source
from reproduction.errors import UsageError
from reproduction.hostload import cores
from reproduction.results import RunResult
from reproduction.sharing import share
from reproduction.workloads import get_workload

# One worker per core, each on one TensorFlow thread, intra- and inter-op (training.THREADS: the same bits
# as anywhere; one inter-op thread: the workers share the machine); each holds TensorFlow and the data
# (about 1 GB).
DEFAULT_WORKERS = cores()
MACHINE = "machine"  # the worker resource of a worker that holds a whole machine (timed blocks)
CONNECT_TIMEOUT_S = 5
# A training run is one long task: Dask's defaults for short tasks cost it 15-40% on 2 cores against a plain
# process (docs/engine.md): the statistical profiler samples every 10 ms, the event loop ticks every
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


PROTOCOLS = ("tcp", "tls")


def check_scheduler(address) -> str | None:
    """None (a LocalCluster) or a Dask scheduler address: tcp://HOST:PORT or tls://HOST:PORT."""
    if address is None or address == "":
        return None
    if not isinstance(address, str):
        raise UsageError(f"scheduler={address!r}: expected an address such as tls://HOST:8786")
    protocol, _, rest = address.rpartition("://") if "://" in address else ("tcp", "", address)
    host, _, port = rest.rpartition(":")
    if protocol not in PROTOCOLS or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise UsageError(
            f"scheduler={address!r}: expected tcp://HOST:PORT or tls://HOST:PORT, PORT 1-65535 (protocols "
            f"{list(PROTOCOLS)})"
        )
    return f"{protocol}://{rest}"


@dataclasses.dataclass(frozen=True)
class Tls:
    """This client's certificates for a TLS scheduler (``--tls-ca-file``, ``--tls-cert``, ``--tls-key``): the
    CA that signed the cluster's certificates, and this client's certificate and key. Without them, Dask's
    own settings apply (``distributed.comm.tls.*``, e.g. DASK_DISTRIBUTED__COMM__TLS__CA_FILE)."""

    ca_file: str
    cert: str
    key: str

    def __post_init__(self):
        import ssl

        for name in ("ca_file", "cert", "key"):
            if not os.path.isfile(getattr(self, name)):
                raise UsageError(f"--tls-{name.replace('_', '-')} {getattr(self, name)!r}: no such file")
        # read as a TLS client will, so a wrong file is named here and not in a timeout after the data loads
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        for flags, load in (
            ("--tls-ca-file", lambda: context.load_verify_locations(cafile=self.ca_file)),
            ("--tls-cert and --tls-key", lambda: context.load_cert_chain(self.cert, self.key)),
        ):
            try:
                load()
            except (ssl.SSLError, ValueError) as exc:
                raise UsageError(
                    f"{flags}: not a PEM certificate (and key) that TLS can load ({exc})"
                ) from None

    def check_for(self, scheduler: str | None) -> None:
        """Certificates are for a tls:// scheduler: given with none, or with tcp://, they would be ignored."""
        if scheduler is None or not scheduler.startswith("tls://"):
            raise UsageError(
                f"--tls-ca-file, --tls-cert and --tls-key are for a tls:// --scheduler; given with "
                f"{scheduler or 'the local cluster'}, which would not use them"
            )

    def security(self):
        from distributed import Security

        return Security(
            tls_ca_file=self.ca_file,
            tls_client_cert=self.cert,
            tls_client_key=self.key,
            require_encryption=True,
        )


def _security(scheduler: str, tls: Tls | None):
    """The Security a client of ``scheduler`` needs: ``tls``'s, else Dask's configured one; a tls:// address
    without any certificate is refused."""
    from distributed import Security

    if tls is not None:
        return tls.security()
    security = Security()  # reads distributed.comm.tls.* from Dask's configuration
    if scheduler.startswith("tls://") and not security.tls_ca_file:
        raise UsageError(
            f"scheduler={scheduler!r}: a TLS scheduler needs this client's certificates: --tls-ca-file, "
            "--tls-cert and --tls-key (or Dask's distributed.comm.tls settings)"
        )
    return security


def _warn_if_open(scheduler: str, say) -> None:
    host = scheduler.split("://", 1)[1].rsplit(":", 1)[0]
    if scheduler.startswith("tcp://") and host not in ("127.0.0.1", "localhost", "[::1]"):
        say(
            f"warning: {scheduler} is plain TCP: a Dask scheduler runs what any client that reaches it "
            "sends; keep it on a private network, or use tls:// (docs/scale-out.md)"
        )


def _submit(client, runs, blocks, data) -> tuple[dict, list]:
    """(future -> its configs, the prefixes' futures): each block in one task on a worker holding a machine;
    each run in a task of its own, from the task of the prefix it shares with others (sharing.py), which
    Dask hands it as it would any dependency."""
    source = as_source(data)
    if isinstance(source, ArraySource):
        source = client.scatter(source, broadcast=True)
    tasks = {}
    for block in blocks:
        needs = {MACHINE: 1, **run_resources(block[0])}
        future = client.submit(
            train_runs, [c.to_dict() for c in block], source, True, resources=needs, pure=False
        )
        tasks[future] = tuple(block)
    plan = share(runs)
    prefixes: list = []
    for p in plan.prefixes:
        parent = None if p.parent is None else prefixes[p.parent]
        needs = run_resources(p.config) or None
        prefixes.append(
            client.submit(
                train_prefix, p.config.to_dict(), p.epochs, source, parent, resources=needs, pure=False
            )
        )
    for config in runs:
        needs = run_resources(config) or None
        i = plan.start(config)
        start = None if i is None else prefixes[i]
        future = client.submit(
            train_runs, [config.to_dict()], source, False, start, resources=needs, pure=False
        )
        tasks[future] = (config,)
    return tasks, prefixes


def run_resources(config: RunConfig) -> dict[str, float]:
    """The worker resources a run needs: its workload's (``Workload.resources``, e.g. {"GPU": 1})."""
    return dict(get_workload(config.workload).resources)


def _most_resources(runs: Sequence[RunConfig]) -> dict[str, float]:
    """Per resource, the most any one run needs (what each local worker offers)."""
    needs: dict[str, float] = {}
    for config in runs:
        for name, amount in run_resources(config).items():
            needs[name] = max(needs.get(name, 0), amount)
    return needs


def _check_resource_workers(client, runs: Sequence[RunConfig]) -> None:
    """Each resource the runs need is offered by some worker; else the runs would wait forever."""
    offered: dict[str, float] = {}
    for w in client.scheduler_info()["workers"].values():
        for name, amount in w.get("resources", {}).items():
            offered[name] = max(offered.get(name, 0), amount)
    for config in runs:
        for name, amount in run_resources(config).items():
            if offered.get(name, 0) < amount:
                raise UsageError(
                    f"workload {config.workload!r}: its runs need the worker resource {name}={amount:g}, "
                    "which no worker of this cluster offers: start workers with 'dask worker ADDRESS "
                    f"--nthreads 1 --resources {name}={amount:g}' on machines that have it"
                )


# ------------------------------------------------------------------------------------------- the worker side
_trainers: dict = {}  # per worker process: one Trainer per data source


def _trainer(source):
    """This process's Trainer for ``source`` (one TensorFlow thread: training.configure_threads)."""
    trainer = _trainers.get(source.key)
    if trainer is None:
        from reproduction.training import Trainer

        trainer = _trainers[source.key] = Trainer(source.load())
    return trainer


def train_runs(configs: list[dict], source, timed: bool = False, start=None) -> list[dict]:
    """Train ``configs`` in this worker: one run (``start``: the snapshot it starts from), or a timed block,
    its epochs interleaved and measured for the host's load (training.Trainer.train_timed); results as
    dicts."""
    from distributed import get_worker

    trainer = _trainer(source)
    runs = [RunConfig.from_dict(c) for c in configs]
    results = trainer.train_timed(runs) if timed else [trainer.train(c, start=start) for c in runs]
    out = []
    for result in results:
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


def train_prefix(config: dict, epochs: int, source, start=None):
    """The first ``epochs`` epochs of ``config``, from ``start``: a training.Snapshot for the runs sharing
    them."""
    return _trainer(source).train_prefix(RunConfig.from_dict(config), epochs, start)


# ------------------------------------------------------------------------------------------- the client side
class RunFailed(RuntimeError):
    """Runs that failed on the cluster, each with its worker's error; the finished ones were stored."""

    def __init__(self, failures: Sequence[tuple[RunConfig, str]]):
        self.failures = tuple(failures)
        super().__init__(
            f"{len(self.failures)} run(s) failed on the cluster: "
            + "; ".join(f"{c.key()}: {error}" for c, error in self.failures)
        )


class ClusterLost(RuntimeError):
    """The scheduler went away mid-grid; the runs that finished before were stored."""

    def __init__(self, scheduler: str | None, lost: Sequence[RunConfig]):
        self.lost = tuple(lost)
        super().__init__(
            f"the Dask scheduler at {scheduler or 'the LocalCluster'} went away with {len(self.lost)} run(s) "
            "unfinished; the finished ones are in the store, re-run to resume"
        )


def connect(scheduler: str | None, workers: int, tls: Tls | None = None, say=print, resources=None):
    """(client, cluster): a client of the scheduler at ``scheduler`` (cluster None), or of a LocalCluster
    of ``workers`` single-threaded process workers on 127.0.0.1 that the caller must close, each offering
    ``resources`` (the runs' own: this machine is taken to have what they ask for)."""
    import dask
    from distributed import Client, LocalCluster

    if scheduler is not None:
        security = _security(scheduler, tls)
        _warn_if_open(scheduler, say)
        try:
            return Client(scheduler, timeout=CONNECT_TIMEOUT_S, security=security), None
        except (OSError, TimeoutError) as exc:
            raise UsageError(
                f"scheduler={scheduler!r}: no Dask scheduler answered within {CONNECT_TIMEOUT_S} s "
                f"({type(exc).__name__}: {exc}); is it running, at that protocol (tcp:// or tls://), with "
                "certificates this client trusts? Start one with 'dask scheduler' and workers with 'dask "
                f"worker {scheduler} --nthreads 1' (docs/scale-out.md)"
            ) from None
    with dask.config.set(LOCAL_CLUSTER_CONFIG):
        # loopback only, every server: the scheduler, the workers, the nannies and the dashboard (whose
        # default ":0" listens on every interface), on free ports
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            silence_logs=logging.ERROR,
            resources=resources or None,
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
            "the timed runs need a worker that holds a whole machine, and no worker of this cluster offers "
            f"the resource {MACHINE}=1: start one per machine with 'dask worker ADDRESS --nthreads 1 "
            f"--resources {MACHINE}=1', alone on its machine"
        )


def train_on_cluster(
    runs: Sequence[RunConfig],
    data,
    workers: int = DEFAULT_WORKERS,
    scheduler: str | None = None,
    blocks: Sequence[Sequence[RunConfig]] = (),
    tls: Tls | None = None,
    say=print,
) -> Iterator[RunResult]:
    """Train ``runs`` one per task, and each of ``blocks`` in one task (interleaved) on a worker holding a
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

    needs = _most_resources(runs)
    client, cluster = connect(scheduler, max(1, min(workers, len(runs) + len(blocks))), tls, say, needs)
    try:
        if blocks:
            _check_machine_workers(client)
        _check_resource_workers(client, runs)
        tasks, prefixes = _submit(client, runs, blocks, data)  # prefixes: held until their runs end
        failures, lost = [], []
        for future in as_completed(tasks):
            if future.status == "error":
                error = future.exception()
                failures += [(c, f"{type(error).__name__}: {error}") for c in tasks[future]]
            elif future.status != "finished":  # cancelled or lost: the scheduler went away
                lost += tasks[future]
            else:
                for item in future.result():
                    yield RunResult.from_dict(item)
        if lost:
            raise ClusterLost(scheduler, lost)
        if failures:
            raise RunFailed(failures)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()

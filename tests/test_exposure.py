"""Nothing listens where it should not: the local grid binds only loopback; a TLS scheduler trains a run and
refuses a plain client; two jobs on one store split the work instead of training a run twice.

Every server these tests start is on 127.0.0.1, on free ports, and is closed by the test."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from support import synthetic_digits

from reproduction.cluster import Tls, connect, train_on_cluster
from reproduction.config import RunConfig
from reproduction.data import ArraySource
from reproduction.errors import UsageError
from reproduction.runner import run_all
from reproduction.store import RunStore

TINY = dict(base_batch=20, factor=2, steps=2, epochs_per_step=1, train_examples=200)


def _listening(pids: set[int]) -> list[tuple[str, int]]:
    """(address, port) of every TCP socket in LISTEN state owned by one of ``pids`` (Linux /proc)."""
    inodes = {}
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes[target[8:-1]] = pid
        except OSError:
            continue
    found = []
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes:  # 0A: LISTEN
                address, port = local.split(":")
                found.append((address if width == 32 else _ipv4(address), int(port, 16)))
    return found


def _ipv4(hex_le: str) -> str:
    return ".".join(str(int(hex_le[i : i + 2], 16)) for i in (6, 4, 2, 0))


def _children(pid: int) -> set[int]:
    out = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out |= {int(entry)} | _children(int(entry))
    return out


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc/net/tcp")
def test_the_local_grid_listens_on_loopback_only():
    """The scheduler, its HTTP dashboard, the workers and the nannies: every listening socket on 127.0.0.1
    (the dashboard's default ':0' would listen on every interface)."""
    client, cluster = connect(None, 2)
    try:
        client.wait_for_workers(2, timeout=60)
        me = os.getpid()
        sockets = _listening({me} | _children(me))
        assert len(sockets) >= 5, sockets  # scheduler, dashboard, 2 workers, 2 nannies (at least)
        assert all(address == "127.0.0.1" for address, _ in sockets), sockets
    finally:
        client.close()
        cluster.close()


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory):
    """A LocalCluster speaking TLS on 127.0.0.1, with certificates made for the test; this client's
    certificate files beside it."""
    from distributed import LocalCluster, Security

    security = Security.temporary()
    folder = tmp_path_factory.mktemp("tls")
    files = {}
    for name in ("tls_ca_file", "tls_client_cert", "tls_client_key"):
        files[name] = folder / f"{name}.pem"
        files[name].write_text(getattr(security, name))
    cluster = LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=True,
        protocol="tls://",
        host="127.0.0.1",
        security=security,
        dashboard_address="127.0.0.1:0",
    )
    try:
        yield (
            cluster,
            Tls(str(files["tls_ca_file"]), str(files["tls_client_cert"]), str(files["tls_client_key"])),
        )
    finally:
        cluster.close()


@pytest.mark.slow
def test_a_tls_scheduler_trains_a_run(tls_cluster):
    cluster, tls = tls_cluster
    assert cluster.scheduler_address.startswith("tls://127.0.0.1:")
    config = RunConfig("sgd", "increase", 0, **TINY)
    (result,) = list(
        train_on_cluster([config], ArraySource(synthetic_digits()), 1, cluster.scheduler_address, tls=tls)
    )
    assert result.config == config and result.parameter_updates == 15  # 200 images: 10 at B 20, 5 at B 40


def test_a_plain_client_is_refused_by_a_tls_scheduler_with_a_clear_error(tls_cluster):
    cluster, tls = tls_cluster
    plain = cluster.scheduler_address.replace("tls://", "tcp://")
    with pytest.raises(UsageError, match=r"no Dask scheduler answered within 5 s .*tls://"):
        connect(plain, 1)
    with pytest.raises(UsageError, match="a TLS scheduler needs this client's certificates"):
        connect(cluster.scheduler_address, 1)  # tls:// but no certificates


def test_bad_scheduler_addresses_and_missing_certificates_are_clear_errors(tmp_path):
    from reproduction.cluster import check_scheduler

    assert check_scheduler("10.0.0.5:8786") == "tcp://10.0.0.5:8786"
    for bad in ("http://host:8786", "tcp://host", "tls://:8786", "host:port", "tcp://127.0.0.1:99999"):
        with pytest.raises(UsageError, match="expected tcp://HOST:PORT or tls://HOST:PORT"):
            check_scheduler(bad)
    with pytest.raises(UsageError, match="--tls-ca-file .*no such file"):
        Tls(str(tmp_path / "ca.pem"), str(tmp_path / "cert.pem"), str(tmp_path / "key.pem"))


def test_certificate_files_that_tls_cannot_load_are_named_before_anything_connects(tmp_path, tls_cluster):
    """Not PEM at all, or a certificate given as the key: once an SSLError inside a 5-s connection timeout,
    after the data had loaded and the runs were locked."""
    _, good = tls_cluster
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(UsageError, match="--tls-ca-file: not a PEM"):
        Tls(str(junk), good.cert, good.key)
    with pytest.raises(UsageError, match="--tls-cert and --tls-key: not a PEM"):
        Tls(good.ca_file, good.cert, good.cert)
    good.check_for("tls://127.0.0.1:8786")
    for scheduler in (None, "tcp://127.0.0.1:8786"):
        with pytest.raises(UsageError, match="are for a tls:// --scheduler"):
            good.check_for(scheduler)


def test_certificates_without_a_tls_scheduler_are_refused_before_anything_is_made(
    tmp_path, tls_cluster, capsys
):
    from reproduction.cli import main

    _, good = tls_cluster
    certs = ["--tls-ca-file", good.ca_file, "--tls-cert", good.cert, "--tls-key", good.key]
    args = ["reproduce", "--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "out"), *certs]
    assert main(args) == 2
    assert "are for a tls:// --scheduler" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_the_cli_wants_all_three_certificate_files_or_none(tmp_path, capsys):
    from reproduction.cli import main

    args = ["reproduce", "--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "out")]
    assert main([*args, "--scheduler", "tls://127.0.0.1:1", "--tls-cert", "c.pem"]) == 2
    assert "give all three" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # refused before anything else


# -------------------------------------------------------------------------------------- one store, two jobs
def test_two_jobs_on_one_store_split_the_work_and_train_nothing_twice(tmp_path):
    """Two threads standing in for two processes (flock is per open file, so the same rule holds): every run
    is trained once, by one of them, and both end with every run, every file valid."""
    data = synthetic_digits()
    configs = [RunConfig("sgd", s, k, **TINY) for k in (0, 1) for s in ("decay", "increase")]
    outcomes = {}

    def job(name):
        outcomes[name] = run_all(
            configs, data, RunStore(tmp_path), quiet=True, say=lambda text: None, timed=[]
        )

    threads = [threading.Thread(target=job, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    trained = list(outcomes["a"].trained) + list(outcomes["b"].trained)
    assert sorted(c.key() for c in trained) == sorted(c.key() for c in configs)  # each exactly once
    assert outcomes["a"].runs == outcomes["b"].runs and len(list(tmp_path.glob("*.json"))) == len(configs)


def test_a_lock_held_by_a_dead_process_is_released(tmp_path):
    """flock locks die with their process: a job killed mid-run leaves nothing that blocks the next."""
    config = RunConfig("sgd", "increase", 0, **TINY)
    locks = RunStore(tmp_path).locks()
    code = (
        f"import sys, time; sys.path.insert(0, {str(Path(__file__).parent)!r})\nfrom reproduction.store "
        "import RunStore\nfrom reproduction.config import RunConfig\nassert "
        f"RunStore({str(tmp_path)!r}).locks().claim(RunConfig('sgd', 'increase', 0, base_batch=20, factor=2, "
        "steps=2, epochs_per_step=1, train_examples=200))\nprint('held', flush=True)\ntime.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert not locks.claim(config)  # another process holds it
        holder.kill()
        holder.wait(timeout=10)
        assert locks.claim(config, wait=True)  # released with the dead process
    finally:
        holder.kill()
        holder.wait(timeout=10)
        holder.stdout.close()
        locks.release_all()


# ------------------------------------------------------------------------------------ the scheduler goes away
def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_a_scheduler_killed_mid_grid_is_a_clear_error_and_the_rerun_resumes(tmp_path):
    """A scheduler and a worker started by hand on 127.0.0.1; the scheduler killed after the first run was
    stored: a clear error (not a hang), the finished run kept, and a rerun on a LocalCluster trains only the
    rest."""
    import time

    from reproduction.cluster import ClusterLost

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = dict(os.environ, DASK_DISTRIBUTED__WORKER__MULTIPROCESSING_METHOD="spawn")
    scheduler = subprocess.Popen(
        [
            "dask",
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--dashboard-address",
            "127.0.0.1:0",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker = subprocess.Popen(
        ["dask", "worker", address, "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    store = RunStore(tmp_path)
    configs = [RunConfig("sgd", "increase", k, **TINY) for k in range(6)]
    data = synthetic_digits()
    stored = []

    def say(text):
        if ": test accuracy" in text:
            stored.append(text)
            if len(stored) == 1:
                scheduler.kill()

    try:
        time.sleep(3)  # the worker registers
        start = time.perf_counter()
        with pytest.raises(ClusterLost, match="went away with [1-5] run"):
            run_all(configs, data, store, quiet=True, say=say, timed=[], workers=1, scheduler=address)
        assert time.perf_counter() - start < 120
        finished = len(list(tmp_path.glob("*.json")))
        assert 1 <= finished < len(configs)
        outcome = run_all(configs, data, store, quiet=True, say=lambda text: None, timed=[], workers=1)
        assert len(outcome.trained) == len(configs) - finished and len(outcome.runs) == len(configs)
    finally:
        for process in (scheduler, worker):
            process.kill()
            process.wait(timeout=30)

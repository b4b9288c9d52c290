"""tf.distribute: the rules (pure), MirroredStrategy over logical CPU devices against one device, and
``reproduction launch`` with MultiWorkerMirroredStrategy workers on 127.0.0.1 (each in its own process).

Tolerances (absolute, on the first 5000 training images, the increase schedule, 124 updates), chosen about
seven times above what this machine measures, since one device and two replicas differ only in the order of
float additions: on losses, SGD 5e-6 (measured 4.5e-7) and Adam 5e-5; on weights, SGD 3e-4 (measured 4.7e-5
on the convolution's kernel, 2e-7 after the first 50 updates: each replica splits its own half of a batch
into two parts for the noise estimate, so the sums group differently from one device's, and 124 updates
amplify the last bits) and Adam 5e-5 (its update divides by the root of a second moment, which magnifies
rounding where gradients are near zero). The replicas' copies of every variable, and the workers' results,
must agree exactly.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reproduction.config import RunConfig
from reproduction.distribute import check_split, tf_config
from reproduction.errors import UsageError
from reproduction.launch import LaunchFailed, check_agree, free_ports
from reproduction.results import EpochRecord, RunResult

N = 5000
TOLERANCE = {"sgd": {"loss": 5e-6, "weights": 3e-4}, "adam": {"loss": 5e-5, "weights": 5e-5}}
RUN = ["run", "--optimizer", "sgd", "--schedule", "increase", "--seed", "0", "--train-examples", str(N)]


# --------------------------------------------------------------------------------------------------- rules


@pytest.mark.parametrize(
    "batches,n,replicas,normalization",
    [
        ([100, 500, 2500], 60_000, 2, "ghost"),
        ([100, 500, 2500], 60_000, 5, "ghost"),
        ([120], 1200, 3, "none"),
        ([110], 1000, 1, "ghost"),
        ([100], 1000, 1, "batch"),
    ],
    ids=str,
)
def test_batches_that_split_into_whole_virtual_batches_are_accepted(batches, n, replicas, normalization):
    check_split(batches, n, replicas, normalization, 10)


@pytest.mark.parametrize(
    "batches,n,replicas,normalization,named",
    [
        ([110], 1100, 2, "ghost", "batch 110"),
        ([100, 500], 60_000, 3, "ghost", "batch 100"),
        ([100], 1050, 2, "ghost", "last batch of an epoch at batch 100 (1050 examples)"),
        ([101], 1010, 2, "none", "batch 101"),
    ],
    ids=str,
)
def test_a_batch_that_does_not_split_is_refused_naming_batch_replicas_and_virtual_batch(
    batches, n, replicas, normalization, named
):
    with pytest.raises(ValueError) as error:
        check_split(batches, n, replicas, normalization, 10)
    assert named in str(error.value) and f"replicas={replicas}" in str(error.value)
    assert ("virtual batches of 10" if normalization == "ghost" else "virtual batches of 1") in str(
        error.value
    )


def test_plain_batch_norm_is_one_device_only():
    with pytest.raises(ValueError, match="normalization='batch' with replicas=2"):
        check_split([100], 1000, 2, "batch", 10)


def test_one_device_keeps_the_store_keys_of_before_and_distributed_runs_get_their_own():
    # the key of this single-device run at code version 6: neither data parallelism (the strategy and replicas
    # fields) nor workloads (the workload field) may move it
    assert RunConfig().key() == "sgd-increase-seed0-fecb5ec3fd3b"
    assert "strategy" not in RunConfig().to_dict() and "replicas" not in RunConfig().to_dict()
    keys = {RunConfig().key()}
    for strategy, replicas in (("multi-worker", 2), ("mirrored", 2), ("multi-worker", 1)):
        config = RunConfig(strategy=strategy, replicas=replicas)
        assert config.key().startswith(f"sgd-increase-seed0-{strategy}-x{replicas}-")
        assert RunConfig.from_dict(config.to_dict()) == config
        keys.add(config.key())
    assert len(keys) == 4  # other bits and other timings: never one run standing in for another
    with pytest.raises(ValueError, match="replicas=0"):
        RunConfig(strategy="mirrored", replicas=0)
    with pytest.raises(ValueError, match="replicas=2 with strategy='default'"):
        RunConfig(replicas=2)
    with pytest.raises(ValueError, match="strategy='ring'"):
        RunConfig(strategy="ring")


def test_tf_config_missing_or_malformed_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="needs TF_CONFIG"):
        tf_config()
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {}}')
    with pytest.raises(ValueError, match="expected"):
        tf_config()


@pytest.mark.parametrize(
    "cluster, index",
    [
        ('["127.0.0.1:23456"]', 5),  # no such worker: TensorFlow's ValueError, a traceback, before
        ('["127.0.0.1:notaport"]', 0),  # TensorFlow's InvalidArgumentError at server start, before
        ('["127.0.0.1:99999"]', 0),
        ('["23456"]', 0),
        ('["127.0.0.1:23456"]', -1),
    ],
)
def test_tf_config_with_a_bad_index_or_address_is_refused_in_one_line(monkeypatch, cluster, index):
    config = f'{{"cluster": {{"worker": {cluster}}}, "task": {{"type": "worker", "index": {index}}}}}'
    monkeypatch.setenv("TF_CONFIG", config)
    with pytest.raises(UsageError, match="an index into the task type's list and each port 1-65535"):
        tf_config()
    monkeypatch.setenv("TF_CONFIG", config.replace(cluster, '["127.0.0.1:23456", "localhost:23457"]'))
    if index in (0, 1):
        assert tf_config()["task"]["index"] == index


def test_free_ports_are_distinct_loopback_ports():
    ports = free_ports(4)
    assert len(set(ports)) == 4 and all(1024 <= p < 65536 for p in ports)


def _result(test_loss: float) -> RunResult:
    return RunResult(
        RunConfig(strategy="multi-worker", replicas=2),
        (EpochRecord(0, 0.1, 100, 600, 1.0, 0.1, 0.3, test_loss, 0.9),),
        {},
    )


def test_workers_that_disagree_are_refused():
    check_agree([_result(0.25), _result(0.25)])
    with pytest.raises(LaunchFailed, match="epoch 0 test_loss is 0.25 on the chief and 0.26 on worker 1"):
        check_agree([_result(0.25), _result(0.26)])


# ---------------------------------------------------------------------- MirroredStrategy, 2 logical CPUs


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory):
    runs = tmp_path_factory.mktemp("mirrored-runs")
    code = (
        f"import json, support; print(json.dumps(support.mirrored_against_one_device(2, {N}, ['sgd', "
        f"'adam'], {str(runs)!r})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "runs": runs}


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_mirrored_over_two_devices_equals_one_device(mirrored, optimizer):
    found = mirrored[optimizer]
    assert found["loss"] <= TOLERANCE[optimizer]["loss"], found
    assert max(found["weights"].values()) <= TOLERANCE[optimizer]["weights"], found
    assert found["replica_spread"] == 0.0, "the replicas' copies of a variable drifted apart"


@pytest.mark.slow
def test_a_users_model_trains_over_two_replicas_as_on_one_device(mirrored):
    """tests/my_model.py through the generic engine under MirroredStrategy: each replica 10 of the batch of
    20 (one virtual batch), the ghost layer's statistics averaged over replicas."""
    found = mirrored["generic"]
    assert found["replicas"] == 2 and found["same_steps"], found
    assert found["loss"] <= 1e-5 and found["weights"] <= 1e-4, found  # measured 1.8e-7 and 2.4e-6


@pytest.mark.slow
def test_mirrored_refuses_a_bad_split_and_a_config_for_another_width(mirrored):
    refusals = mirrored["refusals"]
    assert refusals["bad_split"] is not None and "batch 110" in refusals["bad_split"], refusals
    assert "replicas=2" in refusals["bad_split"] and "virtual batches of 10" in refusals["bad_split"]
    assert (
        refusals["wrong_replicas"] is not None and "'mirrored' with 2 replicas" in refusals["wrong_replicas"]
    )


@pytest.mark.slow
def test_run_with_the_mirrored_strategy_stores_a_two_replica_run_equal_to_one_device(mirrored, one_device):
    assert mirrored["cli"] == 0
    (stored,) = mirrored["runs"].glob("*.json")
    result = RunResult.from_dict(json.loads(stored.read_text()))
    assert result.config == RunConfig(train_examples=N, strategy="mirrored", replicas=2)
    assert (result.metadata["strategy"], result.metadata["replicas"], result.metadata["workers"]) == (
        "mirrored",
        2,
        1,
    )
    for a, b in zip(result.epochs, one_device.epochs, strict=True):
        assert a.steps == b.steps and abs(a.train_loss - b.train_loss) <= TOLERANCE["sgd"]["loss"], a.epoch


# --------------------------------------------------------------- MultiWorkerMirroredStrategy, 2 processes


def _cli(*args, **kwargs):
    return subprocess.run(
        [sys.executable, "-m", "reproduction.cli", *args],
        capture_output=True,
        text=True,
        timeout=600,
        **kwargs,
    )


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    root = tmp_path_factory.mktemp("launch")
    done = _cli(
        "launch",
        "--workers",
        "2",
        "--worker-dir",
        str(root / "workers"),
        "--",
        *RUN,
        "--runs-dir",
        str(root / "store"),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return root


@pytest.fixture(scope="module")
def one_device():
    from reproduction import data
    from reproduction.training import train

    return train(RunConfig(train_examples=N), data.load_mnist().preprocessed())


@pytest.mark.slow
def test_launch_stores_the_chiefs_result_and_the_two_workers_are_identical(launched):
    (stored,) = (launched / "store").glob("*.json")
    result = RunResult.from_dict(json.loads(stored.read_text()))
    assert result.config == RunConfig(train_examples=N, strategy="multi-worker", replicas=2)
    assert {k: result.metadata[k] for k in ("strategy", "replicas", "workers")} == {
        "strategy": "multi-worker",
        "replicas": 2,
        "workers": 2,
    }
    chief, other = (
        RunResult.from_dict(json.loads((launched / "workers" / f"worker{i}.json").read_text()))
        for i in range(2)
    )
    assert chief.epochs == result.epochs
    fields = (
        "steps",
        "train_loss",
        "test_loss",
        "test_accuracy",
        "gradient_sq",
        "gradient_trace",
        "applied_examples",
        "applied_batch_max",
    )
    assert [[getattr(e, f) for f in fields] for e in chief.epochs] == [
        [getattr(e, f) for f in fields] for e in other.epochs
    ]


@pytest.mark.slow
def test_two_workers_equal_one_device(launched, one_device):
    (stored,) = (launched / "store").glob("*.json")
    result = RunResult.from_dict(json.loads(stored.read_text()))
    assert [e.steps for e in result.epochs] == [e.steps for e in one_device.epochs]
    for a, b in zip(result.epochs, one_device.epochs, strict=True):
        for name in ("train_loss", "test_loss", "test_accuracy"):
            assert abs(getattr(a, name) - getattr(b, name)) <= TOLERANCE["sgd"]["loss"], (a.epoch, name)


@pytest.mark.slow
def test_a_second_launch_takes_the_run_from_the_store(launched):
    done = _cli("launch", "--workers", "2", "--", *RUN, "--runs-dir", str(launched / "store"))
    assert done.returncode == 0 and "from the store" in done.stdout and "worker 0" not in done.stderr


def test_launch_refuses_options_it_sets_itself(tmp_path):
    done = _cli("launch", "--workers", "2", "--", *RUN, "--strategy", "mirrored")
    assert done.returncode == 2 and "--strategy is not a run option here" in done.stderr
    done = _cli("launch", "--workers", "2", "--", "tune", "--optimizer", "sgd")
    assert done.returncode == 2 and "expected '-- run" in done.stderr


@pytest.mark.slow
def test_a_worker_that_dies_while_training_fails_the_launch_and_nothing_is_stored(tmp_path):
    store, workers = tmp_path / "store", tmp_path / "workers"
    run = [*RUN[:-1], "20000"]  # epochs long enough to die in the middle of the run
    launcher = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reproduction.cli",
            "launch",
            "--workers",
            "2",
            "--worker-dir",
            str(workers),
            "--",
            *run,
            "--runs-dir",
            str(store),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        pids = _worker_pids(launcher)
        log = workers / "worker1.log"
        deadline = time.monotonic() + 300
        while "epoch 0 trained" not in (log.read_text() if log.exists() else "") and launcher.poll() is None:
            assert time.monotonic() < deadline, "worker 1 never finished its first epoch"
            time.sleep(0.05)
        os.kill(pids[1], signal.SIGKILL)
        _, err = launcher.communicate(timeout=120)
    finally:
        launcher.kill()  # its workers die with it (launch.py: PR_SET_PDEATHSIG)
        launcher.communicate()
    assert launcher.returncode == 1, err
    assert "worker 1" in err and "SIGKILL" in err and "nothing stored" in err
    assert not store.exists() or not any(store.iterdir())
    assert not (workers / "worker0.json").exists()  # the chief, left waiting for its peer, was stopped
    for pid in pids.values():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def _listening(table_dir: str) -> set[int]:
    """The TCP ports in LISTEN state in the network namespace whose /proc/.../net directory is given."""
    ports = set()
    for name in ("tcp", "tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table_dir, name).read_text().splitlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                if state == "0A":
                    ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


@pytest.mark.slow
def test_launched_workers_listen_on_no_interface_of_this_machine(tmp_path):
    """TensorFlow's gRPC servers bind 0.0.0.0 whatever TF_CONFIG names. On Linux the workers get a network
    namespace of their own, loopback its only device: their ports listen there, on none of this machine's
    interfaces. Where the machine cannot give one, the launcher must say that they listen everywhere."""
    from reproduction.launch import PrivateNetwork

    network = PrivateNetwork()
    isolated = network.prefix is not None
    network.close()
    launcher = _long_launch(tmp_path / "store")  # the workers live long enough to be looked at
    lines = []
    try:
        for line in launcher.stderr:
            lines.append(line)
            if line.startswith("worker 1: pid "):
                break
        starts = [line.split() for line in lines if line.startswith("worker ")]
        workers = {int(w[3]): int(w[5].rstrip(",").rsplit(":", 1)[1]) for w in starts}  # pid -> port
        assert len(workers) == 2, "".join(lines)
        if not isolated:
            assert any("listen on every interface" in line for line in lines), "".join(lines)
            return
        deadline = time.monotonic() + 120
        for pid, port in workers.items():
            while port not in _listening(f"/proc/{pid}/net"):  # its gRPC server is up, in its namespace
                assert launcher.poll() is None and time.monotonic() < deadline, "a worker never listened"
                time.sleep(0.2)
            assert os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")
        assert not set(workers.values()) & _listening("/proc/self/net"), "a worker listens on this machine"
    finally:
        launcher.kill()  # its workers die with it
        launcher.communicate()


def test_without_a_private_network_the_launcher_says_its_workers_listen_everywhere(monkeypatch, tmp_path):
    """No util-linux here (or no user namespaces): no prefix, the reason, and the note with the ports."""
    from reproduction import launch

    monkeypatch.setattr(launch.shutil, "which", lambda name: None)
    network = launch.PrivateNetwork()
    assert network.prefix is None and "unshare" in network.why
    said = []
    monkeypatch.setattr(launch, "_start_worker", lambda *args: (_ for _ in ()).throw(OSError("stop here")))
    with pytest.raises(OSError, match="stop here"):
        launch.run_workers(RUN, 2, tmp_path, say=said.append)
    assert len(said) == 1 and "listen on every interface" in said[0] and "no util-linux" in said[0]


def test_a_holder_that_never_says_ready_gives_no_private_network_in_bounded_time(monkeypatch):
    """A hung ``unshare`` (or holder) must not hang the launch: no prefix, the reason, within the timeout."""
    from reproduction import launch

    monkeypatch.setattr(launch, "_HOLDER", "import time; time.sleep(60)")
    monkeypatch.setattr(launch, "_READY_TIMEOUT_S", 1)
    start = time.monotonic()
    network = launch.PrivateNetwork()
    assert network.prefix is None and "failed" in network.why
    assert time.monotonic() - start < 10


def _long_launch(store: Path) -> subprocess.Popen:
    """A launch of two workers on the whole training set, its output piped."""
    argv = [sys.executable, "-m", "reproduction.cli", "launch", "--workers", "2", "--", *RUN[:-2]]
    return subprocess.Popen(
        [*argv, "--runs-dir", str(store)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _worker_pids(launcher) -> dict[int, int]:
    pids = {}
    for line in launcher.stderr:  # "worker i: pid P on ..."
        if line.startswith("worker ") and ": pid " in line:
            pids[int(line.split()[1].rstrip(":"))] = int(line.split()[3])
        if len(pids) == 2:
            return pids
    raise AssertionError(f"the launcher ended before starting two workers: {launcher.wait()}")


@pytest.mark.slow
def test_a_killed_launcher_takes_its_workers_with_it(tmp_path):
    launcher = _long_launch(tmp_path / "store")  # workers left alone would train for a minute
    try:
        pids = _worker_pids(launcher)
    finally:
        launcher.kill()
        launcher.communicate()
    deadline = time.monotonic() + 10
    for pid in pids.values():
        while _alive(pid):
            assert time.monotonic() < deadline, f"worker pid {pid} outlived its launcher"
            time.sleep(0.1)


def _alive(pid: int) -> bool:
    """Running (not a zombie: an orphan is reaped by init, not by this test)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def test_a_multi_worker_run_with_a_bad_option_is_refused_before_its_server_takes_a_port(
    monkeypatch, tmp_path, capsys
):
    """The run's options are checked before the strategy starts this worker's gRPC server, which binds
    0.0.0.0 (it once listened there, on a port of every interface, and then refused the seed)."""
    from reproduction.cli import main

    (port,) = free_ports(1)
    monkeypatch.setenv(
        "TF_CONFIG",
        json.dumps({"cluster": {"worker": [f"127.0.0.1:{port}"]}, "task": {"type": "worker", "index": 0}}),
    )
    monkeypatch.delenv("REPRODUCTION_LAUNCHED", raising=False)
    assert main(["run", "--strategy", "multi-worker", "--seed", "-1", "--runs-dir", str(tmp_path / "r")]) == 2
    assert "seed=-1" in capsys.readouterr().err
    with socket.socket() as s:  # nobody holds it: no server was started
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
        s.bind(("127.0.0.1", port))  # fails while a server holds 0.0.0.0:port
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("launched", [False, True])
def test_a_multi_worker_run_says_its_server_listens_on_every_interface(
    monkeypatch, tmp_path, capsys, launched
):
    """Unless `launch` started it (launch says so itself, and isolates its workers where it can)."""
    import reproduction.distribute
    from reproduction.cli import main

    config = {"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 0}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(config))
    monkeypatch.delenv("REPRODUCTION_LAUNCHED", raising=False)
    if launched:
        monkeypatch.setenv("REPRODUCTION_LAUNCHED", "1")

    def no_server(*args):
        raise RuntimeError("no server in this test")

    monkeypatch.setattr(reproduction.distribute, "make_strategy", no_server)
    with pytest.raises(RuntimeError, match="no server"):
        main(["run", "--strategy", "multi-worker", "--runs-dir", str(tmp_path / "r")])
    assert ("listens on every interface (0.0.0.0)" in capsys.readouterr().err) is not launched

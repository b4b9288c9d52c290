"""``reproduction launch --workers N -- run ...``: one run across N worker processes on this machine.

Each worker is ``reproduction run ... --strategy multi-worker`` with its own ``TF_CONFIG`` naming all N on
127.0.0.1 at free ports, one replica each, on one TensorFlow thread like every run (training.THREADS). On
Linux the workers share a network namespace of their own whose only device is loopback (PrivateNetwork):
TensorFlow's gRPC servers bind every interface they see, and there that is loopback alone. Every worker
trains the same run in lockstep (tf.distribute's MultiWorkerMirroredStrategy, no ``model.fit``); each
writes its result into a private working directory, never into the store. The launcher waits for all of
them; if any dies or fails it stops the others and raises, with the tail of that worker's log, and nothing
is stored. If all succeed, their results must agree (they applied the same all-reduced updates), and only
then is worker 0's (the chief's) written to the store, atomically.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path

from reproduction.errors import UsageError
from reproduction.results import RunResult

LOOPBACK = "127.0.0.1"
# Run in a new user and network namespace by `unshare`: bring its loopback device up (SIOCGIFFLAGS,
# SIOCSIFFLAGS, IFF_UP), say so, and hold the namespace until the launcher closes stdin or dies.
_HOLDER = """
import fcntl, socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
flags = struct.unpack("16sh", fcntl.ioctl(s, 0x8913, struct.pack("16sh", b"lo", 0)))[1]
fcntl.ioctl(s, 0x8914, struct.pack("16sh", b"lo", flags | 1))
print("ready", flush=True)
sys.stdin.read()
"""
AGREEING_FIELDS = (
    "steps",
    "train_loss",
    "test_loss",
    "test_accuracy",
    "applied_lr_min",
    "applied_lr_max",
    "applied_batch_min",
    "applied_batch_max",
    "applied_examples",
    "gradient_sq",
    "gradient_trace",
)

LAUNCHED = "REPRODUCTION_LAUNCHED"  # set in the workers launch starts


class LaunchFailed(RuntimeError):
    """A launched run that did not complete on every worker, or whose workers disagree; nothing was stored."""


def free_ports(n: int) -> list[int]:
    """``n`` distinct free TCP ports on the loopback address (held open together, so never the same one)."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(n)]
        for s in sockets:
            s.bind((LOOPBACK, 0))
        return [s.getsockname()[1] for s in sockets]


class PrivateNetwork:
    """A network namespace whose only device is loopback, for the workers of one launch: TensorFlow's gRPC
    servers bind every interface of theirs (0.0.0.0, whatever TF_CONFIG names), and here that is loopback
    alone. Held by a small process that ``unshare`` (util-linux) starts in new user and network namespaces;
    each worker joins it by ``nsenter`` (which execs, so a worker keeps its pid). ``prefix`` is None where
    this machine cannot give one (not Linux, no util-linux, user namespaces disabled): the workers then
    run in the machine's own network, and ``why`` says why."""

    def __init__(self):
        self.prefix: list[str] | None = None
        self.why = ""
        self._holder: subprocess.Popen | None = None
        unshare, nsenter = shutil.which("unshare"), shutil.which("nsenter")
        if not sys.platform.startswith("linux") or unshare is None or nsenter is None:
            self.why = "no util-linux unshare and nsenter here"
            return
        try:
            self._holder = subprocess.Popen(
                [unshare, "--user", "--map-root-user", "--net", "--", sys.executable, "-c", _HOLDER],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                preexec_fn=_die_with_parent,
            )
            ready = _first_line(self._holder, _READY_TIMEOUT_S)
        except OSError as exc:
            ready, self.why = "", f"unshare failed ({exc})"
        if ready != "ready":
            self.why = self.why or f"unshare failed: {self.close()}"
            return
        target = str(self._holder.pid)
        self.prefix = [nsenter, "--target", target, "--user", "--net", "--preserve-credentials", "--"]
        try:
            probe = subprocess.run(
                [*self.prefix, sys.executable, "-c", ""],
                capture_output=True,
                text=True,
                timeout=_READY_TIMEOUT_S,
            )
            failed = (probe.stderr.strip()[-200:] or f"exit {probe.returncode}") if probe.returncode else ""
        except subprocess.TimeoutExpired:
            failed = f"no answer in {_READY_TIMEOUT_S} s"
        if failed:
            self.prefix, self.why = None, f"nsenter failed: {failed}"
            self.close()

    def close(self) -> str:
        """Ends the holder (its namespace goes with its last process) and closes its pipes; the end of what
        it wrote to stderr."""
        if self._holder is None:
            return ""
        self._holder.kill()
        err = self._holder.communicate()[1] or ""
        self._holder = None
        return err.strip()[-200:]


_READY_TIMEOUT_S = 30  # the holder answers in milliseconds; a hung unshare must not hang the launch


def _first_line(process: subprocess.Popen, timeout_s: float) -> str:
    """The first line ``process`` writes to stdout, or "" if it writes none within ``timeout_s``."""
    if process.stdout is None or not select.select([process.stdout], [], [], timeout_s)[0]:
        return ""
    return process.stdout.readline().strip()


def _die_with_parent() -> None:
    """In a worker, before exec (Linux): SIGKILL when the launcher dies, so a killed launcher leaves no
    worker waiting forever for its peers. Elsewhere nothing (the launcher still stops its workers itself)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def tf_config(ports: Sequence[int], index: int) -> str:
    return json.dumps(
        {
            "cluster": {"worker": [f"{LOOPBACK}:{p}" for p in ports]},
            "task": {"type": "worker", "index": index},
        }
    )


def _ended(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def run_workers(
    run_argv: Sequence[str],
    workers: int,
    workdir: Path,
    say: Callable[[str], None] = lambda text: print(text, file=sys.stderr, flush=True),
    poll_seconds: float = 0.2,
) -> list[RunResult]:
    """Start ``workers`` processes of ``reproduction <run_argv> --strategy multi-worker``, wait for all, and
    return their results (worker 0 first). Raises LaunchFailed, after stopping the others, if one fails."""
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise UsageError(f"workers={workers!r}: expected a positive integer")
    workdir.mkdir(parents=True, exist_ok=True)
    ports = free_ports(workers)
    network = PrivateNetwork()
    if network.prefix is None:
        say(
            f"note: no private network here ({network.why}): TensorFlow's gRPC servers listen on every "
            f"interface whatever TF_CONFIG names; keep ports {', '.join(map(str, ports))} behind a firewall "
            "(docs/scale-out.md, Security)"
        )
    procs: list[subprocess.Popen] = []
    try:
        for i in range(workers):
            procs.append(_start_worker(run_argv, i, ports, workdir, network.prefix or []))
            say(f"worker {i}: pid {procs[-1].pid} on {LOOPBACK}:{ports[i]}, log {workdir / f'worker{i}.log'}")
        _wait_for(procs, workdir, poll_seconds)
    finally:
        for p in procs:  # a worker left waiting for a dead peer would wait forever; it holds nothing to save
            if p.poll() is None:
                p.kill()
        for p in procs:
            p.wait()
        network.close()
    return [
        RunResult.from_dict(json.loads((workdir / f"worker{i}.json").read_text())) for i in range(workers)
    ]


def _start_worker(
    run_argv: Sequence[str], i: int, ports: Sequence[int], workdir: Path, prefix: Sequence[str] = ()
) -> subprocess.Popen:
    """Worker i: ``reproduction <run_argv>`` on the multi-worker strategy, its own store and output file, one
    TensorFlow thread, its TF_CONFIG; it dies with this process. ``prefix``: the private network's."""
    argv = [
        *prefix,
        sys.executable,
        "-m",
        "reproduction.cli",
        *run_argv,
        "--strategy",
        "multi-worker",
        "--fresh",
        "--runs-dir",
        str(workdir / f"worker{i}-runs"),
        "--out",
        str(workdir / f"worker{i}.json"),
    ]
    env = {
        **os.environ,
        "TF_CONFIG": tf_config(ports, i),
        "TF_NUM_INTRAOP_THREADS": "1",
        "TF_NUM_INTEROP_THREADS": "1",
        LAUNCHED: "1",  # launch says itself where its workers listen
    }
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with open(workdir / f"worker{i}.log", "w") as log:
        return subprocess.Popen(
            argv,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )


def _wait_for(procs: Sequence[subprocess.Popen], workdir: Path, poll_seconds: float) -> None:
    """Until every worker ended well; LaunchFailed naming every worker that failed by then, with its log's
    tail (a peer's death may fail the others too)."""
    while True:
        codes = [p.poll() for p in procs]
        failed = [i for i, code in enumerate(codes) if code not in (None, 0)]
        if failed:
            logs = "".join(
                f"\nThe log of worker {i} ({workdir / f'worker{i}.log'}) ends:\n"
                f"{_tail(workdir / f'worker{i}.log')}"
                for i in failed
            )
            raise LaunchFailed(
                "; ".join(f"worker {i} (pid {procs[i].pid}) {_ended(codes[i])}" for i in failed)
                + "; stopped the other workers, nothing stored."
                + logs
            )
        if all(code == 0 for code in codes):
            return
        time.sleep(poll_seconds)


def check_agree(results: Sequence[RunResult]) -> None:
    """Workers of one synchronous run applied the same updates, so they report the same epochs, exactly."""
    chief = results[0]
    for i, other in enumerate(results[1:], 1):
        if other.config != chief.config or len(other.epochs) != len(chief.epochs):
            raise LaunchFailed(
                f"worker {i} trained {other.config.key()} for {len(other.epochs)} epochs, the chief "
                f"{chief.config.key()} for {len(chief.epochs)}; nothing stored"
            )
        for a, b in zip(chief.epochs, other.epochs, strict=True):
            for name in AGREEING_FIELDS:
                x, y = getattr(a, name), getattr(b, name)
                if x != y and not (x != x and y != y):  # NaN (unmeasured) agrees with NaN
                    raise LaunchFailed(
                        f"workers disagree: epoch {a.epoch} {name} is {x!r} on the chief and {y!r} on worker "
                        f"{i}; nothing stored"
                    )


def launch(
    run_argv: Sequence[str],
    workers: int,
    store,
    worker_dir: Path | None = None,
    say: Callable[[str], None] = lambda text: print(text, file=sys.stderr, flush=True),
) -> RunResult:
    """Train one run across ``workers`` local processes and store the chief's result (see the module doc).
    ``worker_dir``: where the workers' logs and results are kept (default: a temporary directory, removed
    after a success and kept, named in the error, after a failure)."""
    keep = worker_dir is not None
    workdir = Path(worker_dir) if keep else Path(tempfile.mkdtemp(prefix="reproduction-launch-"))
    results = run_workers(run_argv, workers, workdir, say=say)
    check_agree(results)
    result = results[0]
    path = store.put(result)
    say(f"stored the chief's result: {path}")
    if not keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return result

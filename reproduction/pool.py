"""Training in parallel worker processes, for the runs whose wall clock no claim reads.

Why: on a 2-core CPU a B-100 training step gains little from a second thread (it is bound by per-op
overhead, not arithmetic), so two single-threaded processes train more runs than one two-threaded process
in the same time (benchmarks/test_engine_speed.py::test_two_single_threaded_workers_against_one_two_threaded_
process). Runs whose training seconds a claim reads never come here (the timing policy: reproduction/
runner.py).

Each worker is spawned (TensorFlow does not survive a fork), runs one intra-op and one inter-op thread,
receives the data once and reuses a ``Trainer`` across its runs. Op determinism holds in a worker: a run
trained there is bit-identical on every rerun there. It is not bit-identical to the same config trained
with two threads (reductions split differently), which is why the thread count is fixed here and recorded in
each run's metadata.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import time
from collections.abc import Iterator, Sequence

from reproduction.config import RunConfig
from reproduction.results import RunResult

WORKER_THREADS = 1
DEFAULT_WORKERS = max(1, min(os.cpu_count() or 1, 4))  # each worker holds TensorFlow and the data (~1 GB)

_trainer = None  # the worker's Trainer, made by _start


def check_workers(workers) -> int:
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 0:
        raise ValueError(f"workers={workers!r}: expected an integer >= 0 (0: train every run in this process)")
    return workers


def _start(data) -> None:
    import signal

    import tensorflow as tf

    # Ctrl-C reaches the whole process group: only the main process handles it (it stops the workers), so a
    # worker never swallows the interrupt and goes on to its next run.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    tf.config.threading.set_intra_op_parallelism_threads(WORKER_THREADS)
    tf.config.threading.set_inter_op_parallelism_threads(WORKER_THREADS)
    from reproduction.training import Trainer

    global _trainer
    _trainer = Trainer(data)


def _train(config: dict) -> dict:
    result = _trainer.train(RunConfig.from_dict(config))
    result.metadata["trained_in"] = "worker"
    result.metadata["worker_pid"] = os.getpid()
    return result.to_dict()


def train_in_workers(configs: Sequence[RunConfig], data, workers: int) -> Iterator[RunResult]:
    """Train ``configs`` in ``workers`` single-threaded processes; yield each result as it finishes.

    Interrupted (Ctrl-C, an error, the caller stops iterating): the workers are stopped at once; runs in
    flight are lost, finished ones were already yielded (and stored by the caller)."""
    check_workers(workers)
    if not configs:
        return
    context = multiprocessing.get_context("spawn")
    before = set(multiprocessing.active_children())  # whatever this pool starts is ours to stop
    pool = concurrent.futures.ProcessPoolExecutor(max_workers=max(1, min(workers, len(configs))),
                                                  mp_context=context, initializer=_start, initargs=(data,))
    completed = False
    try:
        futures = [pool.submit(_train, c.to_dict()) for c in configs]
        for future in concurrent.futures.as_completed(futures):
            yield RunResult.from_dict(future.result())
        completed = True
    finally:
        if completed:
            pool.shutdown(wait=True)
        else:
            _stop(pool, before)


def _stop(pool: concurrent.futures.ProcessPoolExecutor, before: set) -> None:
    """Drop the queued runs and end the running ones now (shutdown alone would let them finish). Every child
    process started since ``before`` is ended, not only those the executor lists: on Python 3.11 its manager
    thread replaces a worker that exits until it has seen the shutdown, so a replacement could outlive the
    stop (seen in CI). Ended until none is left, at most 10 s."""
    terminate = getattr(pool, "terminate_workers", None)  # Python 3.14+
    if terminate is not None:
        terminate()
    manager = getattr(pool, "_executor_manager_thread", None)  # the thread that would start a replacement
    pool.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        started = [p for p in multiprocessing.active_children() if p not in before]
        if not started and (manager is None or not manager.is_alive()):
            return
        if not started:
            manager.join(timeout=0.1)
        for process in started:
            process.terminate()
        for process in started:
            process.join(timeout=max(0.0, deadline - time.monotonic()))

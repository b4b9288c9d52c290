"""The runner: which runs are missing, where each trains, and the store that keeps them.

Timing policy. A run whose training seconds a claim reads (``timed``: claims.timed_configs) trains here in the
main process, alone on the machine, in the order given: blocks of one optimizer and seed, schedules in
counterbalanced order, one block at a time, its runs' epochs interleaved; each records the CPU time other
processes used meanwhile (reproduction/hostload.py), so the timing claims check that it was alone. Every other
run trains on Dask workers (reproduction/cluster.py): by default a LocalCluster of ``workers`` processes on
127.0.0.1, after the timed runs; ``workers=0`` trains them here too. With a ``scheduler`` address everything
goes to that cluster, the timed runs as blocks on workers that hold a whole machine. Each run's metadata
records where it trained. A stored run that a claim needs timed but that was not trained timed is trained
again, timed.

Nothing is lost: each run is written to the store atomically as soon as it ends, a run already stored is
never trained again (unless ``fresh``), and an interrupted job resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from reproduction.cluster import as_source, check_scheduler, check_workers, train_on_cluster
from reproduction.config import RunConfig
from reproduction.errors import UsageError
from reproduction.hostload import alone
from reproduction.results import EpochRecord, RunResult
from reproduction.sharing import Prefixes, share
from reproduction.store import RunLocks, RunStore
from reproduction.workloads import get_workload


@dataclasses.dataclass(frozen=True)
class Outcome:
    runs: dict[RunConfig, RunResult]  # every config asked for, in the order asked
    trained: tuple[RunConfig, ...]  # those trained now (the rest came from the store)


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def timed_blocks(timed: Sequence[RunConfig]) -> list[tuple[RunConfig, ...]]:
    """Consecutive timed runs of one (optimizer, seed): the blocks a wall-clock claim pairs."""
    blocks: list[list[RunConfig]] = []
    for c in timed:
        if blocks and (blocks[-1][0].optimizer, blocks[-1][0].seed) == (c.optimizer, c.seed):
            blocks[-1].append(c)
        else:
            blocks.append([c])
    return [tuple(b) for b in blocks]


def was_timed(result: RunResult) -> bool:
    """Trained timed and alone (hostload.alone): a run from a worker has no host-load record, and one that
    shared the machine is trained again when a claim needs its seconds."""
    return alone(result.metadata.get("host_load"))


@dataclasses.dataclass
class _Job:
    """One call of ``run_all``: what is asked, what is found, what trains where."""

    configs: list[RunConfig]
    store: RunStore
    timed: set[RunConfig]
    say: Callable[[str], None]
    quiet: bool
    tensorboard: Path | None
    runs: dict = dataclasses.field(default_factory=dict)
    trained: list = dataclasses.field(default_factory=list)
    start: float = dataclasses.field(default_factory=time.perf_counter)
    locks: RunLocks = dataclasses.field(init=False)

    def __post_init__(self):
        self.locks = self.store.locks()

    def label(self, config: RunConfig) -> str:
        return f"[run {self.configs.index(config) + 1}/{len(self.configs)}] {config.key()}"

    def stored(self, config: RunConfig, fresh: bool) -> RunResult | None:
        found = None if fresh else self.store.get(config)
        return found if found is not None and (config not in self.timed or was_timed(found)) else None

    def missing(self, fresh: bool) -> tuple[list[RunConfig], list[RunConfig]]:
        """(runs to train here, claimed; runs another process sharing the store is training now)."""
        pending, elsewhere = [], []
        for config in self.configs:
            found = self.stored(config, fresh)
            if found is not None:
                self.runs[config] = found
            elif self.locks.claim(config):
                pending.append(config)
            else:
                elsewhere.append(config)
        return pending, elsewhere

    def wait_for(self, elsewhere: Sequence[RunConfig]) -> list[RunConfig]:
        """Wait for the runs another process was training; those it did not store are claimed for here."""
        left = []
        for config in elsewhere:
            self.say(
                f"{self.label(config)}: another process sharing {self.store.root} is training it; waiting"
            )
            self.locks.claim(config, wait=True)
            found = self.stored(config, fresh=False)
            if found is not None:
                self.runs[config] = found
                self.locks.release(config)
            else:
                left.append(config)
        return left

    def finished(self, result: RunResult, where: str = "") -> None:
        self.store.put(result)  # atomic: a killed job loses at most the runs in flight
        self.locks.release(result.config)
        self.runs[result.config] = result
        self.trained.append(result.config)
        if self.tensorboard is not None:
            from reproduction.tensorboard_log import write_tensorboard

            write_tensorboard(result, self.tensorboard)
        self.say(
            f"{self.label(result.config)}: test accuracy {100 * result.final.test_accuracy:.2f}%, train "
            f"{result.train_seconds:.1f} s{where} (elapsed {time.perf_counter() - self.start:.0f} s)"
        )

    def train_here(self, configs: Sequence[RunConfig], source, strategy) -> None:
        """Train ``configs`` in this process: the timed ones first, block by block, their epochs interleaved
        (training.Trainer.train_timed); the rest from the prefixes they share (reproduction/sharing.py), each
        prefix trained once, just before the first run that needs it."""
        if not configs:
            return
        from reproduction.training import Trainer  # TensorFlow starts only when something trains

        trainer = Trainer(source.load(), strategy=strategy)
        for block in timed_blocks([c for c in configs if c in self.timed]):
            epochs = sum(c.build_schedule().epochs for c in block)
            self.say(
                f"{self.label(block[0])}: training the timed block of {len(block)} run(s) "
                f"({', '.join(c.schedule for c in block)}; {epochs} epochs, interleaved)"
            )
            on_epoch = None if self.quiet else _progress_bar(epochs)
            for result in trainer.train_timed(block, on_epoch=on_epoch):
                self.finished(result)
        plan = share([c for c in configs if c not in self.timed])

        def train_prefix(prefix, parent):
            self.say(f"the first {prefix.epochs} epochs of {prefix.runs} runs, once: {prefix.config.key()}")
            return trainer.train_prefix(prefix.config, prefix.epochs, parent)

        prefixes = Prefixes(plan, train_prefix)
        for config in [c for c in configs if c not in self.timed]:
            shared = plan.shared_epochs(config)
            self.say(
                f"{self.label(config)}: training ({config.build_schedule().epochs} epochs"
                + (f", the first {shared} shared" if shared else "")
                + ")"
            )
            on_epoch = None if self.quiet else _progress_bar(config.build_schedule().epochs)
            self.finished(trainer.train(config, on_epoch=on_epoch, start=prefixes.start(config)))


def _progress_bar(epochs: int) -> Callable[[EpochRecord], None]:
    """A bar over ``epochs`` epochs, one step per record (a timed block's records come interleaved)."""
    import keras

    bar = keras.utils.Progbar(epochs, unit_name="epoch", stateful_metrics=["loss", "acc"])
    done = [0]

    def update(e: EpochRecord) -> None:
        done[0] += 1
        bar.update(done[0], values=[("loss", e.train_loss), ("acc", e.test_accuracy)])

    return update


def run_all(
    configs: list[RunConfig],
    data,
    store: RunStore,
    *,
    fresh: bool = False,
    quiet: bool = False,
    tensorboard: Path | None = None,
    say=say,
    timed: Sequence[RunConfig] | None = None,
    workers: int = 0,
    scheduler: str | None = None,
    strategy=None,
    tls=None,
) -> Outcome:
    """Train (or take from the store) every config; progress through ``say`` (stderr).

    ``data``: preprocessed arrays, or a data source that each process loads itself (data.DatasetSource).
    ``timed``: the configs whose training seconds a claim reads (None: all), in their order. Without
    ``scheduler`` they train first, here, alone, and the others on a LocalCluster of ``workers`` processes
    (``workers=0``: here too). With ``scheduler`` all go to that cluster, the timed ones as blocks. Each run
    is stored as soon as it ends; runs that fail on the cluster are raised together (cluster.RunFailed) after
    every other run was stored. ``strategy``: a tf.distribute strategy for the runs trained here
    (reproduction/distribute.py); only with ``workers=0`` and no scheduler. ``tls``: cluster.Tls, this
    client's certificates for a tls:// scheduler. A run another process sharing the store is training is
    waited for, not trained twice (store.RunLocks)."""
    _check_not_bootstrapping()
    check_workers(workers)
    scheduler = check_scheduler(scheduler)
    if strategy is not None and (workers or scheduler):
        raise UsageError(
            f"strategy: a tf.distribute strategy trains in this process only; got workers={workers}, "
            f"scheduler={scheduler!r} (use workers=0 and no scheduler)"
        )
    job = _Job(list(configs), store, set(configs if timed is None else timed), say, quiet, tensorboard)
    try:
        pending, elsewhere = job.missing(fresh)
        _train(job, pending, data, workers, scheduler, strategy, tls, configs if timed is None else timed)
        left = job.wait_for(elsewhere)
        _train(job, left, data, 0, None, strategy, tls, left)
    finally:
        job.locks.release_all()
    say(
        f"{len(configs)} runs: {len(job.trained)} trained now, {len(configs) - len(job.trained)} from "
        f"{store.root}"
    )
    return Outcome({c: job.runs[c] for c in configs}, tuple(job.trained))


def _check_not_bootstrapping() -> None:
    # A script without a main guard runs again in every spawned worker; there it would wait forever on
    # the locks its parent holds.
    import multiprocessing

    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise UsageError(
            "run_all: called while a worker process imports the main script; guard the script's code "
            'with `if __name__ == "__main__":`'
        )


def _train(job: _Job, pending, data, workers, scheduler, strategy, tls, timed_order) -> None:
    """Train ``pending``: the timed ones first, here, in ``timed_order``; the rest on workers (or here)."""
    if not pending:
        return
    source = as_source(data)  # only now: with nothing to train the data are never needed
    if any(get_workload(c.workload).build_model is not None for c in pending):
        from reproduction.training import check_models

        check_models(pending, source.load())  # a user's model that cannot train: refused before any run
    missing = set(pending)
    timed = [c for c in timed_order if c in missing and c in job.timed]
    untimed = [c for c in pending if c not in job.timed]
    if scheduler is not None:
        blocks, here, pooled = timed_blocks(timed), [], untimed
    else:
        blocks = []
        here = timed + (untimed if workers == 0 else [])
        pooled = [] if workers == 0 else untimed
    job.train_here(here, source, strategy)
    if pooled or blocks:
        where = (
            f"on the Dask cluster at {scheduler}"
            if scheduler
            else f"in {min(workers, len(pooled))} worker processes (a Dask LocalCluster on 127.0.0.1)"
        )
        plan = share(pooled)
        job.say(
            f"training {len(pooled)} untimed runs ({plan.epochs_trained()} epochs, not "
            f"{plan.epochs_whole()}: {len(plan.prefixes)} first-epoch prefixes shared) and {len(blocks)} "
            f"timed blocks {where}"
        )
        for result in train_on_cluster(pooled, source, workers, scheduler, blocks, tls, job.say):
            job.finished(result, f" on {result.metadata.get('worker')}")

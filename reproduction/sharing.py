"""Runs that begin alike train their common first epochs once.

A run's trajectory is fixed by its *lineage* (workload, model, optimizer, momentum, seed, data, strategy)
and its epochs' (learning rate, batch size): each epoch shuffles from (seed, epoch) and every op sums in one
order (reproduction/training.py). So two runs of one lineage whose schedules agree on their first k epochs
hold the same weights and optimizer state after epoch k, bit for bit, and record the same first k epochs.
Decay, hybrid, increase and the constant control all begin with two epochs at the base rate and batch, and
hybrid and increase agree for four: trained as a tree, a family of these four trains 16 epochs, not 24.

Only runs whose seconds no claim reads share (the runner's untimed runs): a timed run trains every epoch
itself, alone. A run that shares records it in its metadata (``shared_epochs``); the seconds of those epochs
are the ones measured when they were trained, once, for all the runs that share them.

Pure: configs in, a plan out; nothing here trains.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from reproduction.config import RunConfig

# The fields that shape a schedule: they act on the trajectory only through the epochs' (rate, batch) and the
# schedule's momentum. Every other field (including any added later) is part of the lineage.
SCHEDULE_FIELDS = frozenset({"schedule", "base_lr", "base_batch", "factor", "steps", "epochs_per_step"})


def lineage(config: RunConfig) -> tuple:
    """What a run's trajectory depends on besides its epochs' rates and batches."""
    fields = tuple(
        (f.name, getattr(config, f.name)) for f in dataclasses.fields(config) if f.name not in SCHEDULE_FIELDS
    )
    return (*fields, ("momentum", config.momentum))


def epoch_plan(config: RunConfig) -> tuple[tuple[float, int], ...]:
    """(learning rate, batch size) of each epoch."""
    return tuple((p.learning_rate, p.batch_size) for p in config.build_schedule().per_epoch())


def shares_start(config: RunConfig, other: RunConfig, epochs: int) -> bool:
    """Whether ``config``'s first ``epochs`` epochs are ``other``'s: the same lineage and (rate, batch)."""
    return (
        lineage(config) == lineage(other)
        and 0 <= epochs <= min(len(epoch_plan(config)), len(epoch_plan(other)))
        and epoch_plan(config)[:epochs] == epoch_plan(other)[:epochs]
    )


@dataclasses.dataclass(frozen=True)
class Prefix:
    """The first ``epochs`` epochs of ``config`` (and of every run that starts from it), trained once from
    prefix ``parent`` (an index into SharePlan.prefixes; None: from the initial weights)."""

    config: RunConfig
    epochs: int
    parent: int | None
    runs: int  # how many runs share these epochs


@dataclasses.dataclass(frozen=True)
class SharePlan:
    """Prefixes (each after its parent) and, per run, the prefix it starts from (None: from scratch)."""

    prefixes: tuple[Prefix, ...]
    starts: dict[RunConfig, int | None]

    def start(self, config: RunConfig) -> int | None:
        return self.starts[config]

    def shared_epochs(self, config: RunConfig) -> int:
        i = self.starts[config]
        return 0 if i is None else self.prefixes[i].epochs

    def epochs_whole(self) -> int:
        """Epochs the runs would train without sharing."""
        return sum(len(epoch_plan(c)) for c in self.starts)

    def epochs_trained(self) -> int:
        """Epochs trained in all, prefixes included (without sharing: the sum of the runs' epochs)."""
        own = sum(len(epoch_plan(c)) - self.shared_epochs(c) for c in self.starts)
        parents = sum(
            p.epochs - (0 if p.parent is None else self.prefixes[p.parent].epochs) for p in self.prefixes
        )
        return own + parents


def share(configs: Sequence[RunConfig]) -> SharePlan:
    """The prefixes worth training once: each point where runs of one lineage that agreed so far part (or
    where one of them ends), if at least two runs pass through it. Configs keep their order; prefixes come
    parents first."""
    groups: dict[tuple, list[RunConfig]] = {}
    for c in dict.fromkeys(configs):
        groups.setdefault(lineage(c), []).append(c)
    prefixes: list[Prefix] = []
    starts: dict[RunConfig, int | None] = {}
    for group in groups.values():
        _branch(group, 0, None, prefixes, starts)
    return SharePlan(tuple(prefixes), {c: starts[c] for c in dict.fromkeys(configs)})


def _branch(group: list[RunConfig], depth: int, parent: int | None, prefixes: list, starts: dict) -> None:
    """Runs that agree on their first ``depth`` epochs and start from ``parent``: find where they part."""
    if len(group) == 1:
        starts[group[0]] = parent
        return
    plans = [epoch_plan(c) for c in group]
    agreed = depth
    while all(len(p) > agreed for p in plans) and len({p[agreed] for p in plans}) == 1:
        agreed += 1
    if agreed > depth:  # a common stretch: train it once
        prefixes.append(Prefix(group[0], agreed, parent, len(group)))
        parent = len(prefixes) - 1
    branches: dict = {}
    for c, p in zip(group, plans, strict=True):
        branches.setdefault(p[agreed] if len(p) > agreed else None, []).append(c)
    for key, members in branches.items():
        if key is None:  # runs that end here: they are the prefix
            for c in members:
                starts[c] = parent
        else:
            _branch(members, agreed, parent, prefixes, starts)


class Prefixes:
    """A plan's prefixes, each trained (``train(prefix, parent_state) -> state``) when a run first needs it
    and dropped when no run or prefix needs it any more: a grid holds only the states still to be used."""

    def __init__(self, plan: SharePlan, train: Callable[[Prefix, Any], Any]):
        self.plan, self.train = plan, train
        self._held: dict[int, Any] = {}
        self._users = Counter(i for i in plan.starts.values() if i is not None)
        self._users.update(p.parent for p in plan.prefixes if p.parent is not None)

    def start(self, config: RunConfig) -> Any:
        """The state ``config`` starts from (None: from scratch); call once per run."""
        i = self.plan.start(config)
        state = self._get(i)
        self._release(i)
        return state

    def _get(self, i: int | None) -> Any:
        if i is None or i in self._held:
            return None if i is None else self._held[i]
        prefix = self.plan.prefixes[i]
        state = self.train(prefix, self._get(prefix.parent))
        self._release(prefix.parent)
        self._held[i] = state
        return state

    def _release(self, i: int | None) -> None:
        if i is not None:
            self._users[i] -= 1
            if self._users[i] <= 0:
                self._held.pop(i, None)

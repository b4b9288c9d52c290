"""Schedules as data: a schedule is a tuple of phases (epochs, learning rate, batch size).

Units: schedule boundaries are in *epochs* (counted from 0); counts are in *parameter updates*. An epoch
over N examples at batch size B takes ceil(N / B) updates: the training loop keeps the last, partial batch
(ghost batch norm gives it a smaller last virtual batch), so the two always agree.

Everything else (per-epoch values, noise scale, update counts) is derived by pure functions. The factories
follow Smith et al. (2018), Section 5: at each step the noise scale g = eps * (N/B - 1) / (1 - m), about
eps * N / (B * (1 - m)), drops by ``factor``, either through eps (decay), through B (increase), or B first
and then eps (hybrid: the paper's "hybrid" grows B at the first step and decays eps afterwards).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

from reproduction.errors import UsageError


@dataclasses.dataclass(frozen=True)
class Phase:
    epochs: int  # how many epochs this phase lasts
    learning_rate: float  # eps during the phase
    batch_size: int  # B during the phase

    def __post_init__(self):
        if not isinstance(self.epochs, int) or isinstance(self.epochs, bool) or self.epochs < 1:
            raise UsageError(f"Phase.epochs={self.epochs!r}: expected a positive integer")
        if (
            not isinstance(self.learning_rate, int | float)
            or not math.isfinite(self.learning_rate)
            or self.learning_rate <= 0
        ):
            raise UsageError(f"Phase.learning_rate={self.learning_rate!r}: expected a finite number > 0")
        if not isinstance(self.batch_size, int) or isinstance(self.batch_size, bool) or self.batch_size < 1:
            raise UsageError(f"Phase.batch_size={self.batch_size!r}: expected a positive integer")


@dataclasses.dataclass(frozen=True)
class Schedule:
    name: str
    phases: tuple[Phase, ...]
    momentum: float | None = None  # set by schedules that prescribe it (the increased-momentum variant)

    def __post_init__(self):
        if not self.name:
            raise UsageError("Schedule.name: expected a non-empty string")
        if not self.phases or not all(isinstance(p, Phase) for p in self.phases):
            raise UsageError(f"Schedule.phases={self.phases!r}: expected a non-empty tuple of Phase")
        if self.momentum is not None and not 0.0 <= self.momentum < 1.0:
            raise UsageError(f"Schedule.momentum={self.momentum!r}: expected None or 0 <= momentum < 1")

    # -- per epoch
    @property
    def epochs(self) -> int:
        return sum(p.epochs for p in self.phases)

    def phase(self, epoch: int) -> Phase:
        if not isinstance(epoch, int) or not 0 <= epoch < self.epochs:
            raise UsageError(f"epoch={epoch!r}: expected an integer in [0, {self.epochs})")
        for p in self.phases:
            if epoch < p.epochs:
                return p
            epoch -= p.epochs
        raise AssertionError("unreachable")

    def learning_rate(self, epoch: int) -> float:
        return self.phase(epoch).learning_rate

    def batch_size(self, epoch: int) -> int:
        return self.phase(epoch).batch_size

    def per_epoch(self) -> list[Phase]:
        """One Phase(epochs=1, ...) per epoch."""
        return [dataclasses.replace(self.phase(e), epochs=1) for e in range(self.epochs)]

    # -- derived quantities
    def check_fits(self, n_examples: int) -> None:
        largest = max(p.batch_size for p in self.phases)
        if largest > n_examples:
            raise UsageError(
                f"schedule {self.name!r}: batch size {largest} exceeds the {n_examples} examples"
            )

    def updates_per_epoch(self, n_examples: int) -> list[int]:
        self.check_fits(n_examples)
        return [math.ceil(n_examples / p.batch_size) for p in self.per_epoch()]

    def parameter_updates(self, n_examples: int) -> int:
        return sum(self.updates_per_epoch(n_examples))

    def noise_scale(self, n_examples: int, momentum: float = 0.0, exact: bool = False) -> list[float]:
        """g per epoch: eps*N/(B(1-m)), or with ``exact`` eps*(N/B - 1)/(1-m) (Smith et al., eq. 4-5)."""
        self.check_fits(n_examples)
        if self.momentum is not None:
            momentum = self.momentum
        if not 0.0 <= momentum < 1.0:
            raise UsageError(f"momentum={momentum!r}: expected 0 <= momentum < 1")
        out = []
        for p in self.per_epoch():
            ratio = n_examples / p.batch_size - (1.0 if exact else 0.0)
            out.append(p.learning_rate * ratio / (1.0 - momentum))
        return out


# ----------------------------------------------------------------------------------------------- factories
def _check_factory_args(base_lr, base_batch, factor, steps, epochs_per_step):
    if not isinstance(base_lr, int | float) or not math.isfinite(base_lr) or base_lr <= 0:
        raise UsageError(f"base_lr={base_lr!r}: expected a finite number > 0")
    for name, value in (
        ("base_batch", base_batch),
        ("factor", factor),
        ("steps", steps),
        ("epochs_per_step", epochs_per_step),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise UsageError(f"{name}={value!r}: expected a positive integer")


def decay_lr(base_lr=0.1, base_batch=100, factor=5, steps=3, epochs_per_step=2) -> Schedule:
    """B fixed; eps divided by ``factor`` at each step."""
    _check_factory_args(base_lr, base_batch, factor, steps, epochs_per_step)
    return Schedule(
        "decay", tuple(Phase(epochs_per_step, base_lr / factor**i, base_batch) for i in range(steps))
    )


def increase_batch(base_lr=0.1, base_batch=100, factor=5, steps=3, epochs_per_step=2) -> Schedule:
    """eps fixed; B multiplied by ``factor`` at each step."""
    _check_factory_args(base_lr, base_batch, factor, steps, epochs_per_step)
    return Schedule(
        "increase", tuple(Phase(epochs_per_step, base_lr, base_batch * factor**i) for i in range(steps))
    )


def hybrid(base_lr=0.1, base_batch=100, factor=5, steps=3, epochs_per_step=2) -> Schedule:
    """The paper's hybrid: B grows by ``factor`` at the first step only, eps decays at every later step."""
    _check_factory_args(base_lr, base_batch, factor, steps, epochs_per_step)
    phases = [Phase(epochs_per_step, base_lr, base_batch)]
    phases += [
        Phase(epochs_per_step, base_lr / factor ** (i - 1), base_batch * factor) for i in range(1, steps)
    ]
    return Schedule("hybrid", tuple(phases))


def constant(base_lr=0.1, base_batch=100, factor=5, steps=3, epochs_per_step=2) -> Schedule:
    """No noise reduction at all (a control); ``factor`` is accepted for a uniform signature."""
    _check_factory_args(base_lr, base_batch, factor, steps, epochs_per_step)
    return Schedule("constant", (Phase(steps * epochs_per_step, base_lr, base_batch),))


def increased_initial_lr(
    base_lr=0.1, base_batch=100, factor=5, steps=3, epochs_per_step=2, initial_factor=5
) -> Schedule:
    """Paper 5.2: increase-batch with eps and B both scaled by ``initial_factor`` from the start (same g)."""
    _check_factory_args(base_lr, base_batch, factor, steps, epochs_per_step)
    if not isinstance(initial_factor, int) or isinstance(initial_factor, bool) or initial_factor < 1:
        raise UsageError(f"initial_factor={initial_factor!r}: expected a positive integer")
    base = increase_batch(
        base_lr * initial_factor, base_batch * initial_factor, factor, steps, epochs_per_step
    )
    return dataclasses.replace(base, name="increase-initial-lr")


def increased_momentum(
    base_lr=0.1, base_batch=100, factor=5, steps=3, epochs_per_step=2, momentum=0.9, new_momentum=0.98
) -> Schedule:
    """Paper 5.2: increase-batch with momentum raised to ``new_momentum`` and every batch multiplied by
    (1 - m_old) / (1 - m_new) (= 5 for 0.9 -> 0.98), which keeps g = eps N / (B (1 - m)) unchanged.
    The multiplier must be a whole number, else construction fails."""
    _check_factory_args(base_lr, base_batch, factor, steps, epochs_per_step)
    if not (0.0 <= momentum < 1.0 and 0.0 <= new_momentum < 1.0):
        raise UsageError(f"momentum={momentum!r}, new_momentum={new_momentum!r}: expected both in [0, 1)")
    ratio = (1.0 - momentum) / (1.0 - new_momentum)
    scale = round(ratio)
    if scale < 1 or abs(scale - ratio) > 1e-9 * ratio:
        raise UsageError(
            f"new_momentum={new_momentum!r}: (1 - {momentum}) / (1 - {new_momentum}) = {ratio:.6g} is not a "
            "whole batch-size multiple"
        )
    base = increase_batch(base_lr, base_batch * scale, factor, steps, epochs_per_step)
    return Schedule("increase-momentum", base.phases, momentum=new_momentum)


ScheduleFactory = Callable[..., Schedule]
SCHEDULES: dict[str, ScheduleFactory] = {
    "decay": decay_lr,
    "hybrid": hybrid,
    "increase": increase_batch,
    "constant": constant,
    "increase-initial-lr": increased_initial_lr,
    "increase-momentum": increased_momentum,
}
MAIN_SCHEDULES = ("decay", "hybrid", "increase")  # the paper's three, compared in every claim


def get_schedule(name: str) -> ScheduleFactory:
    try:
        return SCHEDULES[name]
    except (KeyError, TypeError):
        raise UsageError(f"schedule={name!r}: unknown; known schedules are {sorted(SCHEDULES)}") from None


def cap_batch(schedule: Schedule, max_batch: int) -> Schedule:
    """Cap every phase's batch at ``max_batch`` and decay eps instead by the missing factor, keeping g
    (the paper's Section 5.2 caps B at 5120 on CIFAR-10 and decays eps for the rest)."""
    phases = tuple(
        p
        if p.batch_size <= max_batch
        else Phase(p.epochs, p.learning_rate * max_batch / p.batch_size, max_batch)
        for p in schedule.phases
    )
    return dataclasses.replace(schedule, phases=phases)

"""The run plan: which configurations the claims need, which of them are timed, and the pre-registered
negative controls. Nothing here trains or judges."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from reproduction.annealing import HIGH_NOISE
from reproduction.config import ModelOptions, RunConfig
from reproduction.optimizers import OPTIMIZERS, get_optimizer
from reproduction.schedules import MAIN_SCHEDULES

REPORT_ACCURACY = {"decay": 97.66, "increase": 97.44, "hybrid": 97.59}  # report notebooks @ b002b57, percent
REPORT_LR = {"decay": 0.15, "increase": 0.07, "hybrid": 0.05}  # the report's own SGD base rates per schedule
ZHOU_ACCURACY = 97.44  # the report's Adam baseline (Victor Zhou's CNN), percent
ZHOU_SECONDS = 49.19  # its wall clock on the report's machine


@dataclasses.dataclass(frozen=True)
class Profile:
    name: str
    seeds: int  # seeds per configuration
    full: bool = (
        True  # False: the claims marked Claim.full_profile_only (and their runs) are left to the full
    )
    #                    profile, so that the quick profile's main job fits in 10 minutes on 2 cores

    def seed_list(self) -> tuple[int, ...]:
        return tuple(range(self.seeds))


PROFILES = {"quick": Profile("quick", 3, full=False), "full": Profile("full", 10)}


def get_profile(name: str, seeds: int | None = None) -> Profile:
    if name not in PROFILES:
        raise ValueError(f"profile={name!r}: unknown; known profiles are {sorted(PROFILES)}")
    profile = PROFILES[name]
    if seeds is not None:
        if not isinstance(seeds, int) or seeds < 1:
            raise ValueError(
                f"seeds={seeds!r}: expected a positive integer (with 1, every statistical claim "
                "is undecided: there is no spread to test against)"
            )
        profile = dataclasses.replace(profile, seeds=seeds)
    return profile


def grid_configs(seeds: Sequence[int]) -> list[RunConfig]:
    """Every optimizer x the three schedules, seed-major so each seed's schedules train back to back
    (decay, hybrid, increase, decay, ...): the interleaving the wall-clock claims rely on."""
    return [
        RunConfig(optimizer=o, schedule=s, seed=seed)
        for seed in seeds
        for o in OPTIMIZERS
        for s in MAIN_SCHEDULES
    ]


def timed_configs(seeds: Sequence[int]) -> list[RunConfig]:
    """The runs whose training seconds a claim reads (increase-faster-than-decay, epoch-time-falls-with-batch):
    the main grid. They train one at a time, alone on the machine, with every core (the timing policy:
    reproduction/runner.py)."""
    return grid_configs(seeds)


def effective_lr_configs(seeds):
    return [
        RunConfig(optimizer="momentum", schedule=s, seed=seed)
        for seed in seeds
        for s in ("increase-initial-lr", "increase-momentum")
    ]


def noise_control_configs(seeds):
    """eps/5 at B 100 vs eps at B 500 (decay): equal noise scale, SGD."""
    lr = get_optimizer("sgd").base_lr
    out = []
    for seed in seeds:
        out += [
            RunConfig("sgd", "decay", seed, base_lr=lr / 5, base_batch=100),
            RunConfig("sgd", "decay", seed, base_lr=lr, base_batch=500),
        ]
    return out


QUANTITIES = ("train_loss", "test_accuracy")


@dataclasses.dataclass(frozen=True)
class Control:
    """A negative control, pre-registered: a configuration the paper's theory says must *not* match decay,
    compared with decay by the same TOST and margin as the equivalence claim it guards. It must come out
    beyond the margin in the stated ``direction``; equivalent or undecided is a red test (the margin
    would not tell this configuration from decay at the seeds used)."""

    name: str
    description: str
    quantity: str  # "train_loss" (guards train-loss-equivalent) or "test_accuracy" (accuracy-within-1pt)
    direction: int  # +1: control - decay must exceed +margin; -1: must fall below -margin
    schedule: str
    lr_divisor: int = 1  # the optimizer's base rate divided by this
    base_batch: int = 100

    def __post_init__(self):
        if self.quantity not in QUANTITIES:
            raise ValueError(f"Control.quantity={self.quantity!r}: expected one of {list(QUANTITIES)}")
        if self.direction not in (-1, 1):
            raise ValueError(f"Control.direction={self.direction!r}: expected +1 or -1")
        for name in ("lr_divisor", "base_batch"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Control.{name}={value!r}: expected a positive integer")
        self.config(next(iter(OPTIMIZERS)), 0)  # validates the schedule through RunConfig

    def config(self, optimizer: str, seed: int) -> RunConfig:
        lr = get_optimizer(optimizer).base_lr / self.lr_divisor
        return RunConfig(
            optimizer,
            self.schedule,
            seed,
            base_lr=None if self.lr_divisor == 1 else lr,
            base_batch=self.base_batch,
        )


CONTROLS = (
    Control("constant", "no noise reduction: eps and B 100 for all six epochs", "train_loss", +1, "constant"),
    Control(
        "eps5",
        "noise scale 5x lower from the start: decay at eps/5, B 100",
        "test_accuracy",
        -1,
        "decay",
        lr_divisor=5,
    ),
    Control(
        "b2500",
        "B 2500 at eps for all six epochs: noise scale 25x lower, 144 updates",
        "test_accuracy",
        -1,
        "constant",
        base_batch=2500,
    ),
)


def high_noise_configs(seeds):
    """The main schedules and constant at annealing.HIGH_NOISE, where lowering g matters for plain SGD."""
    return [HIGH_NOISE.config(s, seed) for seed in seeds for s in (*MAIN_SCHEDULES, "constant")]


def control_configs(seeds):
    return [c.config(o, seed) for seed in seeds for o in OPTIMIZERS for c in CONTROLS]


def baseline_configs(seeds):
    """Victor Zhou's Keras CNN (no batch norm), Adam at Keras's default 0.001, batch 32, 6 epochs."""
    return [
        RunConfig(
            "adam", "constant", seed, base_lr=0.001, base_batch=32, model=ModelOptions(normalization="none")
        )
        for seed in seeds
    ]


def report_configs(seeds):
    """The report's own SGD settings (no momentum), one base rate per schedule as its notebooks had."""
    return [RunConfig("sgd", s, seed, base_lr=REPORT_LR[s]) for seed in seeds for s in MAIN_SCHEDULES]


def required_configs(seeds: Sequence[int], full: bool = True) -> list[RunConfig]:
    """All runs the claims need, in training order (main grid first), without duplicates. ``full=False``
    (the quick profile): without the runs of the full-profile-only claims (effective-lr, whose verdicts need
    more than 3 seeds, and the group report's own settings, baseline-adam and report-as-run)."""
    groups = [grid_configs, control_configs, high_noise_configs, noise_control_configs]
    if full:
        groups += [effective_lr_configs, baseline_configs, report_configs]
    out = []
    for group in groups:
        out += [c for c in group(seeds) if c not in out]
    return out

"""Workloads: a dataset and a model, with everything the claims need pre-registered for them.

A workload owns its setting, as a benchmark workload owns its target: the dataset (by name in
``reproduction.data``), the model options, one base learning rate per optimizer (shared by every schedule,
tuned on seeds no claim reads), the schedule parameters, the negative controls, the setting where lowering
the noise scale matters for plain SGD (``high_noise``), the profiles (seeds per verdict) and the file with
its pre-registered margins. Adding a workload is one module in this package and one line in ``_BUILT_IN``.

Seeds, by purpose, never shared: 0, 1, ... judged by the claims; ``CALIBRATION_SEEDS`` (margins and the
controls' spread), ``SEARCH_SEEDS`` (where annealing matters), ``TUNING_SEEDS`` (base rates).
No TensorFlow here: configs, the report and the store read workloads without it.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import inspect
import math
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from reproduction.config import ModelOptions, RunConfig
from reproduction.errors import UsageError
from reproduction.optimizers import get_optimizer

CALIBRATION_SEEDS = 1000  # 1000, 1001, ...: decay and the controls, for margins and power; never judged
SEARCH_SEEDS = 2000  # 2000, ...: constant against decay, where does annealing matter; never judged
TUNING_SEEDS = 3000  # 3000, ...: the base learning rates; never judged
SEEDS_PER_PURPOSE = 1000  # each purpose's seeds start this far apart: more would reach the next purpose's


def purpose_seeds(first: int, n, flag: str = "seeds") -> list[int]:
    """``n`` seeds of the purpose whose seeds start at ``first``; refused where they would reach the next."""
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= SEEDS_PER_PURPOSE:
        raise UsageError(
            f"{flag}={n!r}: expected an integer from 1 to {SEEDS_PER_PURPOSE} (seeds by purpose, never "
            f"shared: {first} onwards, below {first + SEEDS_PER_PURPOSE})"
        )
    return [first + k for k in range(n)]


QUANTITIES = ("train_loss", "test_accuracy")
# The equivalence claims a control may guard, by its quantity; the first is the default.
GUARDABLE = {
    "train_loss": ("train-loss-equivalent",),
    "test_accuracy": ("accuracy-within-1pt", "accuracy-equivalent"),
}


def _positive_int(owner: str, name: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise UsageError(f"{owner}.{name}={value!r}: expected a positive integer")


@dataclasses.dataclass(frozen=True)
class Profile:
    """How many seeds the claims judge, and how many of them train timed (alone, in order)."""

    name: str
    seeds: int  # seeds 0 .. seeds-1 per configuration
    timed_seeds: int  # the main grid of the first timed_seeds seeds trains timed, for the wall-clock claims
    full: bool = True  # False: claims marked full_profile_only are left to the full profile
    optimizers: tuple[str, ...] | None = None  # the optimizers judged; None: every one of the workload's
    all_controls: bool = True  # False: only the controls pre-registered as discriminating

    def __post_init__(self):
        _positive_int("Profile", "seeds", self.seeds)
        purpose_seeds(0, self.seeds, "Profile.seeds")  # the judged seeds stay below the calibration seeds
        _positive_int("Profile", "timed_seeds", self.timed_seeds)
        if self.timed_seeds > self.seeds:
            raise UsageError(f"Profile.timed_seeds={self.timed_seeds}: at most seeds={self.seeds}")
        for o in self.optimizers or ():
            get_optimizer(o)

    def seed_list(self) -> tuple[int, ...]:
        return tuple(range(self.seeds))

    def timed_seed_list(self) -> tuple[int, ...]:
        return tuple(range(self.timed_seeds))


@dataclasses.dataclass(frozen=True)
class Control:
    """A negative control, pre-registered: a configuration the theory says must *not* match decay, compared
    with decay by the same TOST, margin and refutation level as the equivalence claim it guards. It must
    come out beyond the margin on the predicted side (``direction``)."""

    name: str
    description: str
    quantity: str  # "train_loss" or "test_accuracy"
    direction: int  # +1: control - decay must exceed +margin; -1: must fall below -margin
    schedule: str
    lr_divisor: int = 1  # the optimizer's base rate divided by this
    batch_multiplier: int = 1  # the workload's base batch times this
    guards: str = ""  # the claim it guards (GUARDABLE[quantity]); "": the quantity's first

    def __post_init__(self):
        if self.quantity not in QUANTITIES:
            raise UsageError(f"Control.quantity={self.quantity!r}: expected one of {list(QUANTITIES)}")
        if self.guards and self.guards not in GUARDABLE[self.quantity]:
            raise UsageError(
                f"Control.guards={self.guards!r}: a {self.quantity} control guards one of "
                f"{list(GUARDABLE[self.quantity])}"
            )
        if self.direction not in (-1, 1):
            raise UsageError(f"Control.direction={self.direction!r}: expected +1 or -1")
        _positive_int("Control", "lr_divisor", self.lr_divisor)
        _positive_int("Control", "batch_multiplier", self.batch_multiplier)

    @property
    def claim(self) -> str:
        """The equivalence claim this control guards: its margin and refutation level judge it."""
        return self.guards or GUARDABLE[self.quantity][0]

    def config(self, workload: Workload, optimizer: str, seed: int) -> RunConfig:
        lr = None if self.lr_divisor == 1 else workload.learning_rate(optimizer) / self.lr_divisor
        batch = None if self.batch_multiplier == 1 else workload.base_batch * self.batch_multiplier
        return workload.config(optimizer, self.schedule, seed, base_lr=lr, base_batch=batch)


@dataclasses.dataclass(frozen=True)
class Setting:
    """An optimizer at a base rate and base batch; the schedules keep the workload's shape."""

    optimizer: str
    base_lr: float
    base_batch: int

    def __post_init__(self):
        get_optimizer(self.optimizer)
        if not (isinstance(self.base_lr, int | float) and math.isfinite(self.base_lr) and self.base_lr > 0):
            raise UsageError(f"Setting.base_lr={self.base_lr!r}: expected a finite number > 0")
        _positive_int("Setting", "base_batch", self.base_batch)

    @property
    def name(self) -> str:
        return f"{self.optimizer}-lr{self.base_lr:g}-b{self.base_batch}"

    def config(self, workload: Workload, schedule: str, seed: int) -> RunConfig:
        return workload.config(
            self.optimizer, schedule, seed, base_lr=self.base_lr, base_batch=self.base_batch
        )

    def initial_noise_scale(self, n_train: int) -> float:
        return self.base_lr * n_train / (self.base_batch * (1 - get_optimizer(self.optimizer).momentum))


@dataclasses.dataclass(frozen=True, eq=False)
class Workload:
    name: str  # the key of WORKLOADS and of RunConfig.workload
    title: str  # for the report: "MNIST"
    dataset: str  # reproduction.data.DATASETS key
    n_train: int
    base_lr: Mapping[str, float]  # optimizer -> its tuned base rate, shared by every schedule
    profiles: Mapping[str, Profile]
    preregistration: Path  # margins and the controls' spread (reproduction/calibration.py)
    model: ModelOptions = ModelOptions()
    base_batch: int = 100
    factor: int = 5
    steps: int = 3
    epochs_per_step: int = 2
    controls: tuple[Control, ...] = ()
    high_noise: Setting | None = None  # where lowering g matters for plain SGD; None: not needed here
    high_noise_decay_losses: tuple[float, ...] = ()  # decay's final train losses there, on search seeds
    # constant - decay final test accuracy there (pt), mean over the search seeds: inside the 1-pt margin, the
    # accuracy rows of claim high-noise are pre-registered as having no power; None: not searched
    high_noise_constant_accuracy: float | None = None
    # Judge accuracy also at a calibrated margin (claim accuracy-equivalent), for workloads where annealing
    # moves test accuracy by less than the paper's 1 pt but more than the seeds scatter.
    accuracy_equivalence: bool = False
    notes: str = ""  # what the report says about this workload's data and model
    # Your own model and data (docs/your-model.md). build_model(seed) -> a Keras 3 classifier, its initial
    # weights from the seed alone; None: the report's CNN from ``model``. load_data() -> (x_train, y_train,
    # x_test, y_test) arrays, or (train, test) unbatched tf.data datasets of (x, y); None: ``dataset``.
    build_model: Callable[[int], Any] | None = None
    load_data: Callable[[], Any] | None = None
    # Dask worker resources each run of this workload needs ({"GPU": 1}); workers offer them with
    # ``dask worker ADDRESS --resources GPU=1`` (reproduction/cluster.py).
    resources: Mapping[str, float] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        for o in self.base_lr:
            get_optimizer(o)
        for name in ("build_model", "load_data"):
            if getattr(self, name) is not None and not callable(getattr(self, name)):
                raise UsageError(f"Workload.{name}={getattr(self, name)!r}: expected a function or None")
        if not all(isinstance(v, int | float) and v > 0 for v in self.resources.values()):
            raise UsageError(f"Workload.resources={dict(self.resources)!r}: expected name -> amount > 0")
        for name in ("n_train", "base_batch", "factor", "steps", "epochs_per_step"):
            _positive_int("Workload", name, getattr(self, name))
        # With no step, or a step that changes nothing, every schedule is the constant one: the equivalence
        # claims would hold by construction and the controls would compare a run with itself.
        for name, value in (("factor", self.factor), ("steps", self.steps)):
            if value < 2:
                raise UsageError(
                    f"Workload.{name}={value}: expected at least 2 (below it no schedule anneals)"
                )
        if set(self.profiles) != {"quick", "full"}:
            raise UsageError(f"Workload.profiles: expected 'quick' and 'full', got {sorted(self.profiles)}")
        for profile in self.profiles.values():
            extra = set(profile.optimizers or ()) - set(self.base_lr)
            if extra:
                raise UsageError(
                    f"Profile {profile.name!r}: optimizers {sorted(extra)} have no base rate here"
                )
        guarded = [c.name for c in self.controls if c.claim == "accuracy-equivalent"]
        if guarded and not self.accuracy_equivalence:
            raise UsageError(
                f"Workload.controls: {guarded} guard accuracy-equivalent, which needs "
                "accuracy_equivalence=True"
            )
        if self.high_noise is not None and len(self.high_noise_decay_losses) < 2:
            raise UsageError(
                "Workload.high_noise_decay_losses: at least two search-seed losses for its margin"
            )
        searched = self.high_noise_constant_accuracy
        if searched is not None and not (
            isinstance(searched, int | float) and not isinstance(searched, bool) and math.isfinite(searched)
        ):
            raise UsageError(
                f"Workload.high_noise_constant_accuracy={searched!r}: expected None or a finite number (pt)"
            )

    @functools.cached_property
    def fingerprint(self) -> str:
        """A hash of the source files of ``build_model`` and ``load_data`` ("" for neither): part of every
        run's key, so a changed model or data function trains anew instead of reusing stale runs. Read once
        per process. A built-in workload's model code in other files (wide_resnet.py): CODE_VERSION."""
        files = sorted({inspect.getsourcefile(f) or "" for f in (self.build_model, self.load_data) if f})
        if not files:
            return ""
        digest = hashlib.sha256()
        for name in files:
            digest.update(Path(name).read_bytes() if name and Path(name).is_file() else name.encode())
        return digest.hexdigest()[:16]

    def source(self, data_dir: str | None = None):
        """Where a training process gets this workload's data (reproduction.data.DatasetSource)."""
        from reproduction.data import DatasetSource

        return DatasetSource(self.dataset, data_dir, self.name if self.load_data is not None else None)

    @property
    def optimizers(self) -> tuple[str, ...]:
        return tuple(self.base_lr)

    def learning_rate(self, optimizer: str) -> float:
        try:
            return self.base_lr[optimizer]
        except KeyError:
            raise UsageError(
                f"optimizer={optimizer!r}: workload {self.name!r} has base rates for {sorted(self.base_lr)}"
            ) from None

    def config(self, optimizer: str, schedule: str, seed: int, **overrides) -> RunConfig:
        """A run of this workload: its model and schedule shape unless ``overrides`` say otherwise (a value of
        None keeps the workload's)."""
        fields: dict[str, Any] = {
            "base_batch": self.base_batch,
            "factor": self.factor,
            "steps": self.steps,
            "epochs_per_step": self.epochs_per_step,
            "model": self.model,
        }
        fields.update({k: v for k, v in overrides.items() if v is not None or k == "base_lr"})
        return RunConfig(optimizer, schedule, seed, workload=self.name, **fields)

    def profile(self, name: str, seeds: int | None = None) -> Profile:
        if name not in self.profiles:
            raise UsageError(f"profile={name!r}: unknown; known profiles are {sorted(self.profiles)}")
        profile = self.profiles[name]
        if seeds is not None:
            if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
                raise UsageError(
                    f"seeds={seeds!r}: expected a positive integer (with 1, every statistical claim is "
                    "undecided: there is no spread to test against)"
                )
            purpose_seeds(0, seeds)
            profile = dataclasses.replace(profile, seeds=seeds, timed_seeds=min(seeds, profile.timed_seeds))
        return profile

    def control(self, name: str) -> Control:
        for c in self.controls:
            if c.name == name:
                return c
        raise UsageError(
            f"control={name!r}: unknown for {self.name}; known controls {[c.name for c in self.controls]}"
        )

    def high_noise_margin(self) -> float:
        """2 x the seed sd of decay's final train loss at ``high_noise`` (the main grid's calibration
        rule)."""
        import numpy as np

        return 2.0 * float(np.std(self.high_noise_decay_losses, ddof=1))


_BUILT_IN = {
    "mnist": "reproduction.workloads.mnist",
    "fashion-mnist": "reproduction.workloads.fashion_mnist",
    "cifar10": "reproduction.workloads.cifar10",
}
WORKLOADS: dict[str, Workload] = {}


def register(workload: Workload) -> Workload:
    """Make a workload known by its name (a user's, or a test's); the built-in ones register on first use."""
    if not isinstance(workload, Workload):
        raise UsageError(f"register: expected a Workload, got {type(workload).__name__}")
    WORKLOADS[workload.name] = workload
    return workload


def get_workload(name: str) -> Workload:
    """A workload by name: a built-in one, a registered one, or ``package.module:function``, a function of
    yours that returns a Workload (imported and called once, then known by that name)."""
    if name not in WORKLOADS and name in _BUILT_IN:
        WORKLOADS[name] = importlib.import_module(_BUILT_IN[name]).WORKLOAD
    if name not in WORKLOADS and isinstance(name, str) and ":" in name:
        WORKLOADS[name] = _from_function(name)
    try:
        return WORKLOADS[name]
    except (KeyError, TypeError):
        raise UsageError(
            f"workload={name!r}: unknown; known workloads are {known_workloads()}, or "
            "package.module:function returning a Workload"
        ) from None


def call_user(function, where: str, *args):
    """A user's function (``build_model``, ``load_data``) called; its error, or its exit, refused in one line
    naming the call, as every bad input is (its traceback would point into this package). The package's own
    functions (the built-in workloads') are called plainly: their failure is a bug and keeps its traceback."""
    if getattr(function, "__module__", "").split(".")[0] == "reproduction":
        return function(*args)
    try:
        return function(*args)
    except (Exception, SystemExit) as exc:
        raise UsageError(f"{where} failed: {type(exc).__name__}: {exc}") from None


def _from_function(spec: str) -> Workload:
    module_name, _, function_name = spec.partition(":")
    if not module_name or module_name.startswith(".") or not function_name:
        raise UsageError(
            f"workload={spec!r}: expected package.module:function (an absolute module name and a function)"
        )
    if os.getcwd() not in sys.path:  # a module of the current directory, as `python -m` would find it
        sys.path.append(os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except (Exception, SystemExit) as exc:  # ImportError, the module's own error or exit: one line, its cause
        raise UsageError(
            f"workload={spec!r}: cannot import module {module_name!r} ({type(exc).__name__}: {exc})"
        ) from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise UsageError(f"workload={spec!r}: module {module_name!r} has no function {function_name!r}")
    try:
        workload = function()
    except (Exception, SystemExit) as exc:  # a field refused (UsageError), the function's own error or exit
        raise UsageError(
            f"workload={spec!r}: {function_name}() failed: {type(exc).__name__}: {exc}"
        ) from None
    if not isinstance(workload, Workload):
        raise UsageError(
            f"workload={spec!r}: {function_name}() returned {type(workload).__name__}, not a Workload"
        )
    if workload.name != spec:
        workload = dataclasses.replace(workload, name=spec)  # known, and keyed, by how it is asked for
    return workload


def known_workloads() -> list[str]:
    return sorted(set(_BUILT_IN) | set(WORKLOADS))

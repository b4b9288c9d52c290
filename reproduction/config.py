"""RunConfig and ModelOptions: everything that determines one training run. Frozen, validated, hashable,
JSON round-trip; no TensorFlow import, so the store and the report can read runs without it.

The store keys runs by ``config.key()``: a hash of the canonical JSON and of CODE_VERSION, which is bumped
whenever training semantics change, so stale runs are never reused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from typing import Any

from reproduction.distribute import STRATEGIES
from reproduction.errors import UsageError
from reproduction.noise_scale import check_noise_every
from reproduction.optimizers import get_optimizer
from reproduction.schedules import Schedule, get_schedule

NORMALIZATIONS = ("ghost", "batch", "none")
MAX_SEED = 2**31 - 1  # training passes the seed to TensorFlow as an int32 (the shuffle's stateless seed)

FLOAT32_NORMAL, FLOAT32_MAX = 1.1754943508222875e-38, 3.4028234663852886e38  # numpy.finfo(float32)


@dataclasses.dataclass(frozen=True)
class ModelOptions:
    normalization: str = "ghost"  # ghost BN (the paper's), plain BN, or none (controls, Zhou's baseline)
    virtual_batch_size: int = (
        10  # ghost batch size, as the report's BatchNormalization(virtual_batch_size=10)
    )
    bn_momentum: float = 0.99  # Keras's default, as in the report
    filters: int = 8  # Conv2D filters, as in the report

    def __post_init__(self):
        if self.normalization not in NORMALIZATIONS:
            raise UsageError(f"normalization={self.normalization!r}: expected one of {list(NORMALIZATIONS)}")
        for name in ("virtual_batch_size", "filters"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UsageError(f"{name}={value!r}: expected a positive integer")
        if not 0.0 <= self.bn_momentum < 1.0:
            raise UsageError(f"bn_momentum={self.bn_momentum!r}: expected 0 <= bn_momentum < 1")

    def describe(self) -> str:
        """The CNN these options build (reproduction/model.py), in words."""
        norm = {
            "ghost": f"ghost batch norm (virtual batch {self.virtual_batch_size}) -> ",
            "batch": "batch norm -> ",
            "none": "",
        }[self.normalization]
        fold = (
            "; the normalization is folded into the convolution (exact)"
            if self.normalization == "ghost"
            else ""
        )
        return f"Input 28x28x1 -> {norm}Conv2D({self.filters}, 3x3) -> MaxPool 2 -> Dense(10, softmax){fold}"


CODE_VERSION = "6"  # bump when a change alters what a run produces (CHANGELOG.md lists what each changed)


@dataclasses.dataclass(frozen=True)
class RunConfig:
    optimizer: str = "sgd"  # key of OPTIMIZERS
    schedule: str = "increase"  # key of SCHEDULES
    seed: int = 0  # initial weights and per-epoch shuffles
    base_lr: float | None = None  # None: the optimizer's tuned base rate (the same for every schedule)
    base_batch: int = 100  # B of the first phase
    factor: int = 5  # noise-scale reduction per step
    steps: int = 3  # number of phases
    epochs_per_step: int = 2  # epochs per phase
    model: ModelOptions = ModelOptions()
    train_examples: int | None = None  # None: the whole training set; else its first n (smoke tests only)
    # Data parallel (reproduction/distribute.py): the same run up to rounding, but other bits and other
    # timings, so a distributed run has its own key and never stands in for a one-device run (whose train
    # seconds the wall-clock claims read). Left out of the JSON and the key on one device.
    strategy: str = "default"  # tf.distribute strategy: default, mirrored, multi-worker
    replicas: int = 1  # replicas in sync, over all workers
    # The workload (reproduction/workloads/): data, and the base rate when base_lr is None. Left out of the
    # JSON and the key for "mnist", the first workload, so its runs keep the keys they had before.
    workload: str = "mnist"
    # The gradient noise scale on the first update of every noise_every (docs/noise-scale.md): fewer
    # estimates for less time, and other rounding (which updates are split). Left out of the JSON and the
    # key at 1, every update measured, as every run was before it existed.
    noise_every: int = 1

    def __post_init__(self):
        get_optimizer(self.optimizer)  # raises with the known names
        self._workload().learning_rate(self.optimizer)  # a known workload with a rate for this optimizer
        get_schedule(self.schedule)
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or not 0 <= self.seed <= MAX_SEED:
            raise UsageError(f"seed={self.seed!r}: expected an integer from 0 to {MAX_SEED}")
        if self.base_lr is not None and not (isinstance(self.base_lr, int | float) and self.base_lr > 0):
            raise UsageError(f"base_lr={self.base_lr!r}: expected None or a number > 0")
        if not isinstance(self.model, ModelOptions):
            raise UsageError(f"model={self.model!r}: expected a ModelOptions")
        if self.train_examples is not None and not (
            isinstance(self.train_examples, int) and self.train_examples >= 1
        ):
            raise UsageError(f"train_examples={self.train_examples!r}: expected None or a positive integer")
        if self.strategy not in STRATEGIES:
            raise UsageError(f"strategy={self.strategy!r}: expected one of {list(STRATEGIES)}")
        if not isinstance(self.replicas, int) or isinstance(self.replicas, bool) or self.replicas < 1:
            raise UsageError(f"replicas={self.replicas!r}: expected a positive integer (1: one device)")
        if self.strategy == "default" and self.replicas != 1:
            raise UsageError(
                f"replicas={self.replicas} with strategy='default': the default strategy is one device; use "
                "'mirrored' or 'multi-worker'"
            )
        check_noise_every(self.noise_every)
        rates = [p.learning_rate for p in self.build_schedule().phases]  # validates the schedule's fields
        if self.base_lr is not None and not (min(rates) >= FLOAT32_NORMAL and max(rates) <= FLOAT32_MAX):
            # training holds rates in float32: outside its normal range a rate rounds to 0 or to infinity
            raise UsageError(
                f"base_lr={self.base_lr!r}: schedule {self.schedule!r} applies rates {min(rates):.3g} to "
                f"{max(rates):.3g}; expected them in float32's normal range, {FLOAT32_NORMAL:.3g} to "
                f"{FLOAT32_MAX:.3g}"
            )

    def check_fits(self, n: int | None = None) -> None:
        """Every batch of the schedule fits the ``n`` examples an epoch trains on, and the report's model
        splits it over the replicas. ``n``: as loaded (the trainer); None: the workload's, before any data,
        store or TensorFlow (the commands), where a user's data (``load_data``), unsized until loaded, is left
        to the trainer."""
        from reproduction.distribute import check_split

        workload = self._workload()
        if n is None:
            if workload.load_data is not None:
                return
            if self.train_examples is not None and self.train_examples > workload.n_train:
                raise UsageError(
                    f"train_examples={self.train_examples}: workload {self.workload!r} has "
                    f"{workload.n_train} training examples"
                )
            n = self.train_examples or workload.n_train
        schedule = self.build_schedule()
        try:
            schedule.check_fits(n)
        except UsageError as exc:  # the schedule's check, named by the options that set it
            given = f", train_examples={n}" if self.train_examples is not None else ""
            raise UsageError(f"base_batch={self.base_batch}{given}: {exc}") from None
        batches = [p.batch_size for p in schedule.phases]
        if workload.build_model is None:
            check_split(batches, n, self.replicas, self.model.normalization, self.model.virtual_batch_size)

    def _workload(self):
        from reproduction.workloads import get_workload  # here: the workloads import this module

        return get_workload(self.workload)

    @property
    def learning_rate(self) -> float:
        return self.base_lr if self.base_lr is not None else self._workload().learning_rate(self.optimizer)

    def build_schedule(self) -> Schedule:
        return get_schedule(self.schedule)(
            base_lr=self.learning_rate,
            base_batch=self.base_batch,
            factor=self.factor,
            steps=self.steps,
            epochs_per_step=self.epochs_per_step,
        )

    @property
    def momentum(self) -> float:
        """The momentum the run trains with: the schedule's if it prescribes one, else the optimizer's."""
        prescribed = self.build_schedule().momentum
        return prescribed if prescribed is not None else get_optimizer(self.optimizer).momentum

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        if self.strategy == "default":  # one device: keys and files as before data parallelism existed
            del data["strategy"], data["replicas"]
        if self.workload == "mnist":  # likewise for the first workload
            del data["workload"]
        if self.noise_every == 1:  # and for every update measured
            del data["noise_every"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """A config from its JSON; UsageError naming the field for anything malformed."""
        if not isinstance(data, dict):
            raise UsageError(f"RunConfig: expected an object, got {type(data).__name__}")
        data = dict(data)
        if isinstance(data.get("model"), dict):
            data["model"] = _from_fields(ModelOptions, data["model"])
        return _from_fields(cls, data)

    def key(self) -> str:
        """Store key: readable prefix plus a hash of the canonical config, the optimizer's spec with the
        workload's base rate (retuning a rate must not reuse old runs) and the code version."""
        spec = {
            **dataclasses.asdict(get_optimizer(self.optimizer)),
            "base_lr": self._workload().learning_rate(self.optimizer),
        }
        identity = {"config": self.to_dict(), "code_version": CODE_VERSION, "optimizer_spec": spec}
        fingerprint = self._workload().fingerprint
        if fingerprint:  # a workload's own model or data: its source is part of the run
            identity["workload_source"] = fingerprint
        canonical = json.dumps(identity, sort_keys=True)
        digest = hashlib.sha256(canonical.encode()).hexdigest()[:12]
        where = "" if self.strategy == "default" else f"-{self.strategy}-x{self.replicas}"
        workload = "" if self.workload == "mnist" else re.sub(r"[^A-Za-z0-9_-]+", "-", self.workload) + "-"
        return f"{workload}{self.optimizer}-{self.schedule}-seed{self.seed}{where}-{digest}"


def _from_fields(cls, data: dict[str, Any]):
    """``cls(**data)`` for a frozen config dataclass, with unknown, missing or unhashable values refused as
    UsageError naming the class (the classes validate their own values)."""
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - fields
    if unknown:
        raise UsageError(
            f"{cls.__name__}: unknown fields {sorted(map(str, unknown))}; known fields are {sorted(fields)}"
        )
    try:
        return cls(**data)
    except TypeError as exc:  # a list where a name belongs, a missing field: not the class's own checks
        raise UsageError(f"{cls.__name__}: {exc}") from None

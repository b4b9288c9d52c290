"""RunConfig and ModelOptions: everything that determines one training run. Frozen, validated, hashable,
JSON round-trip; no TensorFlow import, so the store and the report can read runs without it.

The store keys runs by ``config.key()``: a hash of the canonical JSON and of CODE_VERSION, which is bumped
whenever training semantics change, so stale runs are never reused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from reproduction.distribute import STRATEGIES
from reproduction.optimizers import get_optimizer
from reproduction.schedules import Schedule, get_schedule

NORMALIZATIONS = ("ghost", "batch", "none")


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
            raise ValueError(f"normalization={self.normalization!r}: expected one of {list(NORMALIZATIONS)}")
        for name in ("virtual_batch_size", "filters"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}={value!r}: expected a positive integer")
        if not 0.0 <= self.bn_momentum < 1.0:
            raise ValueError(f"bn_momentum={self.bn_momentum!r}: expected 0 <= bn_momentum < 1")


CODE_VERSION = "4"  # 4: B_simple per epoch; 3: records read back the applied schedule; 2: micro-batches  # bump when a change alters what a run produces


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

    def __post_init__(self):
        get_optimizer(self.optimizer)  # raises with the known names
        get_schedule(self.schedule)
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ValueError(f"seed={self.seed!r}: expected a non-negative integer")
        if self.base_lr is not None and not (isinstance(self.base_lr, int | float) and self.base_lr > 0):
            raise ValueError(f"base_lr={self.base_lr!r}: expected None or a number > 0")
        if not isinstance(self.model, ModelOptions):
            raise ValueError(f"model={self.model!r}: expected a ModelOptions")
        if self.train_examples is not None and not (
            isinstance(self.train_examples, int) and self.train_examples >= 1
        ):
            raise ValueError(f"train_examples={self.train_examples!r}: expected None or a positive integer")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy={self.strategy!r}: expected one of {list(STRATEGIES)}")
        if not isinstance(self.replicas, int) or isinstance(self.replicas, bool) or self.replicas < 1:
            raise ValueError(f"replicas={self.replicas!r}: expected a positive integer (1: one device)")
        if self.strategy == "default" and self.replicas != 1:
            raise ValueError(
                f"replicas={self.replicas} with strategy='default': the default strategy is one "
                "device; use 'mirrored' or 'multi-worker'"
            )
        self.build_schedule()  # validates base_batch, factor, steps, epochs_per_step through the factory

    @property
    def learning_rate(self) -> float:
        return self.base_lr if self.base_lr is not None else get_optimizer(self.optimizer).base_lr

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
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - fields
        if unknown:
            raise ValueError(
                f"RunConfig: unknown fields {sorted(unknown)}; known fields are {sorted(fields)}"
            )
        data = dict(data)
        if isinstance(data.get("model"), dict):
            data["model"] = ModelOptions(**data["model"])
        return cls(**data)

    def key(self) -> str:
        """Store key: readable prefix plus a hash of the canonical config, the optimizer's spec (a default
        base rate lives there, so retuning it must not reuse old runs) and the code version."""
        canonical = json.dumps(
            {
                "config": self.to_dict(),
                "code_version": CODE_VERSION,
                "optimizer_spec": dataclasses.asdict(get_optimizer(self.optimizer)),
            },
            sort_keys=True,
        )
        digest = hashlib.sha256(canonical.encode()).hexdigest()[:12]
        where = "" if self.strategy == "default" else f"-{self.strategy}-x{self.replicas}"
        return f"{self.optimizer}-{self.schedule}-seed{self.seed}{where}-{digest}"

"""The result schema: EpochRecord and RunResult, JSON in and out. No TensorFlow: the run store, the claims,
the report and ``reproduction report --from`` read runs without starting it (tests/test_results.py).

Provenance (git commit, versions, CPU, threads, where a run trained) is the ``metadata`` dict, written by
training.metadata() beside the records.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from reproduction.config import RunConfig
from reproduction.noise_scale import NoiseScale


@dataclasses.dataclass(frozen=True)
class EpochRecord:
    """One epoch: the schedule's plan (``learning_rate``, ``momentum``, ``batch_size``) beside what the
    optimizer and the loop did (``steps`` and every ``applied_*`` field), read back, never copied."""

    epoch: int  # counted from 0
    learning_rate: float  # scheduled
    batch_size: int  # scheduled
    steps: int  # parameter updates in this epoch, from the optimizer's iteration counter
    train_seconds: float  # training only
    eval_seconds: float  # test-set evaluation
    train_loss: float  # mean over the epoch's examples, as trained (weights moving during the epoch)
    test_loss: float
    test_accuracy: float  # fraction in [0, 1]
    momentum: float = 0.0  # scheduled (the optimizer's, or the schedule's override); Adam: 0
    applied_lr_min: float = math.nan  # smallest learning rate the optimizer held at an update (in graph)
    applied_lr_max: float = math.nan  # largest
    applied_momentum: float = math.nan  # the momentum of the optimizer that trained (Adam has none: 0)
    applied_batch_min: int = 0  # fewest examples in one update (the last, partial batch)
    applied_batch_max: int = 0  # most examples in one update
    applied_examples: int = 0  # examples fed to updates in the epoch
    # the gradient noise scale at the epoch's end, on the probe (reproduction/noise_scale.py); NaN: not measured
    gradient_sq: float = math.nan  # |G|^2
    gradient_trace: float = math.nan  # tr(Sigma), per example
    b_simple: float = math.nan  # tr(Sigma) / |G|^2, in examples
    noise_seconds: float = 0.0  # the measurement's time, apart from train_seconds and eval_seconds

    @property
    def noise(self) -> NoiseScale:
        return NoiseScale(self.gradient_sq, self.gradient_trace)


@dataclasses.dataclass(frozen=True)
class RunResult:
    config: RunConfig
    epochs: tuple[EpochRecord, ...]
    metadata: dict[str, Any]
    # the gradient noise scale at the initial weights, before any update (as EpochRecord's; NaN: not measured)
    initial_gradient_sq: float = math.nan
    initial_gradient_trace: float = math.nan

    @property
    def parameter_updates(self) -> int:
        return sum(e.steps for e in self.epochs)

    @property
    def train_seconds(self) -> float:
        return sum(e.train_seconds for e in self.epochs)

    @property
    def final(self) -> EpochRecord:
        return self.epochs[-1]

    @property
    def initial_noise(self) -> NoiseScale:
        return NoiseScale(self.initial_gradient_sq, self.initial_gradient_trace)

    @property
    def initial_b_simple(self) -> float:
        return self.initial_noise.b_simple

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "epochs": [dataclasses.asdict(e) for e in self.epochs],
            "metadata": self.metadata,
            "key": self.config.key(),
            "initial": {
                "gradient_sq": self.initial_gradient_sq,
                "gradient_trace": self.initial_gradient_trace,
                "b_simple": self.initial_b_simple,
            },
            "totals": {
                "parameter_updates": self.parameter_updates,
                "train_seconds": self.train_seconds,
                "final_test_accuracy": self.final.test_accuracy,
                "final_train_loss": self.final.train_loss,
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunResult:
        initial = data.get("initial", {})
        return cls(
            RunConfig.from_dict(data["config"]),
            tuple(EpochRecord(**e) for e in data["epochs"]),
            data["metadata"],
            initial.get("gradient_sq", math.nan),
            initial.get("gradient_trace", math.nan),
        )

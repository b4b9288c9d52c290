"""The result schema: EpochRecord and RunResult, JSON in and out. No TensorFlow: the run store, the claims,
the report and ``reproduction report --from`` read runs without starting it (tests/test_results.py).

Provenance (git commit, versions, CPU, threads, where a run trained) is the ``metadata`` dict, written by
provenance.metadata() beside the records.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from reproduction.config import RunConfig
from reproduction.errors import UsageError
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
    # the gradient noise scale over the epoch's updates, from their two-part gradients
    # (reproduction/noise_scale.py); NaN: not measured (plain batch norm)
    gradient_sq: float = math.nan  # |G|^2, the mean of the epoch's estimates
    gradient_trace: float = math.nan  # tr(Sigma), per example
    b_simple: float = math.nan  # tr(Sigma) / |G|^2, in examples
    gradient_sq_se: float = math.nan  # standard error of gradient_sq over the epoch's estimates
    noise_estimates: int = 0  # how many (one per chunk of an update)

    @property
    def noise(self) -> NoiseScale:
        return NoiseScale(self.gradient_sq, self.gradient_trace, self.gradient_sq_se)


@dataclasses.dataclass(frozen=True)
class RunResult:
    config: RunConfig
    epochs: tuple[EpochRecord, ...]
    metadata: dict[str, Any]

    @property
    def parameter_updates(self) -> int:
        return sum(e.steps for e in self.epochs)

    @property
    def train_seconds(self) -> float:
        return sum(e.train_seconds for e in self.epochs)

    @property
    def final(self) -> EpochRecord:
        return self.epochs[-1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "epochs": [dataclasses.asdict(e) for e in self.epochs],
            "metadata": self.metadata,
            "key": self.config.key(),
            "totals": {
                "parameter_updates": self.parameter_updates,
                "train_seconds": self.train_seconds,
                "final_test_accuracy": self.final.test_accuracy,
                "final_train_loss": self.final.train_loss,
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunResult:
        """A run from its JSON; UsageError naming the field for anything malformed."""
        if not isinstance(data, dict):
            raise UsageError(f"run: expected a JSON object, got {type(data).__name__}")
        for name, kind in (("config", dict), ("epochs", list), ("metadata", dict)):
            if not isinstance(data.get(name), kind):
                raise UsageError(
                    f"run: field {name!r} must be a {kind.__name__}, got {type(data.get(name)).__name__}"
                )
        if not data["epochs"]:
            raise UsageError("run: field 'epochs' is empty")
        config = RunConfig.from_dict(data["config"])
        return cls(config, tuple(_epoch(e, i) for i, e in enumerate(data["epochs"])), data["metadata"])


_EPOCH_FIELDS = {f.name: f.type for f in dataclasses.fields(EpochRecord)}


def _epoch(data, i: int) -> EpochRecord:
    """One EpochRecord from JSON, every field checked for its type (a number where a number belongs)."""
    if not isinstance(data, dict):
        raise UsageError(f"run: epochs[{i}] must be an object, got {type(data).__name__}")
    unknown = set(data) - set(_EPOCH_FIELDS)
    if unknown:
        raise UsageError(
            f"run: epochs[{i}]: unknown fields {sorted(unknown)}; known fields are {sorted(_EPOCH_FIELDS)}"
        )
    for name, value in data.items():
        kind = int if _EPOCH_FIELDS[name] == "int" else float
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or (kind is int and not isinstance(value, int))
        ):
            raise UsageError(
                f"run: epochs[{i}].{name}={value!r}: expected {'an integer' if kind is int else 'a number'}"
            )
    try:
        return EpochRecord(**data)
    except TypeError as exc:
        raise UsageError(f"run: epochs[{i}]: {exc}") from None

"""Optimizer registry: sgd, momentum, nesterov, adam.

The base learning rate is not here: each workload holds one per optimizer, shared by decay, hybrid and
increase (the paper's protocol; the group report tuned a rate per schedule, which confounds schedule and
rate), tuned on seeds no claim reads (reproduction/workloads/, docs/tuning.md).

The learning rate is a Keras variable, assigned per epoch by the training loop: no rebuild, no retrace.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from reproduction.errors import UsageError

if TYPE_CHECKING:
    import keras

KINDS = ("sgd", "adam")


@dataclasses.dataclass(frozen=True)
class OptimizerSpec:
    name: str
    kind: str  # "sgd" or "adam"
    momentum: float = 0.0  # SGD momentum m (enters the noise scale as 1/(1-m)); 0 for Adam
    nesterov: bool = False

    def __post_init__(self):
        if self.kind not in KINDS:
            raise UsageError(f"OptimizerSpec.kind={self.kind!r}: expected one of {list(KINDS)}")

    def build(self, learning_rate: float = 0.01, momentum: float | None = None) -> keras.optimizers.Optimizer:
        """A fresh Keras optimizer; ``momentum`` overrides the spec's (the increased-momentum schedule)."""
        import keras  # here, not at import: reading configs and results needs no TensorFlow

        m = self.momentum if momentum is None else momentum
        if self.kind == "sgd":
            return keras.optimizers.SGD(learning_rate=learning_rate, momentum=m, nesterov=self.nesterov)
        return keras.optimizers.Adam(learning_rate=learning_rate)  # Keras defaults otherwise


OPTIMIZERS: dict[str, OptimizerSpec] = {
    "sgd": OptimizerSpec("sgd", "sgd"),
    "momentum": OptimizerSpec("momentum", "sgd", momentum=0.9),
    "nesterov": OptimizerSpec("nesterov", "sgd", momentum=0.9, nesterov=True),
    "adam": OptimizerSpec("adam", "adam"),
}


def get_optimizer(name: str) -> OptimizerSpec:
    try:
        return OPTIMIZERS[name]
    except (KeyError, TypeError):
        raise UsageError(f"optimizer={name!r}: unknown; known optimizers are {sorted(OPTIMIZERS)}") from None

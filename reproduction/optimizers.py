"""Optimizer registry: sgd, momentum, nesterov, adam, each with one base learning rate for every schedule.

The paper's protocol: one base learning rate per optimizer, shared by decay, hybrid and increase (the group
report tuned a rate per schedule, which confounds schedule and rate). The base rates below were chosen on
the *decay* schedule only, by ``reproduction tune``: stage 1, a grid over seeds 0-1; stage 2, the best
rates over seeds 0-4; the highest mean final test accuracy wins, a diverged run counting at chance (9.8%).
Stage 2 exists because SGD at 0.2, best on two seeds, diverged on seed 2. The tables are in docs/tuning.md.

The learning rate is a Keras variable, assigned per epoch by the training loop: no rebuild, no retrace.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras


@dataclasses.dataclass(frozen=True)
class OptimizerSpec:
    name: str
    kind: str  # "sgd" or "adam"
    base_lr: float  # tuned on the decay schedule; shared by every schedule
    momentum: float = 0.0  # SGD momentum m (enters the noise scale as 1/(1-m)); 0 for Adam
    nesterov: bool = False

    def build(self, momentum: float | None = None) -> keras.optimizers.Optimizer:
        """A fresh Keras optimizer; ``momentum`` overrides the spec's (the increased-momentum schedule)."""
        import keras  # here, not at import: reading configs and results needs no TensorFlow

        m = self.momentum if momentum is None else momentum
        if self.kind == "sgd":
            return keras.optimizers.SGD(learning_rate=self.base_lr, momentum=m, nesterov=self.nesterov)
        if self.kind == "adam":
            return keras.optimizers.Adam(learning_rate=self.base_lr)  # Keras defaults otherwise
        raise ValueError(f"OptimizerSpec.kind={self.kind!r}: expected 'sgd' or 'adam'")


OPTIMIZERS: dict[str, OptimizerSpec] = {
    "sgd": OptimizerSpec("sgd", "sgd", base_lr=0.1),
    "momentum": OptimizerSpec("momentum", "sgd", base_lr=0.03, momentum=0.9),
    "nesterov": OptimizerSpec("nesterov", "sgd", base_lr=0.05, momentum=0.9, nesterov=True),
    "adam": OptimizerSpec("adam", "adam", base_lr=0.01),
}


def get_optimizer(name: str) -> OptimizerSpec:
    try:
        return OPTIMIZERS[name]
    except KeyError:
        raise ValueError(f"optimizer={name!r}: unknown; known optimizers are {sorted(OPTIMIZERS)}") from None

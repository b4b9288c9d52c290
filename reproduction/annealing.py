"""Where does lowering the noise scale matter? No annealing (the constant schedule) against decay.

The paper's argument needs a workload on which lowering g = eps N / (B (1 - m)) changes the outcome; if
the constant schedule ends where decay ends, every schedule that lowers g "matches decay" for free.
``reproduction anneal`` trains decay and constant at each (base rate, base batch) of a search, on search
seeds that no claim compares, and prints the paired differences; docs/annealing.md keeps the search that
chose ``HIGH_NOISE``, the setting whose claims run as their own rows (claim ``high-noise``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from reproduction import stats

if TYPE_CHECKING:
    from reproduction.results import RunResult

from reproduction.config import RunConfig
from reproduction.workloads import SEARCH_SEEDS, Setting, Workload

SEARCH_SEED_OFFSET = SEARCH_SEEDS  # search seeds 2000, 2001, ...: never compared by a claim


def search_configs(workload: Workload, settings: Sequence[Setting], seeds: Sequence[int]) -> list[RunConfig]:
    return [
        s.config(workload, schedule, k) for s in settings for k in seeds for schedule in ("decay", "constant")
    ]


@dataclasses.dataclass(frozen=True)
class Comparison:
    """constant - decay at one setting, paired by seed: (mean, low, high) of 90% t intervals."""

    setting: Setting
    n_train: int
    seeds: tuple[int, ...]
    diverged: int  # seeds where either run's loss went non-finite
    decay_accuracy: float  # mean final test accuracy of decay, percent (finite runs)
    decay_loss_sd: float  # seed sd of decay's final train loss: 2 x this is a train-loss margin
    loss: tuple[float, float, float]
    accuracy: tuple[float, float, float]  # points


def compare(
    workload: Workload, setting: Setting, runs: Mapping[RunConfig, RunResult], seeds: Sequence[int]
) -> Comparison:
    decay = [runs[setting.config(workload, "decay", k)] for k in seeds]
    const = [runs[setting.config(workload, "constant", k)] for k in seeds]
    finite = [
        all(math.isfinite(e.train_loss) for r in pair for e in r.epochs)
        for pair in zip(decay, const, strict=True)
    ]
    ok = [(d, c) for (d, c), good in zip(zip(decay, const, strict=True), finite, strict=True) if good]
    losses = [d.final.train_loss for d, _ in ok]
    return Comparison(
        setting,
        workload.n_train,
        tuple(seeds),
        finite.count(False),
        float(np.mean([100 * d.final.test_accuracy for d, _ in ok])) if ok else math.nan,
        float(np.std(losses, ddof=1)) if len(losses) > 1 else math.nan,
        stats.paired_interval([c.final.train_loss - d.final.train_loss for d, c in ok]),
        stats.paired_interval([100 * (c.final.test_accuracy - d.final.test_accuracy) for d, c in ok]),
    )


def table(comparisons: Sequence[Comparison]) -> list[str]:
    lines = [
        "| setting | g at the start | decay accuracy | diverged | decay loss sd | constant - decay: train "
        "loss [90%] | test accuracy [90%] |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in comparisons:
        lines.append(
            f"| {c.setting.name} | {c.setting.initial_noise_scale(c.n_train):.0f} | {c.decay_accuracy:.2f}% "
            f"| {c.diverged}/{len(c.seeds)} | {c.decay_loss_sd:.4f} | {c.loss[0]:+.4f} [{c.loss[1]:+.4f}, "
            f"{c.loss[2]:+.4f}] | {c.accuracy[0]:+.2f} pt [{c.accuracy[1]:+.2f}, {c.accuracy[2]:+.2f}] |"
        )
    return lines

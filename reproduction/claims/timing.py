"""Wall clock (the report's time plots): decay > hybrid > increase in training seconds, and seconds per
epoch falling with the batch size. Paired, one-sided t on log ratios.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from reproduction.claims.base import Claim, Runs, get_run, one_sided, refute_alpha, register
from reproduction.config import RunConfig
from reproduction.optimizers import OPTIMIZERS
from reproduction.results import RunResult
from reproduction.stats import Verdict


def _log_ratio_verdict(claim, params, slow, fast, bound):
    """slow / fast > 1 on paired wall-clock times: one-sided t test on log ratios. The effect is the geometric
    mean ratio, the quantity the test and its interval are about (a median could fall outside that
    interval); the median ratio goes into the detail."""
    ratios = np.asarray(slow) / np.asarray(fast)
    v = one_sided(
        claim,
        params,
        np.log(ratios),
        unit="x",
        bound=bound,
        alpha_refute=refute_alpha(claim),
        interval_transform=math.exp,
    )
    return dataclasses.replace(v, detail=f"median ratio {np.median(ratios):.3f}x")


ORDER_PAIRS = (("decay", "hybrid"), ("hybrid", "increase"), ("decay", "increase"))


BATCH_PAIRS = ((100, 500), (500, 2500))


def epoch_seconds_by_batch(result: RunResult) -> dict[int, float]:
    """Median training seconds of the run's epochs at each batch size."""
    by_batch: dict[int, list[float]] = {}
    for e in result.epochs:
        by_batch.setdefault(e.batch_size, []).append(e.train_seconds)
    return {b: float(np.median(v)) for b, v in by_batch.items()}


@register(
    Claim(
        "increase-faster-than-decay",
        "report (time plots)",
        "training wall clock: decay > hybrid > increase on this CPU",
        "ratio of training seconds (slower / faster schedule), paired by (optimizer, seed) blocks whose three "
        "runs train back to back",
        "geometric-mean ratio > 1, significant (medians in the notes)",
        "one-sided paired t on log ratios, alpha 0.05",
        "main grid (trained interleaved: decay, hybrid, increase per seed)",
        "timing that includes evaluation or tracing, or an engine whose large-batch epochs are slow",
        params=tuple(f"{a}>{b}" for a, b in ORDER_PAIRS),
    )
)
def eval_increase_faster(runs: Runs, seeds) -> list[Verdict]:
    """Pairs are (optimizer, seed) blocks: the three schedules of a block train back to back, and wall clock
    hardly depends on the optimizer, so pooling the four optimizers gives 4 x seeds pairs per ordering
    (3 pairs per optimizer left a real 1.3x effect undecided on a noisy day). Per-optimizer medians go
    into the detail."""
    out = []
    for slow, fast in ORDER_PAIRS:
        t_slow, t_fast, per_optimizer = [], [], []
        for o in OPTIMIZERS:
            a = [get_run(runs, RunConfig(o, slow, k)).train_seconds for k in seeds]
            b = [get_run(runs, RunConfig(o, fast, k)).train_seconds for k in seeds]
            t_slow, t_fast = t_slow + a, t_fast + b
            per_optimizer.append(f"{o} {np.median(np.divide(a, b)):.2f}x")
        v = _log_ratio_verdict(
            "increase-faster-than-decay",
            f"{slow}>{fast}",
            t_slow,
            t_fast,
            f"train time {slow} / {fast} > 1 (paired by optimizer and seed, one-sided t on "
            "log ratios, alpha 0.05)",
        )
        out.append(dataclasses.replace(v, detail=f"{v.detail}; per optimizer: " + ", ".join(per_optimizer)))
    return out


@register(
    Claim(
        "epoch-time-falls-with-batch",
        "report",
        "seconds per epoch fall as B grows: B 100 > 500 > 2500",
        "per-epoch training seconds at each B inside the same increase run (and pytest-benchmark rounds)",
        "ratio > 1, significant",
        "one-sided paired t on log ratios, alpha 0.05",
        "increase runs of the main grid; pytest-benchmark epochs at B 100, 500, 2500",
        "per-step overhead dominating, or a large-batch slowdown (memory bound) in the engine",
        params=tuple(f"B{a}>B{b}" for a, b in BATCH_PAIRS),
    )
)
def eval_epoch_time(runs: Runs, seeds) -> list[Verdict]:
    """Within each increase run the epochs at B 100, 500, 2500 run back to back: pairs by run."""
    per_run = [
        epoch_seconds_by_batch(get_run(runs, RunConfig(o, "increase", k))) for o in OPTIMIZERS for k in seeds
    ]
    return [
        _log_ratio_verdict(
            "epoch-time-falls-with-batch",
            f"B{small}>B{large}",
            [r[small] for r in per_run],
            [r[large] for r in per_run],
            f"seconds per epoch at B {small} / at B {large} > 1 (paired within increase "
            "runs, one-sided t on log ratios, alpha 0.05)",
        )
        for small, large in BATCH_PAIRS
    ]

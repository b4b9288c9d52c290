"""The gradient noise scale B_simple (McCandlish et al. 2018) beside the paper's SGD noise scale: does it rise
as the loss falls, and where do the schedules' batch sizes sit against it (reproduction/noise_scale.py)?
"""

from __future__ import annotations

import dataclasses
import math

from reproduction.claims.base import (
    MayBeUndecided,
    Plan,
    Runs,
    get_run,
    one_sided,
    refute_alpha,
    register,
)
from reproduction.noise_scale import NoiseScale
from reproduction.stats import Verdict

# McCandlish et al. 2018 (App. A, Fig. 4/5) on MNIST: B_simple about 50 at the start of training, about 900
# averaged over training (shreyansh26's reimplementation: 876). Their model is not ours: a remark, not a
# bound.
PAPER_MNIST_START = 50
PAPER_MNIST_AVERAGE = 900

FROM = {"from-epoch-1": 0, "from-epoch-2": 1}  # params suffix -> the epoch B_simple rises from


def log_rise(first: NoiseScale, last: NoiseScale) -> float:
    """log(B_simple(last) / B_simple(first)). The first must be resolved (|G|^2 beyond twice its standard
    error), else NaN: the verdict cannot be computed, which is red. The last, where unresolved, counts at its
    lower bound, so an unresolved rise is never overstated."""
    if not first.resolved or not (first.b_simple > 0 and math.isfinite(first.b_simple)):
        return math.nan
    top = last.b_simple if last.resolved else last.lower_bound
    return math.log(top / first.b_simple) if top > 0 and math.isfinite(top) else math.nan


def _constant_runs(plan: Plan) -> list:
    """eps and the base batch throughout (the constant schedule): the temperature holds."""
    return [plan.config(o, "constant", k) for k in plan.seeds for o in plan.optimizers]


@register(
    id="noise-scale-rises",
    source="McCandlish et al. 2018, Sec. 3-4 (the gradient noise scale)",
    statement="the gradient noise scale B_simple = tr(Sigma) / |G|^2 rises as the loss falls: at a constant "
    "temperature (eps and B fixed: the constant schedule, so no schedule causes it) B_simple in the last "
    "epoch exceeds B_simple in the first epoch, and in the second",
    quantity="B_simple per epoch from the gradients training forms (two parts of every update, "
    "noise_scale.py); log(last / first) per seed, an unresolved last epoch at its lower bound",
    bound="geometric-mean ratio last / first > 1, significant",
    test="one-sided paired t on log ratios over seeds, alpha 0.05",
    would_fail_if="an estimator whose parts are not independent, or one that reads stale gradients "
    "(tests/test_noise_scale.py)",
    params=lambda plan: tuple(f"{o}-{start}" for start in FROM for o in plan.optimizers),
    needs=_constant_runs,
    may_be_undecided={
        ("fashion-mnist", "quick"): {
            "adam-from-epoch-2": MayBeUndecided(
                "declared AFTER the first quick run of this workload measured it undecided, 1.11x (90% "
                "interval [1.00, 1.23], 5 seeds): Adam's B_simple rises only about 20% from the second "
                "epoch to the last on Fashion-MNIST, which 5 seeds do not resolve; the full profile's 10 "
                "seeds decide it, 1.20x [1.08, 1.33], holds (docs/preregistration.md)",
                effect_range=(0.95, 1.4),
                seeds_to_decide=10,
                after_reading=True,
            )
        }
    },
)
def eval_noise_scale_rises(plan: Plan, runs: Runs) -> list[Verdict]:
    out = []
    for label, start in FROM.items():
        for o in plan.optimizers:
            results = [get_run(runs, plan.config(o, "constant", k)) for k in plan.seeds]
            first = [r.epochs[start].noise for r in results]
            last = [r.final.noise for r in results]
            v = one_sided(
                "noise-scale-rises",
                f"{o}-{label}",
                [log_rise(a, b) for a, b in zip(first, last, strict=True)],
                alpha_refute=refute_alpha("noise-scale-rises", plan),
                unit="x",
                bound=f"B_simple(last epoch) / B_simple(epoch {start + 1}) > 1",
                interval_transform=math.exp,
            )
            detail = f"B_simple from {_values(first)} to {_values(last)}"
            out.append(dataclasses.replace(v, detail=detail))
    return out


def _values(values: list[NoiseScale]) -> str:
    return (
        "[" + ", ".join(f"{v.b_simple:.0f}" if v.resolved else f">{v.lower_bound:.0f}" for v in values) + "]"
    )

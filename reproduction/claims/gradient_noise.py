"""The gradient noise scale B_simple (McCandlish et al. 2018) beside the paper's SGD noise scale: does it rise
as the loss falls, and where do the schedules' batch sizes sit against it (reproduction/noise_scale.py)?
"""

from __future__ import annotations

import dataclasses
import math

from reproduction.claims.base import KnownFailure, Plan, Runs, get_run, one_sided, refute_alpha, register
from reproduction.noise_scale import PROBE_EXAMPLES
from reproduction.results import RunResult
from reproduction.stats import Verdict

# McCandlish et al. 2018 (App. A, Fig. 4/5) on MNIST: B_simple about 50 at the start of training, about 900
# averaged over training (shreyansh26's reimplementation: 876). Their model is not ours: a remark, not a bound.
PAPER_MNIST_START = 50
PAPER_MNIST_AVERAGE = 900

FROM = {"from-start": "the initial weights", "after-epoch-1": "the end of epoch 1"}


def b_simple_at(result: RunResult, start: str) -> float:
    """B_simple of a run at its initial weights ('from-start') or after its first epoch ('after-epoch-1')."""
    return result.initial_b_simple if start == "from-start" else result.epochs[0].b_simple


def log_rise(first: float, last: float) -> float:
    """log(last / first); NaN where either is not a finite positive estimate (the probe could not tell
    |G|^2 from 0), which leaves the verdict undecided rather than guessed."""
    ok = all(math.isfinite(v) and v > 0 for v in (first, last))
    return math.log(last / first) if ok else math.nan


def _constant_runs(plan: Plan) -> list:
    """eps and the base batch throughout (the constant schedule): the temperature holds."""
    return [plan.config(o, "constant", k) for k in plan.seeds for o in plan.workload.optimizers]


@register(
    id="noise-scale-rises",
    source="McCandlish et al. 2018, Sec. 3-4 (the gradient noise scale)",
    statement="the gradient noise scale B_simple = tr(Sigma) / |G|^2 rises as the loss falls: at a constant "
    "temperature (eps and B fixed: the constant schedule, so no schedule causes it) B_simple at the last "
    "epoch exceeds B_simple at the start of training, and after the first epoch",
    quantity=f"B_simple on a fixed {PROBE_EXAMPLES}-example probe of the training set, per virtual batch "
    "(noise_scale.py); log(last / first) per seed",
    bound="geometric-mean ratio last / first > 1, significant",
    test="one-sided paired t on log ratios over seeds, alpha 0.05",
    would_fail_if="an estimator with b and B swapped, or a measurement on the initial weights at every epoch "
    "(tests/test_noise_scale.py)",
    params=lambda w: tuple(f"{o}-{start}" for start in FROM for o in w.optimizers),
    needs=_constant_runs,
    known_failures={
        "mnist": {
            f"{o}-after-epoch-1": KnownFailure(
                f"no rise after the first epoch for {o} at its constant rate: B_simple at the last epoch over "
                f"B_simple after epoch 1 is {effects} (geometric means, 90% intervals), undecided around 1 while "
                "the train loss still falls by about 40%; from the initial weights it rises 11-18x, and plain SGD "
                "keeps rising after epoch 1 (3.0x). With momentum or Adam at a constant rate the iterate settles "
                "where its own noise keeps |G|^2 up: the rise McCandlish et al. describe is a property of the "
                "loss falling toward a minimum, which a constant noisy temperature stops short of",
                effect_range=(0.4, 1.6),  # around 1; a significant rise holds, a significant fall is red
                verdicts=("undecided",),
            )
            for o, effects in (
                ("momentum", "0.94x [0.65, 1.37] over 10 seeds (3 seeds: 1.14x [0.36, 3.54])"),
                ("nesterov", "0.93x [0.65, 1.32] over 10 seeds (3 seeds: 0.50x [0.21, 1.19])"),
                ("adam", "0.76x [0.41, 1.43] over 10 seeds (3 seeds: 0.75x [0.27, 2.04])"),
            )
        }
    },
)
def eval_noise_scale_rises(plan: Plan, runs: Runs) -> list[Verdict]:
    out = []
    for start, label in FROM.items():
        for o in plan.workload.optimizers:
            results = [get_run(runs, plan.config(o, "constant", k)) for k in plan.seeds]
            first = [b_simple_at(r, start) for r in results]
            last = [r.final.b_simple for r in results]
            v = one_sided(
                "noise-scale-rises",
                f"{o}-{start}",
                [log_rise(a, b) for a, b in zip(first, last, strict=True)],
                alpha_refute=refute_alpha("noise-scale-rises", plan.workload),
                unit="x",
                bound=f"B_simple(last epoch) / B_simple({label}) > 1",
                interval_transform=math.exp,
            )
            out.append(dataclasses.replace(v, detail=f"B_simple from {_values(first)} to {_values(last)}"))
    return out


def _values(values) -> str:
    return "[" + ", ".join(f"{v:.0f}" for v in values) + "]"

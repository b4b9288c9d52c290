"""The group report's own numbers and settings (MNIST): Victor Zhou's Adam baseline, the report's SGD
settings as run, and its "within 1% for all setups" with its own per-schedule rates."""

from __future__ import annotations

import dataclasses

import numpy as np

from reproduction.claims.base import (
    KnownFailure,
    Plan,
    Runs,
    at_least,
    final_accuracy,
    get_run,
    paired,
    refute_alpha,
    register,
    tost,
)
from reproduction.claims.guards import borrowed_power, control_runs, with_power
from reproduction.config import ModelOptions
from reproduction.schedules import MAIN_SCHEDULES
from reproduction.stats import REFUTED, UNDECIDED, Verdict

REPORT_ACCURACY = {"decay": 97.66, "increase": 97.44, "hybrid": 97.59}  # report notebooks @ b002b57, percent
REPORT_LR = {"decay": 0.15, "increase": 0.07, "hybrid": 0.05}  # the report's own SGD base rates per schedule
ZHOU_ACCURACY = 97.44  # the report's Adam baseline (Victor Zhou's CNN), percent
ZHOU_SECONDS = 49.19  # its wall clock on the report's machine


def baseline_configs(plan: Plan) -> list:
    """Victor Zhou's Keras CNN (no batch norm), Adam at Keras's default 0.001, batch 32, 6 epochs."""
    return [
        plan.config(
            "adam", "constant", k, base_lr=0.001, base_batch=32, model=ModelOptions(normalization="none")
        )
        for k in plan.seeds
    ]


def report_configs(plan: Plan) -> list:
    """The report's own SGD settings (no momentum), one base rate per schedule as its notebooks had."""
    return [plan.config("sgd", s, k, base_lr=REPORT_LR[s]) for k in plan.seeds for s in MAIN_SCHEDULES]


@register(
    id="baseline-adam",
    source="report (Victor Zhou's CNN, 97.44% in 49.19 s)",
    statement="the no-BN CNN with Adam, batch 32, 6 epochs reaches at least the report's 97.44%",
    quantity="final test accuracy over seeds",
    bound=">= 97.44%",
    test="one-sided t, alpha 0.05",
    would_fail_if="a broken no-BN model path or optimizer",
    params=("zhou-adam-b32",),
    workloads=("mnist",),
    full_profile_only=True,
    needs=baseline_configs,
    known_failures={
        "mnist": {
            "zhou-adam-b32": KnownFailure(
                "not reached (full profile, 10 seeds): mean 97.33% (90% interval [97.21, 97.44]), seeds "
                "96.99-97.59%, against the report's 97.44% from a single run: refuted, narrowly, at alpha "
                "0.05. The report's figure lies inside our seed spread (4 of 10 seeds reached it), so its "
                "one run reads as a good draw rather than a different model",
                effect_range=(96.9, 97.44),  # just short of 97.44%; lower: a broken path
                verdicts=(REFUTED, UNDECIDED),
            )
        }
    },
)
def eval_baseline(plan: Plan, runs: Runs) -> list[Verdict]:
    results = [get_run(runs, c) for c in baseline_configs(plan)]
    accs = [100.0 * r.final.test_accuracy for r in results]
    seconds = float(np.median([r.train_seconds for r in results]))
    v = at_least(
        "baseline-adam",
        "zhou-adam-b32",
        accs,
        ZHOU_ACCURACY,
        alpha_refute=refute_alpha("baseline-adam", plan),
        unit=" %",
        bound=f"mean test accuracy >= the report's {ZHOU_ACCURACY}% (one-sided t, alpha 0.05)",
    )
    remark = (
        f"median train time {seconds:.1f} s here vs the report's {ZHOU_SECONDS} s on its own CPU (a remark)"
    )
    return [dataclasses.replace(v, detail=remark)]


@register(
    id="report-as-run",
    source="report notebooks, JCDetwiler/batch-size-mnist @ b002b57",
    statement="with the report's own SGD settings our engine reaches the report's 97.66 / 97.44 / 97.59% "
    "(decay / increase / hybrid)",
    quantity="final test accuracy minus the report's logged value, over seeds",
    bound="|diff| < 0.5 pt",
    test="TOST (one-sample), alpha 0.05",
    would_fail_if="an engine that trains differently from Keras (preprocessing, init, loss, ghost BN)",
    params=MAIN_SCHEDULES,
    workloads=("mnist",),
    full_profile_only=True,
    needs=report_configs,
    known_failures={
        "mnist": {
            "hybrid": KnownFailure(
                "measured at code version 5 (one TensorFlow thread): the report's hybrid at its own rate "
                "0.05 reached a mean 97.03% over 10 seeds (96.63-97.27%) against the 97.59% its notebook "
                "logged from one run, -0.56 pt (90% interval [-0.67, -0.46]) against a 0.5-pt bound: "
                "undecided, leaning beyond. Decay and increase at their own rates reproduce their logged "
                "values; the report's hybrid run lies above all ten of our seeds",
                effect_range=(-1.0, -0.3),  # about half a point short; further: the engine, not a draw
                verdicts=(UNDECIDED, REFUTED),
            )
        }
    },
)
def eval_report_as_run(plan: Plan, runs: Runs) -> list[Verdict]:
    from reproduction.claims.base import Pairs

    out = []
    for s in MAIN_SCHEDULES:
        d = tuple(
            final_accuracy(runs, plan.config("sgd", s, k, base_lr=REPORT_LR[s])) - REPORT_ACCURACY[s]
            for k in plan.seeds
        )
        out.append(
            tost(
                "report-as-run",
                s,
                Pairs(d, (), ()),
                0.5,
                alpha_refute=refute_alpha("report-as-run", plan),
                unit=" pt",
                bound=f"|acc - report's {REPORT_ACCURACY[s]}%| < 0.5 pt (TOST, alpha 0.05)",
            )
        )
    return out


@register(
    id="report-within-1pt",
    source="report: 'within 1% for all setups', as its notebooks ran it",
    statement="with the report's own per-schedule SGD rates (decay 0.15, hybrid 0.05, increase 0.07), "
    "hybrid and increase end within 1 pt of decay",
    quantity="paired difference of final test accuracy (schedule - decay) over seeds, in points",
    bound="90% interval inside +-1 pt",
    test="TOST, alpha 0.05; refuted at 0.05 / 2",
    would_fail_if="a schedule whose own rate is far from decay's in effect (the report's confound)",
    params=("hybrid", "increase"),
    workloads=("mnist",),
    full_profile_only=True,  # 15 runs at 5 seeds: past the quick profile's time budget
    needs=lambda plan: [*report_configs(plan), *control_runs(plan, "accuracy-within-1pt")],
)
def eval_report_within_1pt(plan: Plan, runs: Runs) -> list[Verdict]:
    out = []
    for s in ("hybrid", "increase"):
        pairs = [
            (
                plan.config("sgd", s, k, base_lr=REPORT_LR[s]),
                plan.config("sgd", "decay", k, base_lr=REPORT_LR["decay"]),
            )
            for k in plan.seeds
        ]
        v = tost(
            "report-within-1pt",
            s,
            paired(runs, pairs, "test_accuracy"),
            1.0,
            alpha_refute=refute_alpha("report-within-1pt", plan),
            unit=" pt",
            bound="|acc(schedule at its own rate) - acc(decay at 0.15)| < 1 pt (TOST, alpha 0.05)",
        )
        out.append(with_power(v, borrowed_power(plan, runs, "sgd", "report-within-1pt")))
    return out

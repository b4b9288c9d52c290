"""The group report's own numbers: Victor Zhou's Adam baseline and the report's SGD settings as run."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from reproduction.claims.base import (
    Claim,
    KnownFailure,
    Runs,
    at_least,
    final_accuracy,
    get_run,
    refute_alpha,
    register,
    tost,
)
from reproduction.claims.plan import REPORT_ACCURACY, REPORT_LR, ZHOU_ACCURACY, ZHOU_SECONDS, baseline_configs
from reproduction.config import RunConfig
from reproduction.schedules import MAIN_SCHEDULES
from reproduction.stats import Verdict


@register(
    Claim(
        "baseline-adam",
        "report (Victor Zhou's CNN, 97.44% in 49.19 s)",
        "the no-BN CNN with Adam, batch 32, 6 epochs reaches at least the report's 97.44%",
        "final test accuracy over seeds",
        ">= 97.44%",
        "one-sided t, alpha 0.05",
        "baseline runs",
        "a broken no-BN model path or optimizer",
        params=("zhou-adam-b32",),
        full_profile_only=True,
        known_failures={
            "zhou-adam-b32": KnownFailure(
                "not reached (full profile, 10 seeds): mean 97.33% (90% interval [97.21, 97.44]), seeds "
                "96.99-97.59%, against the report's 97.44% from a single run: refuted, narrowly, at alpha "
                "0.05. The report's figure lies inside our seed spread (4 of 10 seeds reached it), so "
                "its one run reads as a good draw rather than a different model",
                effect_range=(96.5, math.inf),
            ),  # just short of 97.44%; below 96.5%: a broken path
        },
    )
)
def eval_baseline(runs: Runs, seeds) -> list[Verdict]:
    results = [get_run(runs, c) for c in baseline_configs(seeds)]
    accs = [100.0 * r.final.test_accuracy for r in results]
    seconds = float(np.median([r.train_seconds for r in results]))
    v = at_least(
        "baseline-adam",
        "zhou-adam-b32",
        accs,
        ZHOU_ACCURACY,
        unit=" %",
        alpha_refute=refute_alpha("baseline-adam"),
        bound=f"mean test accuracy >= the report's {ZHOU_ACCURACY}% (one-sided t, alpha 0.05)",
    )
    return [
        dataclasses.replace(
            v,
            detail=f"median train time {seconds:.1f} s here vs the report's "
            f"{ZHOU_SECONDS} s on its own CPU (a remark, not a test)",
        )
    ]


@register(
    Claim(
        "report-as-run",
        "report notebooks, JCDetwiler/batch-size-mnist @ b002b57",
        "with the report's own SGD settings our engine reaches the report's 97.66 / 97.44 / 97.59% "
        "(decay / increase / hybrid)",
        "final test accuracy minus the report's logged value, over seeds",
        "|diff| < 0.5 pt",
        "TOST (one-sample), alpha 0.05",
        "SGD at the report's per-schedule base rates",
        "an engine that trains differently from Keras (preprocessing, init, loss, ghost BN)",
        params=MAIN_SCHEDULES,
        full_profile_only=True,
    )
)
def eval_report_as_run(runs: Runs, seeds) -> list[Verdict]:
    out = []
    for s in MAIN_SCHEDULES:
        d = [
            final_accuracy(runs, RunConfig("sgd", s, k, base_lr=REPORT_LR[s])) - REPORT_ACCURACY[s]
            for k in seeds
        ]
        out.append(
            tost(
                "report-as-run",
                s,
                d,
                margin=0.5,
                unit=" pt",
                alpha_refute=refute_alpha("report-as-run"),
                bound=f"|acc - report's {REPORT_ACCURACY[s]}%| < 0.5 pt (TOST, alpha 0.05)",
            )
        )
    return out

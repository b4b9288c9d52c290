"""Negative controls: configurations the theory says must not match decay (the workload's ``controls``),
judged by the TOST, the margin and the refutation level of the equivalence claim they guard
(reproduction/claims/guards.py).
"""

from __future__ import annotations

from reproduction.claims.base import KnownFailure, Plan, Runs, register
from reproduction.claims.guards import control_runs, judge_control
from reproduction.claims.plan import main_grid
from reproduction.stats import Verdict


def _control_params(plan: Plan) -> tuple[str, ...]:
    return tuple(f"{o}-{c.name}" for o in plan.optimizers for c in plan.controls(o))


MNIST_EPS5 = (  # code version 6: calibration seeds 1000-1005 (mean), full profile (10 seeds, 90% interval)
    ("momentum", "-0.48 pt", "-0.64 pt [-0.72, -0.55]"),
    ("nesterov", "-0.50 pt", "-0.62 pt [-0.71, -0.53]"),
    ("adam", "-0.20 pt", "-0.34 pt [-0.43, -0.24]"),
)


@register(
    id="negative-control",
    source="this suite's pre-registered controls (verdicts that discriminate)",
    statement="configurations the theory says must not match decay are told apart from it by the same TOST, "
    "margin and refutation level as the equivalence claim they guard (the workload's controls: e.g. no "
    "annealing (constant) in train loss; a noise scale 5x lower from the start (eps/5) and B 2500 "
    "throughout in test accuracy)",
    quantity="paired difference control - decay over seeds (train loss; test accuracy in points)",
    bound="90% interval beyond the guarded claim's margin on the predicted side",
    test="TOST, equivalence refuted at the guarded claim's refutation level; equivalent or undecided is red",
    would_fail_if="an engine that ignores the schedule or the batch size (controls would train like decay), "
    "or a margin too wide to tell them apart",
    params=_control_params,
    needs=lambda plan: [*main_grid(plan), *control_runs(plan)],
    known_failures={
        "mnist": {
            "sgd-constant": KnownFailure(
                "annealing does not matter for plain SGD at its tuned rate (eps 0.1, B 100, g = 60): no "
                "noise reduction at all ends with decay's train loss, +0.0024 on the calibration seeds "
                "(pre-registered as not discriminating) and +0.0013 (90% interval [-0.0002, +0.0028]) over "
                "the full profile's 10 seeds, inside the margin 0.0049 (equivalent), so the SGD train-loss "
                "equivalences cannot fail for a missing decay here. The claim high-noise runs SGD where it "
                "does matter (docs/annealing.md)",
                effect_range=(-0.005, 0.005),  # inside the margin; beyond it, annealing started to matter
            ),
            **{
                f"{o}-eps5": KnownFailure(
                    f"a noise scale 5x lower from the start costs {o} only {drop} in test accuracy on the "
                    f"calibration seeds (pre-registered as not discriminating) and {drop10} over 10 seeds "
                    "(equivalent), inside the paper's 1-pt bound: the accuracy claim cannot tell decay from "
                    "eps/5 for this optimizer on MNIST (it can for SGD, -2.4 pt; B 2500 throughout is "
                    "refuted for every optimizer; on Fashion-MNIST the calibrated accuracy claim tells "
                    "eps/5 apart). The train-loss claim, whose constant control is refuted for this "
                    "optimizer, is the one that discriminates",
                    effect_range=(-1.0, 0.5),  # a drop inside the margin; beyond it: discriminates
                )
                for o, drop, drop10 in MNIST_EPS5
            },
        }
    },
)
def eval_negative_controls(plan: Plan, runs: Runs) -> list[Verdict]:
    """Each control against decay, paired by seed, at the guarded claim's margin and level."""
    return [judge_control(plan, runs, o, c) for o in plan.optimizers for c in plan.controls(o)]

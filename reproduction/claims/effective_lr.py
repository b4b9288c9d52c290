"""Paper 5.2: a larger initial learning rate, or momentum 0.98, with the batch raised to keep g."""

from __future__ import annotations

from reproduction.claims.base import (
    KnownFailure,
    Plan,
    Runs,
    exact,
    get_run,
    paired,
    refute_alpha,
    register,
    tost,
)
from reproduction.claims.guards import borrowed_power, control_runs, with_power
from reproduction.stats import REFUTED, Verdict

VARIANTS = ("increase-initial-lr", "increase-momentum")


def _runs(plan: Plan) -> list:
    own = [plan.config("momentum", s, k) for k in plan.seeds for s in (*VARIANTS, "decay")]
    return [*own, *control_runs(plan, "accuracy-within-1pt")]  # the power its accuracy test borrows


@register(
    id="effective-lr",
    source="paper Sec. 5.2 (Fig. 5, Table 1)",
    statement="raising the initial learning rate (with B), or the momentum to 0.98 (with B x5), keeps g and "
    "needs fewer updates; accuracy stays within 1 pt of decay (the paper saw a drop for momentum 0.98)",
    quantity="update counts; paired accuracy difference vs momentum-decay",
    bound="fewer updates; |diff| < 1 pt",
    test="exact for updates; TOST for accuracy (a diverged run refutes it)",
    would_fail_if="variants that change g, or a momentum override that does not reach the optimizer",
    params=(
        "increase-initial-lr-updates",
        "increase-initial-lr-accuracy",
        "increase-momentum-updates",
        "increase-momentum-accuracy",
    ),
    workloads=("mnist",),
    full_profile_only=True,  # 6 runs a seed, undecided at 3 seeds either way
    needs=_runs,
    known_failures={
        "mnist": {
            "increase-initial-lr-accuracy": KnownFailure(
                "not reproduced: with momentum 0.9 and the shared base rate 0.03, eps x5 = 0.15 at B 500 "
                "diverged (NaN loss, 9.80%) on 4 of the full profile's 10 seeds, which refutes the accuracy "
                "claim; the 6 seeds that trained reached 96.54-97.21% against decay's 97.62-97.90% (about "
                "-1 pt; code version 6, the same 4 seeds diverged at version 5). The paper raised eps on "
                "CIFAR-10 with a ResNet; on this model the stability limit of eps binds first "
                "(docs/tuning.md)",
                # the seeds that trained: a drop near 1 pt; a run at chance on every seed is a setup failure
                effect_range=(-2.5, 0.0),
                verdicts=(REFUTED,),
            ),
            "increase-momentum-accuracy": KnownFailure(
                "the paper's drop reproduces, larger: momentum 0.98 with B x5 reached a mean 95.43% over 10 "
                "seeds (94.41-96.53%) against decay's 97.78%, -2.35 pt (90% interval [-2.76, -1.94], "
                "refuted; code version 5: -2.19 pt) where the paper saw 93.3% vs 94.4% (-1.1 pt)",
                effect_range=(-5.0, -1.0),  # a drop beyond 1 pt; far below: diverged, not this drop
            ),
        }
    },
)
def eval_effective_lr(plan: Plan, runs: Runs) -> list[Verdict]:
    out = []
    inc = plan.config("momentum", "increase", 0).build_schedule().parameter_updates(plan.workload.n_train)
    for s in VARIANTS:
        counted = {get_run(runs, plan.config("momentum", s, k)).parameter_updates for k in plan.seeds}
        n = max(counted)
        out.append(
            exact(
                "effective-lr",
                f"{s}-updates",
                n < inc and len(counted) == 1,
                n / inc,
                "updates < increase's",
                "x",
                detail=f"{n} vs {inc} updates",
            )
        )
        pairs = [(plan.config("momentum", s, k), plan.config("momentum", "decay", k)) for k in plan.seeds]
        v = tost(
            "effective-lr",
            f"{s}-accuracy",
            paired(runs, pairs, "test_accuracy"),
            1.0,
            alpha_refute=refute_alpha("effective-lr", plan),
            unit=" pt",
            bound="|acc - acc(decay)| < 1 pt (TOST, alpha 0.05)",
        )
        out.append(with_power(v, borrowed_power(plan, runs, "momentum", "effective-lr")))
    return out

"""Equivalence of the schedules (paper 5.1, Fig. 3): hybrid and increase against decay, in test accuracy
and train loss; and equal noise scale through eps and B (the report's critique).

Each equivalence verdict says which of its negative controls its own test, at its own level, told apart
from decay (reproduction/claims/guards.py): a claim whose controls are not told apart has no demonstrated
power against that difference, and its verdict says so; one that none of its controls was told apart for
is undecided, whatever its own interval (guards.with_power).
"""

from __future__ import annotations

from reproduction import calibration
from reproduction.claims.base import Plan, Runs, paired, refute_alpha, register, tost
from reproduction.claims.guards import borrowed_power, control_runs, power, with_power
from reproduction.claims.plan import main_grid
from reproduction.stats import Verdict

COMPARED = ("hybrid", "increase")


def _schedule_params(plan: Plan) -> tuple[str, ...]:
    return tuple(f"{o}-{s}" for o in plan.optimizers for s in COMPARED)


def _equivalence(
    plan: Plan, runs: Runs, claim: str, quantity: str, margin_of, unit: str, bound_of
) -> list[Verdict]:
    out = []
    for o in plan.optimizers:
        margin = margin_of(o)
        shown = power(plan, runs, o, claim)
        for s in COMPARED:
            pairs = [(plan.config(o, s, k), plan.config(o, "decay", k)) for k in plan.seeds]
            v = tost(
                claim,
                f"{o}-{s}",
                paired(runs, pairs, quantity),
                margin,
                alpha_refute=refute_alpha(claim, plan),
                unit=unit,
                bound=bound_of(o, s, margin),
            )
            out.append(with_power(v, shown))
    return out


@register(
    id="accuracy-within-1pt",
    source="paper Sec. 5.1 (Fig. 2); report",
    statement="final test accuracy of hybrid and increase is within 1 point of decay, for every optimizer",
    quantity="paired difference of final test accuracy (schedule - decay) over seeds, in points",
    bound="90% interval inside +-1 pt",
    test="TOST (two one-sided paired t tests), alpha 0.05; refuted at 0.05 / the claim's parameter sets",
    would_fail_if="increase/hybrid with a different base learning rate, a broken batch-size change, a model "
    "that stops learning at large batch, or a schedule that diverges on any seed",
    params=_schedule_params,
    needs=lambda plan: [*main_grid(plan), *control_runs(plan, "accuracy-within-1pt")],
)
def eval_accuracy_within_1pt(plan: Plan, runs: Runs) -> list[Verdict]:
    return _equivalence(
        plan,
        runs,
        "accuracy-within-1pt",
        "test_accuracy",
        lambda o: 1.0,
        " pt",
        lambda o, s, margin: "|acc(schedule) - acc(decay)| < 1 pt (TOST, alpha 0.05)",
    )


@register(
    id="train-loss-equivalent",
    source="paper Fig. 3",
    statement="final training loss of hybrid and increase is equivalent to decay's",
    quantity="paired difference of final training loss (mean over the last epoch), over seeds",
    bound="90% interval inside +-margin, margin = 2 sd of decay's final train loss across separate "
    "calibration seeds (1000 and up), pre-registered with every loss in the workload's pre-registration "
    "file (`reproduction calibrate`; a schedule may differ from decay by as much as two decay seeds do)",
    test="TOST, alpha 0.05; refuted at 0.05 / the claim's parameter sets",
    would_fail_if="a schedule that trains less (e.g. fewer epochs or a smaller effective learning rate), or "
    "one that diverges on any seed",
    params=_schedule_params,
    needs=lambda plan: [*main_grid(plan), *control_runs(plan, "train-loss-equivalent")],
)
def eval_train_loss(plan: Plan, runs: Runs) -> list[Verdict]:
    margins = calibration.read_margins(plan.workload)  # pre-registered

    def bound(o, s, margin):
        m = margins[o]
        return (
            f"|loss(schedule) - loss(decay)| < {margin:.4f} = 2 x decay's seed sd {m.sd:.4f} on "
            f"{len(m.seeds)} calibration seeds (TOST)"
        )

    return _equivalence(
        plan, runs, "train-loss-equivalent", "train_loss", lambda o: margins[o].margin, "", bound
    )


def _calibrated_accuracy(plan: Plan) -> bool:
    return plan.workload.accuracy_equivalence


@register(
    id="accuracy-equivalent",
    source="this suite: the paper's accuracy claim at a margin annealing can exceed (Fashion-MNIST)",
    statement="final test accuracy of hybrid and increase is equivalent to decay's within the seed-to-seed "
    "scatter, a margin that no annealing (constant) and a 5x lower noise scale (eps/5) can be told apart by",
    quantity="paired difference of final test accuracy (schedule - decay) over seeds, in points",
    bound="90% interval inside +-margin, margin = 2 sd of decay's final test accuracy across separate "
    "calibration seeds, pre-registered in the workload's file (`reproduction calibrate`)",
    test="TOST, alpha 0.05; refuted at 0.05 / the claim's parameter sets",
    would_fail_if="a schedule whose noise reduction comes too early, too late or not at all (its controls), "
    "a broken batch-size change, or a schedule that diverges on any seed",
    params=lambda plan: _schedule_params(plan) if _calibrated_accuracy(plan) else (),
    needs=lambda plan: (
        [*main_grid(plan), *control_runs(plan, "accuracy-equivalent")] if _calibrated_accuracy(plan) else []
    ),
)
def eval_accuracy_equivalent(plan: Plan, runs: Runs) -> list[Verdict]:
    margins = calibration.read_margins(plan.workload)  # pre-registered

    def margin_of(o):
        return margins[o].for_claim("accuracy-equivalent")[0]

    def bound(o, s, margin):
        return (
            f"|acc(schedule) - acc(decay)| < {margin:.2f} pt = 2 x decay's seed sd on "
            f"{len(margins[o].seeds)} calibration seeds (TOST)"
        )

    return _equivalence(plan, runs, "accuracy-equivalent", "test_accuracy", margin_of, " pt", bound)


def _noise_control_pairs(plan: Plan, seeds=None):
    """SGD decay at eps/5 with the base batch against eps with 5x the base batch: equal noise scale."""
    w = plan.workload
    lr, batch = w.learning_rate("sgd"), w.base_batch
    seeds = plan.seeds if seeds is None else seeds
    return [
        (
            plan.config("sgd", "decay", k, base_lr=lr, base_batch=5 * batch),
            plan.config("sgd", "decay", k, base_lr=lr / 5, base_batch=batch),
        )
        for k in seeds
    ]


@register(
    id="noise-scale-control",
    source="the report's own critique (learning rate and batch confounded)",
    statement="equal g with eps and B both x5 gives equal accuracy (decay at (eps, 5B) vs (eps/5, B))",
    quantity="paired accuracy difference",
    bound="|diff| < 1 pt",
    test="TOST, alpha 0.05",
    would_fail_if="g not being the variable that matters, e.g. a learning-rate effect beyond g",
    params=lambda plan: ("equal-g-eps-and-B-x5",) if "sgd" in plan.optimizers else (),
    needs=lambda plan: [
        *(c for pair in _noise_control_pairs(plan) for c in pair),
        *control_runs(plan, "accuracy-within-1pt"),
    ],
)
def eval_noise_control(plan: Plan, runs: Runs) -> list[Verdict]:
    evidence = paired(runs, _noise_control_pairs(plan), "test_accuracy")
    v = tost(
        "noise-scale-control",
        "equal-g-eps-and-B-x5",
        evidence,
        1.0,
        alpha_refute=refute_alpha("noise-scale-control", plan),
        unit=" pt",
        bound="|acc(eps, 5B) - acc(eps/5, B)| < 1 pt (TOST, alpha 0.05)",
    )
    return [with_power(v, borrowed_power(plan, runs, "sgd", "noise-scale-control"))]

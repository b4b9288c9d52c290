"""The main claims where annealing matters for plain SGD (the workload's ``high_noise``,
docs/annealing.md)."""

from __future__ import annotations

from reproduction.claims.base import HOLDS, Plan, Runs, paired, refute_alpha, register, tost
from reproduction.claims.guards import Power, control_verdict, with_power
from reproduction.schedules import MAIN_SCHEDULES
from reproduction.stats import Verdict

PARAMS = (
    "hybrid-test_accuracy",
    "increase-test_accuracy",
    "hybrid-train_loss",
    "increase-train_loss",
    "constant-control",
)


def _runs(plan: Plan) -> list:
    setting = plan.workload.high_noise
    assert setting is not None, "registered for workloads with a high-noise setting only"
    return [setting.config(plan.workload, s, k) for k in plan.seeds for s in (*MAIN_SCHEDULES, "constant")]


def _pairs(plan: Plan, schedule: str):
    setting, w = plan.workload.high_noise, plan.workload
    assert setting is not None, "registered for workloads with a high-noise setting only"
    return [(setting.config(w, schedule, k), setting.config(w, "decay", k)) for k in plan.seeds]


@register(
    id="high-noise",
    source="paper Sec. 5.1 and Fig. 3, where annealing matters (docs/annealing.md)",
    statement="at a setting where lowering g matters for plain SGD (the workload's high-noise setting, "
    "pre-registered from search seeds 2000 and up), hybrid and increase still match decay in test accuracy "
    "and train loss, while no annealing does not",
    quantity="paired differences schedule - decay over seeds: test accuracy (pt) and final train loss",
    bound="accuracy within 1 pt; train loss within 2 sd of decay on the search seeds; constant beyond that",
    test="TOST, alpha 0.05; the control: equivalence refuted at this claim's refutation level; a row whose "
    "quantity does not tell the constant runs apart is undecided (no power)",
    would_fail_if="a schedule that lowers g less than decay does, a schedule that diverges, or an engine "
    "that ignores the schedule (the control would then match decay)",
    params=lambda plan: PARAMS if plan.workload.high_noise is not None else (),
    needs=_runs,
)
def eval_high_noise(plan: Plan, runs: Runs) -> list[Verdict]:
    """The main claims, and the constant control, at the high-noise setting."""
    out = []
    level = refute_alpha("high-noise", plan)
    margins = {"test_accuracy": (1.0, " pt"), "train_loss": (plan.workload.high_noise_margin(), "")}
    for quantity, (margin, unit) in margins.items():
        shown = _constant_power(plan, runs, quantity, margin, unit, level)
        for s in ("hybrid", "increase"):
            v = tost(
                "high-noise",
                f"{s}-{quantity}",
                paired(runs, _pairs(plan, s), quantity),
                margin,
                alpha_refute=level,
                unit=unit,
                bound=f"|{quantity}({s}) - {quantity}(decay)| < {margin:.4g}{unit} (TOST)",
            )
            out.append(with_power(v, shown))
    evidence = paired(runs, _pairs(plan, "constant"), "train_loss")
    description = "no noise reduction at this setting, in train loss"
    margin = plan.workload.high_noise_margin()
    return [
        *out,
        control_verdict("high-noise", "constant-control", evidence, margin, "", +1, description, level),
    ]


def _constant_power(plan: Plan, runs: Runs, quantity: str, margin: float, unit: str, level: float) -> Power:
    """Whether no annealing (the constant runs) is told apart from decay in ``quantity`` by the rows' own
    test: their power. The search that chose the setting pre-registered it for train loss; for test accuracy
    the workload records what the search seeds showed (``high_noise_constant_accuracy``)."""
    direction = +1 if quantity == "train_loss" else -1
    evidence = paired(runs, _pairs(plan, "constant"), quantity)
    v = control_verdict("high-noise", "constant", evidence, margin, unit, direction, "", level)
    told = v.verdict == HOLDS
    searched = plan.workload.high_noise_constant_accuracy
    predicted_none = quantity == "test_accuracy" and searched is not None and abs(searched) < margin
    note = f"{'told apart' if told else 'NO demonstrated power against'}: constant ({v.effect:+.3g}{unit})"
    if predicted_none:
        note += (
            f" (pre-registered: {searched:+.2f}{unit} on the search seeds, inside the margin: no seed count "
            "tells it apart)"
        )
    return Power(("constant",) if told else (), predicted_none, None, note)

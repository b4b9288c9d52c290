"""Judging a negative control (a workload's ``controls``): the TOST, the margin and the refutation level of
the equivalence claim it guards; and what those verdicts say about the guarded claim's power.
"""

from __future__ import annotations

import dataclasses

from reproduction import calibration
from reproduction.claims.base import HOLDS, REFUTED, UNDECIDED, Plan, Runs, paired, refute_alpha, tost
from reproduction.stats import Verdict
from reproduction.workloads import Control

GUARDED_CLAIMS = ("train-loss-equivalent", "accuracy-within-1pt", "accuracy-equivalent")  # report order


def control_margin(plan: Plan, optimizer: str, claim: str) -> tuple[float, str]:
    """The margin (and unit) of an equivalence claim, which the controls it guards must be beyond."""
    if claim == "accuracy-within-1pt":
        return calibration.ACCURACY_MARGIN, " pt"
    return calibration.read_margins(plan.workload)[optimizer].for_claim(claim)


def control_runs(plan: Plan, claim: str | None = None) -> list:
    return [
        c.config(plan.workload, o, k)
        for k in plan.seeds
        for o in plan.optimizers
        for c in plan.controls(o)
        if claim is None or c.claim == claim
    ]


def control_verdict(
    claim: str,
    params: str,
    evidence,
    margin: float,
    unit: str,
    direction: int,
    description: str,
    alpha: float,
) -> Verdict:
    """A negative control holds when the TOST refutes equivalence on the predicted side at ``alpha``, the
    refutation level of the claim it guards (or a control run diverged while its decay partner trained:
    not equivalent either way); equivalent or undecided is refuted: the margin does not discriminate at these
    seeds. A diverged decay run shows nothing of the control: a setup failure, red. ``evidence``: pairs
    (control, decay)."""
    sign = ">" if direction > 0 else "<"
    equivalence = tost(
        claim,
        params,
        evidence,
        margin,
        alpha_refute=alpha,
        unit=unit,
        bound=f"control - decay {sign} {direction * margin:+.4g}{unit} (equivalence refuted, alpha "
        f"{alpha:.3g})",
    )
    decay_diverged = [k for k in evidence.one_diverged if k not in evidence.first_diverged]
    if decay_diverged:  # the pair's difference is unknown, not beyond the margin: the control is unjudged
        why = f"decay diverged ({', '.join(decay_diverged)}): it shows nothing of this control"
        return dataclasses.replace(
            equivalence,
            verdict=REFUTED,
            setup_failure=True,
            detail="; ".join(x for x in (description, equivalence.detail, why) if x),
        )
    by_divergence = bool(evidence.first_diverged)
    beyond = equivalence.verdict == REFUTED and (by_divergence or direction * equivalence.effect > 0)
    why = (
        ""
        if beyond
        else f"TOST {equivalence.verdict}: the margin does not tell this control from decay at "
        f"{len(evidence.differences)} seeds and level {alpha:.3g}"
    )
    detail = "; ".join(x for x in (description, equivalence.detail, why) if x)
    return dataclasses.replace(equivalence, verdict=HOLDS if beyond else REFUTED, detail=detail)


def judge_control(plan: Plan, runs: Runs, optimizer: str, control: Control) -> Verdict:
    pairs = [
        (control.config(plan.workload, optimizer, k), plan.config(optimizer, "decay", k)) for k in plan.seeds
    ]
    margin, unit = control_margin(plan, optimizer, control.claim)
    return control_verdict(
        "negative-control",
        f"{optimizer}-{control.name}",
        paired(runs, pairs, control.quantity),
        margin,
        unit,
        control.direction,
        control.description,
        refute_alpha(control.claim, plan),
    )


def with_detail(verdict: Verdict, note: str) -> Verdict:
    """The verdict with ``note`` added to its detail."""
    return dataclasses.replace(verdict, detail="; ".join(x for x in (verdict.detail, note) if x))


@dataclasses.dataclass(frozen=True)
class Power:
    """What an equivalence test, at its claim's level, showed it can tell apart from decay for one optimizer:
    the controls it told apart, whether the pre-registration expected none at these seeds, the fewest seeds
    at which one is expected, and all of it in words."""

    told: tuple[str, ...]
    predicted_none: bool
    seeds_to_show: int | None
    note: str


def with_power(verdict: Verdict, power: Power) -> Verdict:
    """The verdict with what its controls showed. One that holds although none of them was told apart shows
    nothing a schedule that does not anneal would not: it is undecided, as the pre-registration predicted
    (an xfail) or not (red, with the control that failed)."""
    if verdict.verdict != HOLDS or power.told:
        return with_detail(verdict, power.note)
    why = "inside its margin, but NO control told apart at this level: no demonstrated power"
    return dataclasses.replace(
        with_detail(with_detail(verdict, why), power.note),
        verdict=UNDECIDED,
        no_power="predicted" if power.predicted_none else "unpredicted",
        n_to_decide=power.seeds_to_show if power.predicted_none else None,
    )


def borrowed_power(plan: Plan, runs: Runs, optimizer: str, claim: str) -> Power:
    """For a TOST on final accuracy at 1 pt that has no controls of its own (noise-scale-control,
    effective-lr, report-within-1pt): what accuracy-within-1pt's controls for this optimizer showed the same
    test can tell apart at that claim's level, counted only where that level is at least as strict as
    ``claim``'s own (a control refuted there is refuted here)."""
    lender = "accuracy-within-1pt"
    if refute_alpha(lender, plan) > refute_alpha(claim, plan):
        note = f"NO demonstrated power: {lender}'s controls are judged at a laxer level than this claim's"
        return Power((), False, None, note)
    lent = power(plan, runs, optimizer, lender)
    note = f"power shown by {lender}'s {optimizer} controls at its stricter level: {lent.note}"
    return dataclasses.replace(lent, note=note)


def power(plan: Plan, runs: Runs, optimizer: str, claim: str) -> Power:
    """What the guarded claim's own test, at its own level, told apart for this optimizer; and the controls
    pre-registered as not discriminating, which this profile leaves out."""
    told: list[str] = []
    not_told: list[str] = []
    for control in plan.controls(optimizer):
        if control.claim != claim:
            continue
        v = judge_control(plan, runs, optimizer, control)
        (told if v.verdict == HOLDS else not_told).append(f"{control.name} ({v.effect:+.3g}{v.unit})")
    own = [c for c in plan.workload.controls if c.claim == claim]
    needed = calibration.seeds_needed(plan.workload)
    keys = [f"{optimizer}-{c.name}" for c in own]
    unregistered = [key for key in keys if key not in needed]  # added since `calibrate`: nothing predicted
    left = [c.name for c in own if c not in plan.controls(optimizer) and f"{optimizer}-{c.name}" in needed]
    counts = [n for key in keys if (n := needed.get(key)) is not None]
    parts = []
    if told:
        parts.append(f"controls told apart at this level: {', '.join(told)}")
    if not_told:
        parts.append(f"NO demonstrated power against: {', '.join(not_told)}")
    if left:
        parts.append(
            f"NO demonstrated power against: {', '.join(left)} (pre-registered as not discriminating at "
            f"{len(plan.seeds)} seeds: the calibration seeds give it less than 80% power to be refuted; not "
            "judged in this profile)"
        )
    if not own:
        parts.append("NO demonstrated power: the workload has no control for this claim")
    if unregistered:
        parts.append(f"not in the pre-registration: {', '.join(unregistered)}")
    return Power(
        tuple(told),
        predicted_none=not unregistered and not any(n <= len(plan.seeds) for n in counts),
        seeds_to_show=min(counts, default=None),
        note="; ".join(parts),
    )

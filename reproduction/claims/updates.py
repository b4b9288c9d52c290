"""Exact checks of the schedules (paper 3-5.1): equal noise scale, the update counts, and the engine's
counted updates against the closed form.
"""

from __future__ import annotations

from reproduction.claims.base import Plan, Runs, exact, get_run, register
from reproduction.claims.plan import main_grid
from reproduction.schedules import MAIN_SCHEDULES, SCHEDULES, Schedule
from reproduction.stats import Verdict
from reproduction.workloads import Workload


def workload_schedules(workload: Workload, base_lr: float = 0.1) -> dict[str, Schedule]:
    """The three main schedules in the workload's shape (base batch, factor, steps, epochs per step)."""
    shape = dict(
        base_batch=workload.base_batch,
        factor=workload.factor,
        steps=workload.steps,
        epochs_per_step=workload.epochs_per_step,
    )
    return {s: SCHEDULES[s](base_lr=base_lr, **shape) for s in MAIN_SCHEDULES}


PAPER_UPDATES = {
    "mnist": {"decay": 3600, "hybrid": 1680, "increase": 1488}
}  # the report's setting, 60k images


@register(
    id="noise-scale-equal",
    source="paper Sec. 3-4, eq. 4-5",
    statement="decay, hybrid and increase lower the noise scale g = eps N / (B (1-m)) identically",
    quantity="g per epoch for each schedule",
    bound="equal (approximate form); exact form within (N/B-1)/(N/B)",
    test="exact check in the workload's setting (hypothesis-generated schedules in tests/)",
    would_fail_if="a schedule built with another base learning rate, factor or step boundaries",
    params=("report-setup-m0.0", "report-setup-m0.9"),
)
def eval_noise_scale(plan: Plan, runs: Runs) -> list[Verdict]:
    out = []
    n = plan.workload.n_train
    for m in (0.0, 0.9):
        g = {s: sched.noise_scale(n, m) for s, sched in workload_schedules(plan.workload).items()}
        worst = max(abs(a / b - 1) for s in g for a, b in zip(g[s], g["decay"], strict=True))
        detail = "g per epoch: " + "; ".join(f"{s} {[round(v, 1) for v in g[s]]}" for s in g)
        out.append(
            exact(
                "noise-scale-equal",
                f"report-setup-m{m}",
                worst < 1e-12,
                worst,
                "relative difference to decay's g < 1e-12",
                detail=detail,
            )
        )
    return out


@register(
    id="parameter-updates",
    source="paper Sec. 5.1; report",
    statement="increase needs fewest updates, then hybrid, then decay (3600 / 1680 / 1488 on 60k images)",
    quantity="sum over epochs of ceil(N/B)",
    bound="closed form; increase <= hybrid <= decay, equal only at factor 1",
    test="exact check in the report's setting (hypothesis-generated schedules in tests/)",
    would_fail_if="a schedule whose batch sizes or phase lengths are off",
    params=MAIN_SCHEDULES,
    workloads=tuple(PAPER_UPDATES),
)
def eval_parameter_updates(plan: Plan, runs: Runs) -> list[Verdict]:
    expected = PAPER_UPDATES[plan.workload.name]
    schedules = workload_schedules(plan.workload)
    counts = {s: sched.parameter_updates(plan.workload.n_train) for s, sched in schedules.items()}
    return [
        exact("parameter-updates", s, counts[s] == expected[s], counts[s], f"== {expected[s]}", " updates")
        for s in MAIN_SCHEDULES
    ]


@register(
    id="fewer-updates",
    source="paper Sec. 5.1",
    statement="the engine's update counts equal the schedule's closed form, and increase needs fewer than "
    "hybrid, which needs fewer than decay",
    quantity="optimizer iterations per run",
    bound="== closed form; increase < hybrid < decay",
    test="exact",
    would_fail_if="an engine that drops or adds the last partial batch, or miscounts steps",
    params=lambda plan: plan.optimizers,
    needs=main_grid,
)
def eval_fewer_updates(plan: Plan, runs: Runs) -> list[Verdict]:
    out = []
    for o in plan.optimizers:
        counted = {
            s: [get_run(runs, plan.config(o, s, k)).parameter_updates for k in plan.seeds]
            for s in MAIN_SCHEDULES
        }
        closed = {
            s: plan.config(o, s, 0).build_schedule().parameter_updates(plan.workload.n_train)
            for s in MAIN_SCHEDULES
        }
        counts_match = all(c == closed[s] for s in MAIN_SCHEDULES for c in counted[s])
        ordered = closed["increase"] < closed["hybrid"] < closed["decay"]
        ratio = closed["increase"] / closed["decay"]
        detail = (
            "counted "
            + ", ".join(f"{s} {sorted(set(counted[s]))}" for s in MAIN_SCHEDULES)
            + "; closed form "
            + ", ".join(f"{s} {closed[s]}" for s in MAIN_SCHEDULES)
        )
        out.append(
            exact(
                "fewer-updates",
                o,
                counts_match and ordered,
                ratio,
                "engine counts == closed form, increase < hybrid < decay (effect: increase / decay)",
                "x",
                detail,
            )
        )
    return out

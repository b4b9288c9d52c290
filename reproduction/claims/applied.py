"""The schedule as applied: what the optimizer and the loop did, read back, against the plan."""

from __future__ import annotations

import math
from collections.abc import Sequence

from reproduction.claims.base import Plan, Runs, exact, register
from reproduction.claims.plan import main_grid
from reproduction.results import RunResult
from reproduction.stats import Verdict
from reproduction.workloads import get_workload

LR_RTOL = 1e-6  # the learning rate is a float32 variable: 2^-24 relative rounding


def schedule_mismatches(result: RunResult) -> list[tuple[str, str]]:
    """(quantity, what) wherever the optimizer or the loop did not do what the config's schedule says:
    learning_rate, momentum, batch_size (examples per update and in all) or updates."""
    n = int(result.metadata.get("n_train") or get_workload(result.config.workload).n_train)
    phases = result.config.build_schedule().per_epoch()
    momentum = result.config.momentum
    out = []
    if len(phases) != len(result.epochs):
        out.append(
            (
                "updates",
                f"{result.config.key()}: {len(result.epochs)} epochs recorded, {len(phases)} scheduled",
            )
        )
    for p, e in zip(phases, result.epochs, strict=False):
        where = f"{result.config.key()} epoch {e.epoch}"
        if not all(
            abs(v - p.learning_rate) <= LR_RTOL * p.learning_rate
            for v in (e.applied_lr_min, e.applied_lr_max)
        ):
            out.append(
                (
                    "learning_rate",
                    f"{where}: applied [{e.applied_lr_min:.6g}, {e.applied_lr_max:.6g}], scheduled "
                    f"{p.learning_rate:.6g}",
                )
            )
        if not abs(e.applied_momentum - momentum) <= 1e-12:
            out.append(("momentum", f"{where}: applied {e.applied_momentum:.6g}, scheduled {momentum:.6g}"))
        updates = math.ceil(n / p.batch_size)
        last = n - (updates - 1) * p.batch_size
        if (e.applied_batch_max, e.applied_batch_min, e.applied_examples) != (p.batch_size, last, n):
            out.append(
                (
                    "batch_size",
                    f"{where}: {e.applied_batch_min}-{e.applied_batch_max} examples per update, "
                    f"{e.applied_examples} in all; scheduled {p.batch_size} (last {last}), {n}",
                )
            )
        if e.steps != updates:
            out.append(
                ("updates", f"{where}: {e.steps} updates, scheduled ceil({n}/{p.batch_size}) = {updates}")
            )
    return out


def schedule_applied_verdict(params: str, results: Sequence[RunResult]) -> Verdict:
    found = [m for r in results for m in schedule_mismatches(r)]
    kinds = sorted({k for k, _ in found})
    epochs = sum(len(r.epochs) for r in results)
    detail = (
        f"{len(results)} runs, {epochs} epochs: learning rate, momentum, examples per update and updates as "
        "the optimizer and the loop applied them"
    )
    if found:
        detail = f"{len(found)} mismatches ({', '.join(kinds)}), e.g. " + "; ".join(w for _, w in found[:3])
    return exact(
        "schedule-applied",
        params,
        not found,
        len(found),
        "applied == scheduled in every epoch (lr to float32 rounding, momentum, batch, updates)",
        " mismatches",
        detail,
    )


@register(
    id="schedule-applied",
    source="this suite's records (what the optimizer and the loop did)",
    statement="every run trains with the learning rate, momentum, batch size and number of updates its "
    "schedule prescribes, as read back from the optimizer's variables and counted in the traced loop",
    quantity="per epoch: applied lr (min and max over updates), momentum, examples per update and in all, "
    "optimizer iterations",
    bound="== the schedule (lr to float32 rounding)",
    test="exact, over every run the plan's claims read, controls included",
    would_fail_if="an engine that sets the learning rate once, ignores a momentum override, feeds another "
    "batch size, or drops the last partial batch",
    params=lambda plan: plan.optimizers,
    needs=main_grid,
)
def eval_schedule_applied(plan: Plan, runs: Runs) -> list[Verdict]:
    """Every run handed in (the plan's runs, controls included), by optimizer."""
    return [
        schedule_applied_verdict(o, [r for c, r in runs.items() if c.optimizer == o]) for o in plan.optimizers
    ]

"""The run plan: the union of the runs every claim of a plan needs, the timed ones first, in their order.

Timed runs (those whose training seconds a claim reads) train alone on the machine, in blocks of one optimizer
and seed, one block at a time, each block's epochs interleaved (training.Trainer.train_timed). The order of
the three schedules inside a block follows a Williams design for three treatments, cycled over the blocks:
each schedule comes first, second and third equally often, and follows each other schedule equally often, in
every six blocks, so a drift of the machine's speed (or a warm-up that favours a position) does not favour a
schedule. Nothing here trains or judges.
"""

from __future__ import annotations

from reproduction.claims.base import Plan, claims_in
from reproduction.config import RunConfig
from reproduction.schedules import MAIN_SCHEDULES
from reproduction.workloads import get_workload

WILLIAMS_ORDERS = (  # indices into MAIN_SCHEDULES (decay, hybrid, increase)
    (0, 1, 2),
    (1, 2, 0),
    (2, 0, 1),
    (0, 2, 1),
    (1, 0, 2),
    (2, 1, 0),
)


def get_plan(workload: str, profile: str, seeds: int | None = None) -> Plan:
    w = get_workload(workload)
    return Plan(w, w.profile(profile, seeds))


def main_grid(plan: Plan, seeds=None) -> list[RunConfig]:
    """Every optimizer x the three schedules, seed-major."""
    seeds = plan.seeds if seeds is None else seeds
    return [plan.config(o, s, k) for k in seeds for o in plan.optimizers for s in MAIN_SCHEDULES]


def timed_blocks(plan: Plan) -> list[tuple[RunConfig, ...]]:
    """The main grid of the timed seeds, one block per (seed, optimizer), schedules in Williams order."""
    blocks: list[tuple[RunConfig, ...]] = []
    for k in plan.timed_seeds:
        for o in plan.optimizers:
            order = WILLIAMS_ORDERS[len(blocks) % len(WILLIAMS_ORDERS)]
            blocks.append(tuple(plan.config(o, MAIN_SCHEDULES[i], k) for i in order))
    return blocks


def timed_grid(plan: Plan) -> list[RunConfig]:
    return [c for block in timed_blocks(plan) for c in block]


def _union(groups) -> list[RunConfig]:
    out, seen = [], set()
    for group in groups:
        for c in group:
            if c not in seen:
                seen.add(c)
                out.append(c)
    return out


def timed_configs(plan: Plan) -> list[RunConfig]:
    """The runs whose training seconds a claim of the plan reads, in the order they must train."""
    return _union(c.timed(plan) for c in claims_in(plan))


def required_configs(plan: Plan) -> list[RunConfig]:
    """Every run the plan's claims need, the timed ones first (in their order), without duplicates."""
    return _union([timed_configs(plan), *(c.needs(plan) for c in claims_in(plan))])

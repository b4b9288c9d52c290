# ruff: noqa: F401, I001  (a public interface; the import order below is the registration order)
"""The claims of the paper and the report, each with its target and its own check, and the negative controls.

``claims/`` (pytest) and the report both call ``evaluate(claim_id, plan, runs)`` and ``status``, so the
verdict table and CI can never disagree. One module per claim family; a claim is registered where it is
defined (``@register(id=..., ...)`` above its evaluator) with its source, quantity, bound, statistical test,
the runs it needs per workload and profile, what would turn it red, and its expectations declared in
advance (documented non-reproductions and possibly-undecided parameter sets, each with a bounded range).
The run plan is the union of the claims' needs (``plan.required_configs``). Adding a claim: one entry in a
family's module (or a new module imported below); the parametrized test in ``claims/`` picks it up.
"""

from reproduction.claims.base import (
    ALPHA,
    CLAIMS,
    Claim,
    KnownFailure,
    MayBeUndecided,
    Plan,
    Status,
    claims_in,
    diverged,
    evaluate,
    get_claim,
    refute_alpha,
    register,
    status,
)
from reproduction.claims.plan import get_plan, main_grid, required_configs, timed_blocks, timed_configs

# The families register their claims on import, in the order the report lists them: the schedules' own
# checks, the headline equivalences with what guards them, timing, the paper's 5.2 variants, the report.
from reproduction.claims import updates, applied, ghost_bn
from reproduction.claims import equivalence, controls, high_noise, gradient_noise
from reproduction.claims import timing, effective_lr, group_report
from reproduction.claims.applied import schedule_applied_verdict, schedule_mismatches
from reproduction.claims.guards import GUARDED_CLAIMS, control_margin
from reproduction.claims.ghost_bn import GHOST_BN_TOLERANCE, ghost_bn_deviation


class DocumentedNonReproduction(AssertionError):
    """The one failure a known-failure xfail accepts (pytest's ``raises=``)."""

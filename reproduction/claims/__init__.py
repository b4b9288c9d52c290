# ruff: noqa: F401, I001  (a public interface; the import order below is the registration order)
"""The claims of the paper and the report, each with its target and its own check, and the negative controls.

``claims/`` (pytest) and the report both call ``evaluate(claim_id, runs, seeds)``, so the verdict table and
CI can never disagree. One module per claim family; a claim is registered where it is defined
(``@register(Claim(...))`` above its evaluator), with its source, quantity, bound, statistical test, the
runs it needs and what would turn it red; ``evaluate`` checks that the evaluator returns exactly the
declared parameter sets. ``plan`` says which runs every claim needs and which of them are timed.

Known non-reproductions are listed in ``Claim.known_failures`` (params -> reason with the measured numbers,
and the effect range they were measured in); the claims tests mark exactly those parameter sets
``xfail(strict=True)``. Bounds are never loosened. Adding a claim: one module (or one entry in a family's
module), imported below, and its test in ``claims/``.
"""

from reproduction.claims.base import (
    ALPHA,
    CLAIMS,
    N_TRAIN,
    Claim,
    DocumentedNonReproduction,
    KnownFailure,
    diverged,
    evaluate,
    get_claim,
    in_profile,
    known_failure_status,
    pytest_params,
    refute_alpha,
    register,
)
from reproduction.claims.plan import (
    CONTROLS,
    PROFILES,
    REPORT_ACCURACY,
    ZHOU_ACCURACY,
    Control,
    Profile,
    get_profile,
    grid_configs,
    required_configs,
    timed_configs,
)

# The families register their claims on import, in the order the report lists them: the schedules' own
# checks, the headline equivalences with what guards them, timing, the paper's 5.2 variants, the report.
from reproduction.claims import updates, applied, ghost_bn
from reproduction.claims import equivalence, controls, high_noise, gradient_noise
from reproduction.claims import timing, effective_lr, group_report
from reproduction.claims.applied import schedule_applied_verdict, schedule_mismatches
from reproduction.claims.controls import GUARDED_BY, control_margin
from reproduction.claims.ghost_bn import GHOST_BN_TOLERANCE, ghost_bn_deviation

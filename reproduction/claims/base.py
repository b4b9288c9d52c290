"""Claims: the object, the registry and the helpers every claim family shares."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence

from reproduction import stats
from reproduction.config import RunConfig
from reproduction.results import RunResult
from reproduction.stats import Verdict

N_TRAIN = 60_000


@dataclasses.dataclass(frozen=True)
class KnownFailure:
    """A documented non-reproduction: the measured reason, and the range its effect was measured in. The
    xfail covers this failure only: an effect outside the range means something else broke (a dead model
    path, a diverged optimizer), and the test goes red like any other."""

    reason: str
    effect_range: tuple[float, float] = (-math.inf, math.inf)


class DocumentedNonReproduction(AssertionError):
    """The one failure a known-failure xfail accepts (pytest's ``raises=``)."""


Runs = Mapping[RunConfig, RunResult]
Evaluator = Callable[[Runs, Sequence[int]], list[Verdict]]


@dataclasses.dataclass(frozen=True)
class Claim:
    id: str
    source: str  # paper section or report sentence
    statement: str  # what is claimed
    quantity: str  # what is measured
    bound: str  # what it must satisfy
    test: str  # the statistical test
    runs: str  # the runs it needs
    would_fail_if: str  # a change that turns it red
    params: tuple[str, ...] = ()  # parameter sets it is evaluated for (ids as in pytest)
    known_failures: Mapping[str, KnownFailure] = dataclasses.field(default_factory=dict)  # by params
    reads_runs: bool = (
        True  # False: a check of the code alone (the layer, the schedules), the same for any runs
    )
    full_profile_only: bool = False  # True: its runs train in the full profile only (plan.Profile.full)
    evaluator: Evaluator | None = dataclasses.field(
        default=None, compare=False, repr=False
    )  # set by register


ALPHA = 0.05


def get_run(runs: Runs, config: RunConfig) -> RunResult:
    try:
        return runs[config]
    except KeyError:
        raise KeyError(f"missing run {config.key()}: train it first (required_configs)") from None


def final_accuracy(runs, config) -> float:
    return 100.0 * get_run(runs, config).final.test_accuracy


def diverged(result: RunResult) -> bool:
    """A run whose training loss went non-finite (its accuracy is then chance, 9.8%)."""
    return any(not math.isfinite(e.train_loss) for e in result.epochs)


def with_divergence(verdict: Verdict, runs: Runs, configs) -> Verdict:
    """Name diverged runs in the verdict: two diverged runs at chance 'agree', which proves nothing."""
    bad = [c.key() for c in configs if diverged(get_run(runs, c))]
    if not bad:
        return verdict
    note = f"{len(bad)} diverged run(s): {', '.join(bad)}"
    return dataclasses.replace(verdict, detail=f"{verdict.detail}; {note}" if verdict.detail else note)


def final_value(result: RunResult, quantity: str) -> float:
    return 100.0 * result.final.test_accuracy if quantity == "test_accuracy" else result.final.train_loss


def paired_differences(runs: Runs, pairs, quantity: str) -> list[float]:
    """a - b of the final ``quantity`` per pair; NaN where either run diverged (two runs at chance 'agree')."""
    return [
        math.nan
        if diverged(get_run(runs, a)) or diverged(get_run(runs, b))
        else final_value(get_run(runs, a), quantity) - final_value(get_run(runs, b), quantity)
        for a, b in pairs
    ]


# ------------------------------------------------------------------------------- tests, labelled by the claim
def tost(
    claim: str,
    params: str,
    differences,
    margin: float,
    unit: str = "",
    bound: str = "",
    alpha_refute: float | None = None,
) -> Verdict:
    return Verdict.of(
        stats.tost_paired(differences, margin, alpha_refute=alpha_refute),
        claim,
        params,
        bound or f"|difference| < {margin:g}{unit} (TOST, alpha {ALPHA:g})",
        unit,
    )


def one_sided(
    claim: str,
    params: str,
    differences,
    unit: str = "",
    bound: str = "difference > 0",
    alpha_refute: float | None = None,
    interval_transform=None,
) -> Verdict:
    return Verdict.of(
        stats.one_sided_paired(differences, alpha_refute=alpha_refute, interval_transform=interval_transform),
        claim,
        params,
        bound,
        unit,
    )


def at_least(
    claim: str,
    params: str,
    values,
    threshold: float,
    unit: str = "",
    bound: str = "",
    alpha_refute: float | None = None,
) -> Verdict:
    return Verdict.of(
        stats.at_least(values, threshold, alpha_refute=alpha_refute),
        claim,
        params,
        bound or f"mean >= {threshold:g}{unit}",
        unit,
    )


def exact(
    claim: str, params: str, ok: bool, effect: float, bound: str, unit: str = "", detail: str = ""
) -> Verdict:
    return Verdict.of(stats.deterministic(ok, effect), claim, params, bound, unit, detail)


# ----------------------------------------------------------------------------------------------- the registry
CLAIMS: dict[str, Claim] = {}  # by id, in the order the families register them


def register(claim: Claim) -> Callable[[Evaluator], Evaluator]:
    """Decorator: ``claim`` is judged by the function below it (its evaluator), in the module that defines it."""

    def decorate(evaluator: Evaluator) -> Evaluator:
        if claim.id in CLAIMS:
            raise ValueError(f"claim {claim.id!r} registered twice")
        unknown = set(claim.known_failures) - set(claim.params)
        if unknown:
            raise ValueError(f"claim {claim.id!r}: known_failures for unknown params {sorted(unknown)}")
        CLAIMS[claim.id] = dataclasses.replace(claim, evaluator=evaluator)
        return evaluator

    return decorate


def get_claim(claim_id: str) -> Claim:
    try:
        return CLAIMS[claim_id]
    except KeyError:
        raise ValueError(f"claim={claim_id!r}: unknown; known claims are {sorted(CLAIMS)}") from None


def in_profile(claim_id: str, full: bool) -> bool:
    """Is the claim evaluated in a profile (``full``: plan.Profile.full)?"""
    return full or not get_claim(claim_id).full_profile_only


def refute_alpha(claim_id: str) -> float:
    """Refutation level: ALPHA over the claim's family of parameter sets (Bonferroni)."""
    return ALPHA / max(1, len(get_claim(claim_id).params))


def evaluate(claim_id: str, runs: Runs, seeds: Sequence[int]) -> dict[str, Verdict]:
    """Verdicts of one claim, by params id, in the declared order; the evaluator must return exactly the
    declared parameter sets, once each (the exact checks ignore ``runs``)."""
    claim = get_claim(claim_id)
    verdicts = claim.evaluator(runs, seeds)
    got = [v.params for v in verdicts]
    if (
        sorted(got) != sorted(claim.params)
        or len(set(got)) != len(got)
        or any(v.claim != claim.id for v in verdicts)
    ):
        raise AssertionError(
            f"claim {claim.id!r}: the evaluator returned params {got}, declared {list(claim.params)}"
        )
    by_params = {v.params: v for v in verdicts}
    return {p: by_params[p] for p in claim.params}


def known_failure_status(verdict: Verdict) -> str | None:
    """None: not a known failure. 'holds': it reproduces now (strict xfail turns that red). 'documented':
    refuted or undecided inside the documented effect range. 'outside': refuted or undecided elsewhere."""
    known = get_claim(verdict.claim).known_failures.get(verdict.params)
    if known is None:
        return None
    if verdict.verdict == stats.HOLDS:
        return "holds"
    low, high = known.effect_range
    return "documented" if low <= verdict.effect <= high else "outside"


def pytest_params(claim_id: str) -> list:
    """The claim's parameter sets as pytest params: known non-reproductions carry xfail(strict=True) with
    their measured numbers, so they go red again the day they start to hold, and ``raises=`` limits the
    xfail to the documented failure (``judge`` raises DocumentedNonReproduction only inside its range)."""
    import pytest

    claim = get_claim(claim_id)
    return [
        pytest.param(
            p,
            id=p,
            marks=[
                pytest.mark.xfail(
                    strict=True, raises=DocumentedNonReproduction, reason=claim.known_failures[p].reason
                )
            ]
            if p in claim.known_failures
            else [],
        )
        for p in claim.params
    ]

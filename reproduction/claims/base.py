"""Claims: the object, the registry, the plan a claim is judged in, and the rules every verdict follows.

A claim owns its check: what it says and where it comes from, the runs it needs per workload and profile
(``needs``, and ``timed`` for those whose seconds it reads), its evaluator, and its expectations declared in
advance per workload: documented non-reproductions (``known_failures``) and the parameter sets that may be
undecided in a profile (``may_be_undecided``), each with a range bounded on both sides.

How a verdict becomes a test outcome (``status``): holds -> pass; refuted -> fail; undecided -> fail unless
declared for this workload and profile and inside its declared range (then xfail); a documented
non-reproduction -> xfail(strict) only with a documented verdict inside its range; a setup failure (every run
of a pair diverged, evidence that cannot be judged) -> fail, always. Tests and report use the same rules.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Callable, Iterable, Mapping, Sequence

from reproduction import stats
from reproduction.config import RunConfig
from reproduction.errors import UsageError
from reproduction.results import RunResult
from reproduction.stats import HOLDS, REFUTED, UNDECIDED, Outcome, Verdict
from reproduction.workloads import Profile, Workload

ALPHA = 0.05
Runs = Mapping[RunConfig, RunResult]


def _check_range(owner: str, effect_range) -> None:
    low, high = effect_range
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise UsageError(f"{owner}.effect_range={effect_range!r}: expected finite bounds, low < high")


@dataclasses.dataclass(frozen=True)
class KnownFailure:
    """A documented non-reproduction: the measured reason, the range its effect was measured in, and the
    verdicts it documents. Anything else (another verdict, an effect outside the range) means something
    else broke, and the test goes red like any other."""

    reason: str
    effect_range: tuple[float, float]
    verdicts: tuple[Outcome, ...] = (REFUTED, UNDECIDED)

    def __post_init__(self):
        _check_range("KnownFailure", self.effect_range)
        if not self.verdicts or HOLDS in self.verdicts:
            raise UsageError(f"KnownFailure.verdicts={self.verdicts!r}: refuted and/or undecided")


@dataclasses.dataclass(frozen=True)
class MayBeUndecided:
    """A parameter set declared as possibly undecided in a profile: the effect expected inside
    ``effect_range`` (bounded on both sides) and about how many seeds would decide it. ``after_reading``: the
    declaration was made after a run of the suite had read these runs, not in advance; the report and the
    README say so beside the verdict."""

    reason: str
    effect_range: tuple[float, float]
    seeds_to_decide: int
    after_reading: bool = False

    def __post_init__(self):
        _check_range("MayBeUndecided", self.effect_range)
        if not isinstance(self.seeds_to_decide, int) or self.seeds_to_decide < 2:
            raise UsageError(
                f"MayBeUndecided.seeds_to_decide={self.seeds_to_decide!r}: expected an integer >= 2"
            )


@dataclasses.dataclass(frozen=True)
class Plan:
    """Where claims are judged: a workload and a profile."""

    workload: Workload
    profile: Profile

    @property
    def seeds(self) -> tuple[int, ...]:
        return self.profile.seed_list()

    @property
    def timed_seeds(self) -> tuple[int, ...]:
        return self.profile.timed_seed_list()

    @property
    def as_declared(self) -> bool:
        """The profile at the seed count its declarations (possibly undecided, documented non-reproductions
        of that profile) were made for; ``--seeds`` may change it, and then they do not apply."""
        return self.profile.seeds == self.workload.profiles[self.profile.name].seeds

    @property
    def profile_label(self) -> str:
        """The profile's name, and where ``--seeds`` changed it, that its declarations do not apply."""
        name = self.profile.name
        if self.as_declared:
            return name
        own = self.workload.profiles[name].seeds
        return f"{name} at {self.profile.seeds} seeds (its declarations are for {own}: they do not apply)"

    @property
    def optimizers(self) -> tuple[str, ...]:
        """The optimizers the profile judges (a quick profile may leave some to the full one)."""
        return self.profile.optimizers or self.workload.optimizers

    def controls(self, optimizer: str) -> tuple:
        """The workload's negative controls for an optimizer; a profile without ``all_controls`` keeps those
        pre-registered as discriminating at its number of seeds (80% power to be refuted: the workload's
        pre-registration file, reproduction/calibration.py)."""
        if self.profile.all_controls:
            return self.workload.controls
        from reproduction.calibration import discriminating  # here: calibration imports the claims' levels

        keep = discriminating(self.workload, len(self.seeds))
        return tuple(c for c in self.workload.controls if f"{optimizer}-{c.name}" in keep)

    def config(self, optimizer: str, schedule: str, seed: int, **overrides) -> RunConfig:
        return self.workload.config(optimizer, schedule, seed, **overrides)


Evaluator = Callable[[Plan, Runs], list[Verdict]]
Needs = Callable[[Plan], Iterable[RunConfig]]


def no_runs(plan: Plan) -> list[RunConfig]:
    return []


@dataclasses.dataclass(frozen=True, kw_only=True)
class Claim:
    id: str
    source: str  # paper section or report sentence
    statement: str  # what is claimed
    quantity: str  # what is measured
    bound: str  # what it must satisfy
    test: str  # the statistical test
    would_fail_if: str  # a change that turns it red
    params: tuple[str, ...] | Callable[[Plan], tuple[str, ...]]  # parameter sets (ids as in pytest)
    needs: Needs = no_runs  # the runs it reads, per plan
    timed: Needs = no_runs  # of those, the ones whose training seconds it reads (trained alone, in order)
    workloads: tuple[str, ...] | None = None  # None: every workload
    full_profile_only: bool = False  # its runs train in the full profile only
    # workload, or (workload, profile) for one profile's measurement -> params -> documented failure
    known_failures: Mapping[str | tuple[str, str], Mapping[str, KnownFailure]] = dataclasses.field(
        default_factory=dict
    )
    may_be_undecided: Mapping[tuple[str, str], Mapping[str, MayBeUndecided]] = dataclasses.field(
        default_factory=dict
    )  # (workload, profile) -> params -> declaration
    evaluator: Evaluator | None = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def reads_runs(self) -> bool:
        return self.needs is not no_runs

    def params_for(self, plan: Plan) -> tuple[str, ...]:
        return self.params(plan) if callable(self.params) else self.params

    def applies(self, plan: Plan) -> bool:
        """Judged in this plan: a workload it is made for, and a profile that includes it."""
        in_workload = self.workloads is None or plan.workload.name in self.workloads
        return in_workload and (plan.profile.full or not self.full_profile_only)

    def known_failure(self, plan: Plan, params: str) -> KnownFailure | None:
        """The documented non-reproduction for this profile, else for the workload, else None."""
        w = plan.workload.name
        by_profile = self.known_failures.get((w, plan.profile.name), {}) if plan.as_declared else {}
        return by_profile.get(params) or self.known_failures.get(w, {}).get(params)

    def known_failures_in(self, plan: Plan) -> dict[str, KnownFailure]:
        return {p: k for p in self.params_for(plan) if (k := self.known_failure(plan, p)) is not None}

    def declared_undecided_in(self, plan: Plan) -> Mapping[str, MayBeUndecided]:
        """The parameter sets declared possibly undecided for this profile at its own seed count."""
        if not plan.as_declared:
            return {}
        return self.may_be_undecided.get((plan.workload.name, plan.profile.name), {})

    def declared_undecided(self, plan: Plan, params: str) -> MayBeUndecided | None:
        return self.declared_undecided_in(plan).get(params)


# ----------------------------------------------------------------------------------------------- the registry
CLAIMS: dict[str, Claim] = {}  # by id, in the order the families register them


def register(**fields) -> Callable[[Evaluator], Evaluator]:
    """Decorator: the claim made of ``fields`` is judged by the function below it, in its module."""

    def decorate(evaluator: Evaluator) -> Evaluator:
        claim = Claim(**fields, evaluator=evaluator)
        if claim.id in CLAIMS:
            raise UsageError(f"claim {claim.id!r} registered twice")
        CLAIMS[claim.id] = claim
        return evaluator

    return decorate


def get_claim(claim_id: str) -> Claim:
    try:
        return CLAIMS[claim_id]
    except KeyError:
        raise UsageError(f"claim={claim_id!r}: unknown; known claims are {sorted(CLAIMS)}") from None


def claims_in(plan: Plan) -> list[Claim]:
    """The claims judged in the plan: made for its workload, included in its profile, with parameter sets."""
    return [c for c in CLAIMS.values() if c.applies(plan) and c.params_for(plan)]


def refute_alpha(claim_id: str, plan: Plan) -> float:
    """Refutation level: ALPHA over the claim's family of parameter sets in the plan (Bonferroni)."""
    return ALPHA / max(1, len(get_claim(claim_id).params_for(plan)))


def evaluate(claim_id: str, plan: Plan, runs: Runs) -> dict[str, Verdict]:
    """Verdicts of one claim, by params id, in the declared order; the evaluator must return exactly the
    declared parameter sets, once each."""
    claim = get_claim(claim_id)
    params = claim.params_for(plan)
    assert claim.evaluator is not None, f"{claim_id}: registered without an evaluator"
    verdicts = claim.evaluator(plan, runs)
    got = [v.params for v in verdicts]
    if (
        sorted(got) != sorted(params)
        or len(set(got)) != len(got)
        or any(v.claim != claim.id for v in verdicts)
    ):
        raise AssertionError(
            f"claim {claim.id!r}: the evaluator returned params {got}, declared {list(params)}"
        )
    by_params = {v.params: v for v in verdicts}
    return {p: by_params[p] for p in params}


# --------------------------------------------------------------------------------- from verdict to outcome
class Status(enum.StrEnum):
    PASS = "pass"  # holds
    DOCUMENTED = "documented"  # a known non-reproduction, as documented: strict xfail
    DECLARED = "declared undecided"  # undecided as declared in advance for this profile: xfail
    FAIL = "fail"  # refuted, undeclared undecided, a setup failure, or outside a documented range
    REPRODUCES = "reproduces"  # a documented non-reproduction that holds now: its strict xfail goes red


def status(verdict: Verdict, plan: Plan) -> tuple[Status, str]:
    """The test outcome of a verdict in a plan, and why."""
    claim = get_claim(verdict.claim)
    if verdict.setup_failure:
        return Status.FAIL, "setup failure: the evidence could not be judged"
    if verdict.verdict == UNDECIDED and not (math.isfinite(verdict.low) and math.isfinite(verdict.high)):
        return Status.FAIL, "undecided for want of evidence, not of seeds: no declaration covers that"
    known = claim.known_failure(plan, verdict.params)
    if known is not None:
        if verdict.verdict == HOLDS:
            return Status.REPRODUCES, "documented as a non-reproduction, but it holds now"
        low, high = known.effect_range
        # undecided was measured at the profile's own seed count; at another only refuted is documented
        kinds = known.verdicts if plan.as_declared else tuple(k for k in known.verdicts if k != UNDECIDED)
        if verdict.verdict in kinds and low <= verdict.effect <= high:
            return Status.DOCUMENTED, f"documented non-reproduction: {verdict.verdict} in [{low:g}, {high:g}]"
        return Status.FAIL, (
            f"OUTSIDE the documented non-reproduction ({'/'.join(kinds) or 'nothing'} in [{low:g}, {high:g}] "
            f"in {plan.profile_label})"
        )
    if verdict.verdict == HOLDS:
        return Status.PASS, ""
    if verdict.no_power == "predicted":
        return Status.DECLARED, (
            "undecided for want of power, as pre-registered: no control of this claim discriminates at "
            f"{verdict.n} seeds"
        )
    if verdict.no_power:
        return (
            Status.FAIL,
            "undecided for want of power, which the pre-registration did not predict",
        )
    if verdict.verdict == UNDECIDED:
        declared = claim.declared_undecided(plan, verdict.params)
        if declared is None:
            return Status.FAIL, f"undecided, and not declared as possibly undecided in {plan.profile_label}"
        low, high = declared.effect_range
        when = "AFTER the runs were read" if declared.after_reading else "in advance"
        if low <= verdict.effect <= high:
            return Status.DECLARED, (
                f"undecided as declared {when} for the {plan.profile.name} profile (expected in [{low:g}, "
                f"{high:g}]; about {declared.seeds_to_decide} seeds would decide)"
            )
        return Status.FAIL, f"undecided OUTSIDE its declared range [{low:g}, {high:g}]"
    return Status.FAIL, "refuted"


# ------------------------------------------------------------------------- evidence, with divergence judged
def get_run(runs: Runs, config: RunConfig) -> RunResult:
    try:
        return runs[config]
    except KeyError:
        raise KeyError(f"missing run {config.key()}: train it first (the plan's configs)") from None


def diverged(result: RunResult) -> bool:
    """A run whose training loss went non-finite (its accuracy is then chance)."""
    return any(not math.isfinite(e.train_loss) for e in result.epochs)


def final_value(result: RunResult, quantity: str) -> float:
    return 100.0 * result.final.test_accuracy if quantity == "test_accuracy" else result.final.train_loss


def final_accuracy(runs: Runs, config: RunConfig) -> float:
    return final_value(get_run(runs, config), "test_accuracy")


@dataclasses.dataclass(frozen=True)
class Pairs:
    """Paired runs (a, b) by seed and their final differences a - b; where runs diverged, said so."""

    differences: tuple[float, ...]  # NaN where a run of the pair diverged
    one_diverged: tuple[str, ...]  # keys of diverged runs whose partner trained
    both_diverged: tuple[int, ...]  # seeds where both diverged
    first_diverged: tuple[str, ...] = ()  # those of one_diverged that are the a of their pair

    @property
    def note(self) -> str:
        parts = []
        if self.one_diverged:
            parts.append(f"diverged while its pair trained: {', '.join(self.one_diverged)}")
        if self.both_diverged:
            parts.append(f"both runs diverged on seeds {list(self.both_diverged)}")
        return "; ".join(parts)


def paired(runs: Runs, pairs: Sequence[tuple[RunConfig, RunConfig]], quantity: str) -> Pairs:
    differences, one, both, first = [], [], [], []
    for a, b in pairs:
        ra, rb = get_run(runs, a), get_run(runs, b)
        da, db = diverged(ra), diverged(rb)
        if da and db:
            both.append(a.seed)
        elif da or db:
            one.append((a if da else b).key())
            first.extend([a.key()] if da else [])
        differences.append(math.nan if da or db else final_value(ra, quantity) - final_value(rb, quantity))
    return Pairs(tuple(differences), tuple(one), tuple(both), tuple(first))


def judged_pairs(
    decide: Callable[[Sequence[float]], stats.Decision],
    evidence: Pairs,
    claim: str,
    params: str,
    bound: str,
    unit: str,
) -> Verdict:
    """A verdict on paired differences where a diverged run is evidence: a pair with one diverged run refutes
    equivalence (naming the run); every run of a pair diverged is a setup failure (red, never undecided)."""
    finite = [d for d in evidence.differences if math.isfinite(d)]
    if evidence.both_diverged or evidence.one_diverged:
        effect = float(sum(finite) / len(finite)) if finite else math.nan
        decision = stats.Decision(REFUTED, effect, -math.inf, math.inf, len(evidence.differences))
        return Verdict.of(
            decision,
            claim,
            params,
            bound,
            unit,
            detail=evidence.note,
            setup_failure=bool(evidence.both_diverged),
        )
    return Verdict.of(decide(evidence.differences), claim, params, bound, unit)


# ------------------------------------------------------------------------------- tests, labelled by the claim
def tost(
    claim: str,
    params: str,
    evidence: Pairs,
    margin: float,
    alpha_refute: float,
    unit: str = "",
    bound: str = "",
) -> Verdict:
    bound = bound or f"|difference| < {margin:g}{unit} (TOST, alpha {ALPHA:g})"
    return judged_pairs(
        lambda d: stats.tost_paired(d, margin, alpha_refute=alpha_refute),
        evidence,
        claim,
        params,
        bound,
        unit,
    )


def one_sided(
    claim: str,
    params: str,
    differences,
    alpha_refute: float,
    unit: str = "",
    bound: str = "",
    interval_transform=None,
    n_unit: str = "seeds",
) -> Verdict:
    decision = stats.one_sided_paired(
        differences, alpha_refute=alpha_refute, interval_transform=interval_transform
    )
    return Verdict.of(decision, claim, params, bound or "difference > 0", unit, n_unit=n_unit)


def at_least(
    claim: str, params: str, values, threshold: float, alpha_refute: float, unit: str = "", bound: str = ""
) -> Verdict:
    decision = stats.at_least(values, threshold, alpha_refute=alpha_refute)
    return Verdict.of(decision, claim, params, bound or f"mean >= {threshold:g}{unit}", unit)


def exact(
    claim: str, params: str, ok: bool, effect: float, bound: str, unit: str = "", detail: str = ""
) -> Verdict:
    return Verdict.of(stats.deterministic(ok, effect), claim, params, bound, unit, detail=detail)

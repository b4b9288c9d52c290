"""Statistics for claims, on scipy, with three verdicts:

  holds     the test says so at the stated level (alpha, 0.05);
  refuted   the data say the opposite, at ``alpha_refute``: the claims pass alpha / (number of parameter
            sets of the claim), a Bonferroni bound over the claim's family, so that a claim whose true
            effect is near zero is 'undecided', not a red test on one noisy day in twenty;
  undecided the effect is inside the noise for the repetitions available (the verdict says how many
            repetitions would likely decide it, from the observed spread).

Every verdict carries the effect and its interval, not only pass/fail. The tests are pure functions: arrays
in, a ``Decision`` out; the claims add the labels (``Verdict.of``: claim id, parameter set, bound, unit).
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as st


class Outcome(enum.StrEnum):
    """The three verdicts. A str enum: it compares equal to, and serializes as, its value."""

    HOLDS = "holds"
    REFUTED = "refuted"
    UNDECIDED = "undecided"


HOLDS, REFUTED, UNDECIDED = Outcome.HOLDS, Outcome.REFUTED, Outcome.UNDECIDED
# Why an equivalence verdict that held inside its margin is undecided: none of its negative controls was told
# apart, as its pre-registration predicts at these seeds, or although a control was pre-registered to be.
NO_POWER = ("predicted", "unpredicted")
MAX_N_SEARCH = 1000


def _check_verdict(verdict) -> Outcome:
    try:
        return Outcome(verdict)
    except ValueError:
        raise ValueError(f"verdict={verdict!r}: expected one of {[o.value for o in Outcome]}") from None


@dataclasses.dataclass(frozen=True)
class Decision:
    """What a test decided, unlabelled."""

    verdict: Outcome
    effect: float  # the measured effect
    low: float  # interval (two-sided 90% for equivalence and orderings, exact for deterministic checks)
    high: float
    n: int = 0  # repetitions (seeds, interleaved rounds)
    p_value: float | None = None
    n_to_decide: int | None = None  # for undecided: repetitions that would likely decide it
    refutable_beyond: float | None = None  # equivalence tests: the smallest |effect| they could have refuted
    note: str = ""  # why nothing could be decided, where that is the case

    def __post_init__(self):
        object.__setattr__(self, "verdict", _check_verdict(self.verdict))


@dataclasses.dataclass(frozen=True)
class Verdict:
    """A decision with the labels of the claim that made it."""

    claim: str  # claim id
    params: str  # e.g. "sgd-increase"
    verdict: Outcome
    effect: float  # the measured effect, in ``unit``
    low: float
    high: float
    bound: str  # the bound it is held to, in words
    unit: str = ""
    n: int = 0
    p_value: float | None = None
    n_to_decide: int | None = None
    detail: str = ""
    refutable_beyond: float | None = None
    n_unit: str = "seeds"  # what n and n_to_decide count
    setup_failure: bool = False  # the evidence could not be judged (e.g. every run of a pair diverged): red
    no_power: str = ""  # one of NO_POWER where it held with no control told apart (then undecided)

    def __post_init__(self):
        object.__setattr__(self, "verdict", _check_verdict(self.verdict))
        if self.no_power not in ("", *NO_POWER):
            raise ValueError(f"no_power={self.no_power!r}: expected '' or one of {list(NO_POWER)}")
        if self.no_power and self.verdict != UNDECIDED:
            raise ValueError(f"no_power={self.no_power!r} with verdict {self.verdict}: only an undecided one")

    @classmethod
    def of(cls, decision: Decision, claim: str, params: str, bound: str, unit: str = "", **labels) -> Verdict:
        """``labels``: detail, n_unit, setup_failure; the decision's note is appended to the detail."""
        detail = "; ".join(x for x in (labels.pop("detail", ""), decision.note) if x)
        fields = {f.name: getattr(decision, f.name) for f in dataclasses.fields(Decision) if f.name != "note"}
        return cls(claim=claim, params=params, bound=bound, unit=unit, detail=detail, **fields, **labels)

    def summary(self) -> str:
        p = f", p={self.p_value:.3g}" if self.p_value is not None else ""
        decide = f"; about {self.n_to_decide} {self.n_unit} would decide it" if self.n_to_decide else ""
        extra = f"; {self.detail}" if self.detail else ""
        if self.refutable_beyond is not None:
            extra = f"; could refute |effect| >= {self.refutable_beyond:.4g}{self.unit}{extra}"
        failure = " (SETUP FAILURE)" if self.setup_failure else ""
        return (
            f"{self.claim}[{self.params}] {self.verdict}{failure}: effect {self.effect:.4g}{self.unit} "
            f"[{self.low:.4g}, {self.high:.4g}] (n={self.n} {self.n_unit}{p}), bound "
            f"{self.bound}{decide}{extra}"
        )

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "verdict": self.verdict.value}

    @classmethod
    def from_dict(cls, data: dict) -> Verdict:
        return cls(**data)


def _too_few(d: np.ndarray, shown=lambda v: v) -> Decision:
    """Nothing can be decided: one repetition has no spread (a smoke run with one seed), and a non-finite
    value (a diverged run's NaN loss, an estimate that could not be made) has no place in a t test. The
    interval is unbounded, which no declaration of an undecided verdict accepts (claims.status); the effect
    is that of the finite values, in the caller's unit (``shown``)."""
    finite = d[np.isfinite(d)]
    effect = shown(float(np.mean(finite))) if len(finite) else math.nan
    why = (
        "fewer than 2 repetitions: no spread to test against"
        if len(d) < 2
        else f"{len(d) - len(finite)} of {len(d)} values are not finite (a diverged run, or an estimate that "
        "could not be made)"
    )
    return Decision(UNDECIDED, effect, -math.inf, math.inf, len(d), note=why)


def _no_spread(d: np.ndarray) -> bool:
    """All values equal up to float rounding (scipy's t test would warn of catastrophic cancellation)."""
    return bool(np.ptp(d) <= 1e-12 * max(1.0, float(np.max(np.abs(d)))))


def paired_interval(differences: Sequence[float], alpha: float = 0.05) -> tuple[float, float, float]:
    """(mean, low, high): the two-sided (1 - 2 alpha) t interval of paired differences; NaN where a value is
    not finite (a diverged run) and infinite with fewer than two."""
    d = np.asarray(differences, dtype=float)
    if not len(d) or not np.all(np.isfinite(d)):
        return math.nan, math.nan, math.nan
    mean, _, low, high = _t_interval(d, alpha)
    return mean, low, high


def _t_interval(values: np.ndarray, alpha: float) -> tuple[float, float, float, float]:
    """(mean, standard error, low, high) with a two-sided (1 - 2 alpha) t interval."""
    n = len(values)
    mean = float(np.mean(values))
    se = float(np.std(values, ddof=1) / math.sqrt(n)) if n > 1 else math.inf
    t = float(st.t.ppf(1 - alpha, n - 1)) if n > 1 else math.inf
    return mean, se, mean - t * se, mean + t * se


def _n_for_half_width(sd: float, half_width: float, alpha: float) -> int | None:
    """Smallest n whose one-sided t bound is narrower than ``half_width`` at the observed sd."""
    if half_width <= 0 or not math.isfinite(sd):
        return None
    if sd == 0:
        return 2
    for n in range(2, MAX_N_SEARCH):
        if st.t.ppf(1 - alpha, n - 1) * sd / math.sqrt(n) < half_width:
            return n
    return None


def refutable_beyond(d: np.ndarray, margin: float, alpha_refute: float) -> float:
    """The smallest |mean difference| a TOST would refute at these repetitions and this spread: margin +
    t(1 - alpha_refute, n - 1) sd / sqrt(n). An equivalence verdict proves something only if differences
    that matter (its negative controls) lie beyond it."""
    if len(d) < 2 or not np.all(np.isfinite(d)):
        return math.inf
    return margin + float(st.t.ppf(1 - alpha_refute, len(d) - 1)) * float(np.std(d, ddof=1)) / math.sqrt(
        len(d)
    )


def tost_paired(
    differences: Sequence[float], margin: float, alpha: float = 0.05, alpha_refute: float | None = None
) -> Decision:
    """Equivalence of paired differences within +-margin: two one-sided t tests (TOST).

    holds if both one-sided tests reject at ``alpha`` (the 90% interval lies inside +-margin); refuted if
    the difference is significantly beyond the margin on one side (the 90% interval lies outside it);
    undecided otherwise. scipy has no TOST, so it is the two ``ttest_1samp`` calls.
    """
    d = np.asarray(differences, dtype=float)
    if d.ndim != 1:
        raise ValueError(f"differences: expected a 1-d sequence, got shape {d.shape}")
    if len(d) < 2 or not np.all(np.isfinite(d)):
        return _too_few(d)
    alpha_refute = alpha if alpha_refute is None else alpha_refute
    mean, se, low, high = _t_interval(d, alpha)
    if _no_spread(d):  # identical differences: the interval is the point
        verdict = HOLDS if abs(mean) < margin else REFUTED
        return Decision(verdict, mean, mean, mean, len(d), 0.0, refutable_beyond=margin)
    detectable = refutable_beyond(d, margin, alpha_refute)
    p_lower = st.ttest_1samp(d, -margin, alternative="greater").pvalue
    p_upper = st.ttest_1samp(d, margin, alternative="less").pvalue
    p_tost = float(max(p_lower, p_upper))
    if p_tost < alpha:
        return Decision(HOLDS, mean, low, high, len(d), p_tost, refutable_beyond=detectable)
    p_beyond = float(
        min(
            st.ttest_1samp(d, margin, alternative="greater").pvalue,
            st.ttest_1samp(d, -margin, alternative="less").pvalue,
        )
    )
    if p_beyond < alpha_refute:
        return Decision(REFUTED, mean, low, high, len(d), p_beyond, refutable_beyond=detectable)
    sd = float(np.std(d, ddof=1))
    level = alpha if abs(mean) < margin else alpha_refute  # what deciding would take: holding, or refuting
    n_needed = _n_for_half_width(sd, abs(abs(mean) - margin), level)
    return Decision(UNDECIDED, mean, low, high, len(d), p_tost, n_needed, refutable_beyond=detectable)


def one_sided_paired(
    differences: Sequence[float],
    alpha: float = 0.05,
    effect: float | None = None,
    interval_transform=None,
    alpha_refute: float | None = None,
) -> Decision:
    """Is the mean of paired ``differences`` above 0? One-sided t test; refuted if significantly below.

    ``effect`` and ``interval_transform`` let a caller report, e.g., a median ratio for differences of logs.
    """
    d = np.asarray(differences, dtype=float)
    if d.ndim != 1:
        raise ValueError(f"differences: expected a 1-d sequence, got shape {d.shape}")
    shown = (lambda v: v) if interval_transform is None else interval_transform
    if len(d) < 2 or not np.all(np.isfinite(d)):
        return _too_few(d, shown)
    mean, se, low, high = _t_interval(d, alpha)
    eff = shown(mean) if effect is None else effect
    if _no_spread(d):
        verdict = HOLDS if mean > 0 else REFUTED
        return Decision(verdict, eff, shown(low), shown(high), len(d), 0.0)
    p_greater = float(st.ttest_1samp(d, 0.0, alternative="greater").pvalue)
    p_less = float(st.ttest_1samp(d, 0.0, alternative="less").pvalue)
    if p_greater < alpha:
        return Decision(HOLDS, eff, shown(low), shown(high), len(d), p_greater)
    alpha_refute = alpha if alpha_refute is None else alpha_refute
    if p_less < alpha_refute:
        return Decision(REFUTED, eff, shown(low), shown(high), len(d), p_less)
    level = alpha if mean > 0 else alpha_refute  # what deciding would take: holding, or refuting
    n_needed = _n_for_half_width(float(np.std(d, ddof=1)), abs(mean), level)
    return Decision(UNDECIDED, eff, shown(low), shown(high), len(d), p_greater, n_needed)


def at_least(
    values: Sequence[float], threshold: float, alpha: float = 0.05, alpha_refute: float | None = None
) -> Decision:
    """Is the mean of ``values`` at least ``threshold``? (one-sided t test on values - threshold)."""
    return one_sided_paired(
        [float(v) - threshold for v in values],
        alpha,
        interval_transform=lambda x: x + threshold,
        alpha_refute=alpha_refute,
    )


def deterministic(ok: bool, effect: float) -> Decision:
    """A check with no noise (exact counts, numerical identities): holds or refuted."""
    return Decision(HOLDS if ok else REFUTED, effect, effect, effect, 1)


def seeds_for_power(
    beyond: float, sd: float, alpha: float, power: float = 0.8, max_n: int = 100
) -> int | None:
    """Smallest number of paired repetitions at which a one-sided t test at level ``alpha`` detects a mean
    ``beyond`` past its bound (a shift of the paired differences, sd ``sd``) with probability ``power``
    (noncentral t). None when ``beyond <= 0`` (no number of repetitions refutes it) or beyond ``max_n``."""
    if not (math.isfinite(beyond) and math.isfinite(sd)) or beyond <= 0:
        return None
    if sd == 0:
        return 2
    for n in range(2, max_n + 1):
        critical = st.t.ppf(1 - alpha, n - 1)
        if 1 - st.nct.cdf(critical, n - 1, beyond * math.sqrt(n) / sd) >= power:
            return n
    return None

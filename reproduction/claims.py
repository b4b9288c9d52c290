"""The claims of the paper and the report: each an object with its target, and one evaluation function.

``claims/`` (pytest) and the report both call ``evaluate(claim_id, runs, seeds)``, so the verdict table and
CI can never disagree. A claim names the runs it needs (``required_configs``), its source, the quantity,
the bound, the statistical test, and what would turn it red.

Known non-reproductions are listed in ``Claim.known_failures`` (params -> reason with the measured numbers);
the claims tests mark exactly those parameter sets ``xfail(strict=True)``. Bounds are never loosened.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from reproduction import calibration, stats
from reproduction.annealing import HIGH_NOISE, high_noise_margin
from reproduction.config import RunConfig
from reproduction.model import ModelOptions
from reproduction.optimizers import OPTIMIZERS, get_optimizer
from reproduction.schedules import MAIN_SCHEDULES, SCHEDULES, Schedule
from reproduction.stats import Verdict
from reproduction.training import RunResult

N_TRAIN = 60_000
REPORT_ACCURACY = {"decay": 97.66, "increase": 97.44, "hybrid": 97.59}  # report notebooks @ b002b57, percent
REPORT_LR = {"decay": 0.15, "increase": 0.07, "hybrid": 0.05}  # the report's own SGD base rates per schedule
ZHOU_ACCURACY = 97.44  # the report's Adam baseline (Victor Zhou's CNN), percent
ZHOU_SECONDS = 49.19  # its wall clock on the report's machine


@dataclasses.dataclass(frozen=True)
class Profile:
    name: str
    seeds: int  # seeds per configuration

    def seed_list(self) -> tuple[int, ...]:
        return tuple(range(self.seeds))


PROFILES = {"quick": Profile("quick", 3), "full": Profile("full", 10)}


def get_profile(name: str, seeds: int | None = None) -> Profile:
    if name not in PROFILES:
        raise ValueError(f"profile={name!r}: unknown; known profiles are {sorted(PROFILES)}")
    profile = PROFILES[name]
    if seeds is not None:
        if not isinstance(seeds, int) or seeds < 1:
            raise ValueError(f"seeds={seeds!r}: expected a positive integer (with 1, every statistical claim "
                             "is undecided: there is no spread to test against)")
        profile = dataclasses.replace(profile, seeds=seeds)
    return profile


@dataclasses.dataclass(frozen=True)
class KnownFailure:
    """A documented non-reproduction: the measured reason, and the range its effect was measured in. The
    xfail covers this failure only: an effect outside the range means something else broke (a dead model
    path, a diverged optimizer), and the test goes red like any other."""
    reason: str
    effect_range: tuple[float, float] = (-math.inf, math.inf)


class DocumentedNonReproduction(AssertionError):
    """The one failure a known-failure xfail accepts (pytest's ``raises=``)."""


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


ALPHA = 0.05


def refute_alpha(claim_id: str) -> float:
    """Refutation level: ALPHA over the claim's family of parameter sets (Bonferroni)."""
    return ALPHA / max(1, len(CLAIMS[claim_id].params))


# ----------------------------------------------------------------------------------------------- the runs
def grid_configs(seeds: Sequence[int]) -> list[RunConfig]:
    """Every optimizer x the three schedules, seed-major so each seed's schedules train back to back
    (decay, hybrid, increase, decay, ...): the interleaving the wall-clock claims rely on."""
    return [RunConfig(optimizer=o, schedule=s, seed=seed) for seed in seeds for o in OPTIMIZERS
            for s in MAIN_SCHEDULES]


def timed_configs(seeds: Sequence[int]) -> list[RunConfig]:
    """The runs whose training seconds a claim reads (increase-faster-than-decay, epoch-time-falls-with-batch):
    the main grid. They train one at a time, alone on the machine, with every core; the rest may train in
    parallel worker processes (reproduction/pool.py)."""
    return grid_configs(seeds)


def effective_lr_configs(seeds):
    return [RunConfig(optimizer="momentum", schedule=s, seed=seed) for seed in seeds
            for s in ("increase-initial-lr", "increase-momentum")]


def noise_control_configs(seeds):
    """eps/5 at B 100 vs eps at B 500 (decay): equal noise scale, SGD."""
    lr = get_optimizer("sgd").base_lr
    out = []
    for seed in seeds:
        out += [RunConfig("sgd", "decay", seed, base_lr=lr / 5, base_batch=100),
                RunConfig("sgd", "decay", seed, base_lr=lr, base_batch=500)]
    return out


@dataclasses.dataclass(frozen=True)
class Control:
    """A negative control, pre-registered: a configuration the paper's theory says must *not* match decay,
    compared with decay by the same TOST and margin as the equivalence claim it guards. It must come out
    beyond the margin in the stated ``direction``; equivalent or undecided is a red test (the margin
    would not tell this configuration from decay at the seeds used)."""
    name: str
    description: str
    quantity: str  # "train_loss" (guards train-loss-equivalent) or "test_accuracy" (accuracy-within-1pt)
    direction: int  # +1: control - decay must exceed +margin; -1: must fall below -margin
    schedule: str
    lr_divisor: int = 1  # the optimizer's base rate divided by this
    base_batch: int = 100

    def config(self, optimizer: str, seed: int) -> RunConfig:
        lr = get_optimizer(optimizer).base_lr / self.lr_divisor
        return RunConfig(optimizer, self.schedule, seed, base_lr=None if self.lr_divisor == 1 else lr,
                         base_batch=self.base_batch)


CONTROLS = (
    Control("constant", "no noise reduction: eps and B 100 for all six epochs", "train_loss", +1, "constant"),
    Control("eps5", "noise scale 5x lower from the start: decay at eps/5, B 100", "test_accuracy", -1, "decay",
            lr_divisor=5),
    Control("b2500", "B 2500 at eps for all six epochs: noise scale 25x lower, 144 updates", "test_accuracy",
            -1, "constant", base_batch=2500),
)
GUARDED_BY = {"train_loss": "train-loss-equivalent", "test_accuracy": "accuracy-within-1pt"}


def high_noise_configs(seeds):
    """The main schedules and constant at annealing.HIGH_NOISE, where lowering g matters for plain SGD."""
    return [HIGH_NOISE.config(s, seed) for seed in seeds for s in (*MAIN_SCHEDULES, "constant")]


def control_configs(seeds):
    return [c.config(o, seed) for seed in seeds for o in OPTIMIZERS for c in CONTROLS]


def baseline_configs(seeds):
    """Victor Zhou's Keras CNN (no batch norm), Adam at Keras's default 0.001, batch 32, 6 epochs."""
    return [RunConfig("adam", "constant", seed, base_lr=0.001, base_batch=32,
                      model=ModelOptions(normalization="none")) for seed in seeds]


def report_configs(seeds):
    """The report's own SGD settings (no momentum), one base rate per schedule as its notebooks had."""
    return [RunConfig("sgd", s, seed, base_lr=REPORT_LR[s]) for seed in seeds for s in MAIN_SCHEDULES]


def required_configs(seeds: Sequence[int]) -> list[RunConfig]:
    """All runs the claims need, in training order (main grid first), without duplicates."""
    out = []
    for group in (grid_configs, control_configs, high_noise_configs, effective_lr_configs, noise_control_configs,
                  baseline_configs, report_configs):
        out += [c for c in group(seeds) if c not in out]
    return out


Runs = Mapping[RunConfig, RunResult]


def _get(runs: Runs, config: RunConfig) -> RunResult:
    try:
        return runs[config]
    except KeyError:
        raise KeyError(f"missing run {config.key()}: train it first (required_configs)") from None


def _acc(runs, config) -> float:
    return 100.0 * _get(runs, config).final.test_accuracy


def _loss(runs, config) -> float:
    return _get(runs, config).final.train_loss


# ----------------------------------------------------------------------------------------------- evaluations
def diverged(result: RunResult) -> bool:
    """A run whose training loss went non-finite (its accuracy is then chance, 9.8%)."""
    return any(not math.isfinite(e.train_loss) for e in result.epochs)


def _with_divergence(verdict: Verdict, runs: Runs, configs) -> Verdict:
    """Name diverged runs in the verdict: two diverged runs at chance 'agree', which proves nothing."""
    bad = [c.key() for c in configs if diverged(_get(runs, c))]
    if not bad:
        return verdict
    note = f"{len(bad)} diverged run(s): {', '.join(bad)}"
    return dataclasses.replace(verdict, detail=f"{verdict.detail}; {note}" if verdict.detail else note)


def eval_accuracy_within_1pt(runs: Runs, seeds) -> list[Verdict]:
    out = []
    for o in OPTIMIZERS:
        for s in ("hybrid", "increase"):
            pairs = [(RunConfig(o, s, k), RunConfig(o, "decay", k)) for k in seeds]
            # two diverged runs both at chance would 'agree': such a seed counts as NaN, so undecided
            d = [math.nan if diverged(_get(runs, a)) or diverged(_get(runs, b)) else _acc(runs, a) - _acc(runs, b)
                 for a, b in pairs]
            v = stats.tost_paired("accuracy-within-1pt", f"{o}-{s}", d, margin=1.0, unit=" pt",
                                  alpha_refute=refute_alpha("accuracy-within-1pt"),
                                  bound="|acc(schedule) - acc(decay)| < 1 pt (TOST, alpha 0.05)")
            out.append(_with_divergence(v, runs, [c for pair in pairs for c in pair]))
    return out


def _log_ratio_verdict(claim, params, slow, fast, bound):
    """slow / fast > 1 on paired wall-clock times: one-sided t test on log ratios. The effect is the geometric
    mean ratio, the quantity the test and its interval are about (a median could fall outside that
    interval); the median ratio goes into the detail."""
    ratios = np.asarray(slow) / np.asarray(fast)
    v = stats.one_sided_paired(claim, params, np.log(ratios), unit="x", bound=bound,
                               alpha_refute=refute_alpha(claim), interval_transform=math.exp)
    return dataclasses.replace(v, detail=f"median ratio {np.median(ratios):.3f}x")


ORDER_PAIRS = (("decay", "hybrid"), ("hybrid", "increase"), ("decay", "increase"))


def eval_increase_faster(runs: Runs, seeds) -> list[Verdict]:
    """Pairs are (optimizer, seed) blocks: the three schedules of a block train back to back, and wall clock
    hardly depends on the optimizer, so pooling the four optimizers gives 4 x seeds pairs per ordering
    (3 pairs per optimizer left a real 1.3x effect undecided on a noisy day). Per-optimizer medians go
    into the detail."""
    out = []
    for slow, fast in ORDER_PAIRS:
        t_slow, t_fast, per_optimizer = [], [], []
        for o in OPTIMIZERS:
            a = [_get(runs, RunConfig(o, slow, k)).train_seconds for k in seeds]
            b = [_get(runs, RunConfig(o, fast, k)).train_seconds for k in seeds]
            t_slow, t_fast = t_slow + a, t_fast + b
            per_optimizer.append(f"{o} {np.median(np.divide(a, b)):.2f}x")
        v = _log_ratio_verdict("increase-faster-than-decay", f"{slow}>{fast}", t_slow, t_fast,
                               f"train time {slow} / {fast} > 1 (paired by optimizer and seed, one-sided t on "
                               "log ratios, alpha 0.05)")
        out.append(dataclasses.replace(v, detail=f"{v.detail}; per optimizer: " + ", ".join(per_optimizer)))
    return out


BATCH_PAIRS = ((100, 500), (500, 2500))


def epoch_seconds_by_batch(result: RunResult) -> dict[int, float]:
    """Median training seconds of the run's epochs at each batch size."""
    by_batch: dict[int, list[float]] = {}
    for e in result.epochs:
        by_batch.setdefault(e.batch_size, []).append(e.train_seconds)
    return {b: float(np.median(v)) for b, v in by_batch.items()}


def eval_epoch_time(runs: Runs, seeds) -> list[Verdict]:
    """Within each increase run the epochs at B 100, 500, 2500 run back to back: pairs by run."""
    per_run = [epoch_seconds_by_batch(_get(runs, RunConfig(o, "increase", k))) for o in OPTIMIZERS for k in seeds]
    return [_log_ratio_verdict("epoch-time-falls-with-batch", f"B{small}>B{large}", [r[small] for r in per_run],
                               [r[large] for r in per_run],
                               f"seconds per epoch at B {small} / at B {large} > 1 (paired within increase "
                               "runs, one-sided t on log ratios, alpha 0.05)")
            for small, large in BATCH_PAIRS]


def eval_fewer_updates(runs: Runs, seeds) -> list[Verdict]:
    out = []
    for o in OPTIMIZERS:
        counted = {s: [_get(runs, RunConfig(o, s, k)).parameter_updates for k in seeds] for s in MAIN_SCHEDULES}
        closed = {s: RunConfig(o, s, 0).build_schedule().parameter_updates(N_TRAIN) for s in MAIN_SCHEDULES}
        exact = all(c == closed[s] for s in MAIN_SCHEDULES for c in counted[s])
        ratio = closed["increase"] / closed["decay"]
        out.append(stats.deterministic(
            "fewer-updates", o, exact and ratio <= 0.42, ratio, "engine counts == closed form, increase/decay "
            "<= 0.42", "x", detail="counted " + ", ".join(f"{s} {sorted(set(counted[s]))}" for s in MAIN_SCHEDULES)
            + "; closed form " + ", ".join(f"{s} {closed[s]}" for s in MAIN_SCHEDULES)))
    return out


def eval_train_loss(runs: Runs, seeds) -> list[Verdict]:
    out = []
    margins = calibration.read_margins()  # pre-registered: reproduction/calibration.json
    for o in OPTIMIZERS:
        margin, sd, n_calib = margins[o].margin, margins[o].sd, len(margins[o].seeds)
        for s in ("hybrid", "increase"):
            d = [_loss(runs, RunConfig(o, s, k)) - _loss(runs, RunConfig(o, "decay", k)) for k in seeds]
            v = stats.tost_paired("train-loss-equivalent", f"{o}-{s}", d, margin=margin,
                                  alpha_refute=refute_alpha("train-loss-equivalent"),
                                  bound=f"|loss(schedule) - loss(decay)| < {margin:.4f} = 2 x decay's seed sd "
                                        f"{sd:.4f} on {n_calib} calibration seeds (TOST)")
            out.append(_with_divergence(v, runs, [RunConfig(o, x, k) for k in seeds for x in (s, "decay")]))
    return out


def eval_effective_lr(runs: Runs, seeds) -> list[Verdict]:
    out = []
    inc = RunConfig("momentum", "increase", 0).build_schedule().parameter_updates(N_TRAIN)
    for s in ("increase-initial-lr", "increase-momentum"):
        counted = {_get(runs, RunConfig("momentum", s, k)).parameter_updates for k in seeds}
        n = max(counted)
        out.append(stats.deterministic("effective-lr", f"{s}-updates", n < inc and len(counted) == 1, n / inc,
                                       "updates < increase's", "x", detail=f"{n} vs {inc} updates"))
        d = [_acc(runs, RunConfig("momentum", s, k)) - _acc(runs, RunConfig("momentum", "decay", k))
             for k in seeds]
        v = stats.tost_paired("effective-lr", f"{s}-accuracy", d, margin=1.0, unit=" pt",
                              alpha_refute=refute_alpha("effective-lr"),
                              bound="|acc - acc(decay)| < 1 pt (TOST, alpha 0.05)")
        out.append(_with_divergence(v, runs, [RunConfig("momentum", x, k) for k in seeds for x in (s, "decay")]))
    return out


def eval_noise_control(runs: Runs, seeds) -> list[Verdict]:
    lr = get_optimizer("sgd").base_lr
    small = [_acc(runs, RunConfig("sgd", "decay", k, base_lr=lr / 5, base_batch=100)) for k in seeds]
    large = [_acc(runs, RunConfig("sgd", "decay", k, base_lr=lr, base_batch=500)) for k in seeds]
    a = stats.tost_paired("noise-scale-control", "equal-g-eps-and-B-x5", np.subtract(large, small), margin=1.0,
                          alpha_refute=refute_alpha("noise-scale-control"),
                          unit=" pt", bound="|acc(eps, 5B) - acc(eps/5, B)| < 1 pt (TOST, alpha 0.05)")
    a = _with_divergence(a, runs, [RunConfig("sgd", "decay", k, base_lr=lr / 5, base_batch=100) for k in seeds]
                         + [RunConfig("sgd", "decay", k, base_lr=lr, base_batch=500) for k in seeds])
    return [a]


def _final(result: RunResult, quantity: str) -> float:
    return 100.0 * result.final.test_accuracy if quantity == "test_accuracy" else result.final.train_loss


def control_margin(optimizer: str, quantity: str) -> tuple[float, str]:
    """The margin (and unit) of the equivalence claim a control guards: the same TOST must refute it."""
    if quantity == "test_accuracy":
        return 1.0, " pt"
    return calibration.read_margins()[optimizer].margin, ""


def paired_differences(runs: Runs, pairs, quantity: str) -> list[float]:
    """a - b of the final ``quantity`` per pair; NaN where either run diverged (two runs at chance 'agree')."""
    return [math.nan if diverged(_get(runs, a)) or diverged(_get(runs, b)) else
            _final(_get(runs, a), quantity) - _final(_get(runs, b), quantity) for a, b in pairs]


def control_verdict(claim: str, params: str, differences, margin: float, unit: str, direction: int,
                    description: str) -> Verdict:
    """A negative control holds when the TOST refutes equivalence on the predicted side at alpha 0.05 (the
    90% interval lies beyond the margin); equivalent or undecided is refuted: the margin does not
    discriminate at these seeds."""
    sign = ">" if direction > 0 else "<"
    tost = stats.tost_paired(claim, params, differences, margin=margin, unit=unit, alpha_refute=ALPHA,
                             bound=f"control - decay {sign} {direction * margin:+.4g}{unit} (equivalence refuted, "
                                   "alpha 0.05)")
    beyond = tost.verdict == stats.REFUTED and direction * tost.effect > 0
    why = "" if beyond else (f"TOST {tost.verdict}: the margin does not tell this control from decay at "
                             f"{len(differences)} seeds")
    return dataclasses.replace(tost, verdict=stats.HOLDS if beyond else stats.REFUTED,
                               detail="; ".join(x for x in (description, why) if x))


def eval_negative_controls(runs: Runs, seeds) -> list[Verdict]:
    """Each control against decay, paired by seed, with the margin of the claim it guards."""
    out = []
    for o in OPTIMIZERS:
        for control in CONTROLS:
            pairs = [(control.config(o, k), RunConfig(o, "decay", k)) for k in seeds]
            margin, unit = control_margin(o, control.quantity)
            v = control_verdict("negative-control", f"{o}-{control.name}",
                                paired_differences(runs, pairs, control.quantity), margin, unit, control.direction,
                                control.description)
            out.append(_with_divergence(v, runs, [c for pair in pairs for c in pair]))
    return out


def eval_high_noise(runs: Runs, seeds) -> list[Verdict]:
    """The main claims, and the constant control, at annealing.HIGH_NOISE (plain SGD, B 50)."""
    out = []
    margins = {"test_accuracy": (1.0, " pt"), "train_loss": (high_noise_margin(), "")}
    for quantity, (margin, unit) in margins.items():
        for s in ("hybrid", "increase"):
            pairs = [(HIGH_NOISE.config(s, k), HIGH_NOISE.config("decay", k)) for k in seeds]
            v = stats.tost_paired("high-noise", f"{s}-{quantity}", paired_differences(runs, pairs, quantity),
                                  margin=margin, unit=unit, alpha_refute=refute_alpha("high-noise"),
                                  bound=f"|{quantity}({s}) - {quantity}(decay)| < {margin:.4g}{unit} (TOST)")
            out.append(_with_divergence(v, runs, [c for pair in pairs for c in pair]))
    pairs = [(HIGH_NOISE.config("constant", k), HIGH_NOISE.config("decay", k)) for k in seeds]
    v = control_verdict("high-noise", "constant-control", paired_differences(runs, pairs, "train_loss"),
                        high_noise_margin(), "", +1, "no noise reduction at this setting, in train loss")
    return out + [_with_divergence(v, runs, [c for pair in pairs for c in pair])]


# ----------------------------------------------------------------------------------------------- as applied
LR_RTOL = 1e-6  # the learning rate is a float32 variable: 2^-24 relative rounding


def schedule_mismatches(result: RunResult) -> list[tuple[str, str]]:
    """(quantity, what) wherever the optimizer or the loop did not do what the config's schedule says:
    learning_rate, momentum, batch_size (examples per update and in all) or updates."""
    n = int(result.metadata.get("n_train", N_TRAIN))
    phases = result.config.build_schedule().per_epoch()
    momentum = result.config.momentum
    out = []
    if len(phases) != len(result.epochs):
        out.append(("updates", f"{result.config.key()}: {len(result.epochs)} epochs recorded, {len(phases)} "
                               "scheduled"))
    for p, e in zip(phases, result.epochs, strict=False):
        where = f"{result.config.key()} epoch {e.epoch}"
        if not all(abs(v - p.learning_rate) <= LR_RTOL * p.learning_rate
                   for v in (e.applied_lr_min, e.applied_lr_max)):
            out.append(("learning_rate", f"{where}: applied [{e.applied_lr_min:.6g}, {e.applied_lr_max:.6g}], "
                                         f"scheduled {p.learning_rate:.6g}"))
        if not abs(e.applied_momentum - momentum) <= 1e-12:
            out.append(("momentum", f"{where}: applied {e.applied_momentum:.6g}, scheduled {momentum:.6g}"))
        updates = math.ceil(n / p.batch_size)
        last = n - (updates - 1) * p.batch_size
        if (e.applied_batch_max, e.applied_batch_min, e.applied_examples) != (p.batch_size, last, n):
            out.append(("batch_size", f"{where}: {e.applied_batch_min}-{e.applied_batch_max} examples per update, "
                                      f"{e.applied_examples} in all; scheduled {p.batch_size} (last {last}), {n}"))
        if e.steps != updates:
            out.append(("updates", f"{where}: {e.steps} updates, scheduled ceil({n}/{p.batch_size}) = {updates}"))
    return out


def schedule_applied_verdict(params: str, results: Sequence[RunResult]) -> Verdict:
    found = [m for r in results for m in schedule_mismatches(r)]
    kinds = sorted({k for k, _ in found})
    epochs = sum(len(r.epochs) for r in results)
    detail = (f"{len(results)} runs, {epochs} epochs: learning rate, momentum, examples per update and updates "
              "as the optimizer and the loop applied them")
    if found:
        detail = f"{len(found)} mismatches ({', '.join(kinds)}), e.g. " + "; ".join(w for _, w in found[:3])
    return stats.deterministic("schedule-applied", params, not found, len(found), "applied == scheduled in every "
                               "epoch (lr to float32 rounding, momentum, batch, updates)", " mismatches", detail)


def eval_schedule_applied(runs: Runs, seeds) -> list[Verdict]:
    """Every run the claims read, controls included, by optimizer."""
    configs = required_configs(seeds)
    return [schedule_applied_verdict(o, [_get(runs, c) for c in configs if c.optimizer == o]) for o in OPTIMIZERS]


def eval_baseline(runs: Runs, seeds) -> list[Verdict]:
    results = [_get(runs, c) for c in baseline_configs(seeds)]
    accs = [100.0 * r.final.test_accuracy for r in results]
    seconds = float(np.median([r.train_seconds for r in results]))
    v = stats.at_least("baseline-adam", "zhou-adam-b32", accs, ZHOU_ACCURACY, unit=" %",
                       alpha_refute=refute_alpha("baseline-adam"),
                       bound=f"mean test accuracy >= the report's {ZHOU_ACCURACY}% (one-sided t, alpha 0.05)")
    return [dataclasses.replace(v, detail=f"median train time {seconds:.1f} s here vs the report's "
                                          f"{ZHOU_SECONDS} s on its own CPU (a remark, not a test)")]


def eval_report_as_run(runs: Runs, seeds) -> list[Verdict]:
    out = []
    for s in MAIN_SCHEDULES:
        d = [_acc(runs, RunConfig("sgd", s, k, base_lr=REPORT_LR[s])) - REPORT_ACCURACY[s] for k in seeds]
        out.append(stats.tost_paired("report-as-run", s, d, margin=0.5, unit=" pt",
                                     alpha_refute=refute_alpha("report-as-run"),
                                     bound=f"|acc - report's {REPORT_ACCURACY[s]}%| < 0.5 pt (TOST, alpha 0.05)"))
    return out


# ----------------------------------------------------------------------------------------------- exact checks
def ghost_bn_deviation(virtual_batch_size: int, x: np.ndarray, epsilon: float = 1e-3) -> dict[str, float]:
    """Normalize ``x`` (gamma 1, beta 0) in training mode and measure, over virtual batches and channels, the
    largest |mean|, the largest |var - var_in/(var_in + eps)|, and the largest distance to an independent
    oracle: Keras's own BatchNormalization applied to each virtual batch on its own."""
    import keras

    from reproduction.ghost_batch_norm import GhostBatchNormalization

    layer = GhostBatchNormalization(virtual_batch_size, epsilon=epsilon)
    out = np.asarray(layer(x, training=True))
    axes = tuple(range(x.ndim - 1))
    worst = {"mean": 0.0, "variance": 0.0, "oracle": 0.0}
    oracle = keras.layers.BatchNormalization(epsilon=epsilon)  # training output ignores its moving stats
    for lo in range(0, len(x), virtual_batch_size):
        xs, ys = x[lo:lo + virtual_batch_size], out[lo:lo + virtual_batch_size]
        var_in = xs.astype(np.float64).var(axis=axes)
        worst["mean"] = max(worst["mean"], float(np.abs(ys.mean(axis=axes)).max()))
        worst["variance"] = max(worst["variance"], float(np.abs(ys.var(axis=axes) - var_in / (var_in + epsilon)).max()))
        worst["oracle"] = max(worst["oracle"], float(np.abs(np.asarray(oracle(xs, training=True)) - ys).max()))
    return worst


GHOST_BN_TOLERANCE = {"mean": 1e-4, "variance": 1e-3, "oracle": 1e-5}


def eval_ghost_bn(runs: Runs = None, seeds=()) -> list[Verdict]:
    """Report's setting: a batch of 100 real-scale inputs whose virtual batches have different distributions."""
    rng = np.random.default_rng(0)
    out = []
    for v, batch in ((10, 100), (10, 2500), (10, 105)):
        shift = np.repeat(rng.normal(0, 2, size=(-(-batch // v), 1, 1, 1)), v, axis=0)[:batch]
        x = (rng.normal(size=(batch, 28, 28, 1)) * (1 + np.abs(shift)) + shift).astype(np.float32)
        dev = ghost_bn_deviation(v, x)
        ok = all(dev[k] < GHOST_BN_TOLERANCE[k] for k in dev)
        out.append(stats.deterministic("ghost-bn-per-virtual-batch", f"v{v}-b{batch}", ok, dev["oracle"],
                                       f"deviations < {GHOST_BN_TOLERANCE}", detail=", ".join(
                                           f"max |{k}| {val:.2g}" for k, val in dev.items())))
    return out


def report_schedules(base_lr: float = 0.1) -> dict[str, Schedule]:
    return {s: SCHEDULES[s](base_lr=base_lr, base_batch=100, factor=5, steps=3, epochs_per_step=2)
            for s in MAIN_SCHEDULES}


def eval_noise_scale(runs: Runs = None, seeds=()) -> list[Verdict]:
    out = []
    for m in (0.0, 0.9):
        g = {s: sched.noise_scale(N_TRAIN, m) for s, sched in report_schedules().items()}
        worst = max(abs(a / b - 1) for s in g for a, b in zip(g[s], g["decay"], strict=True))
        out.append(stats.deterministic("noise-scale-equal", f"report-setup-m{m}", worst < 1e-12, worst,
                                       "relative difference to decay's g < 1e-12", detail="g per epoch: " + "; ".join(
                                           f"{s} {[round(v, 1) for v in g[s]]}" for s in g)))
    return out


REPORT_UPDATES = {"decay": 3600, "hybrid": 1680, "increase": 1488}


def eval_parameter_updates(runs: Runs = None, seeds=()) -> list[Verdict]:
    counts = {s: sched.parameter_updates(N_TRAIN) for s, sched in report_schedules().items()}
    return [stats.deterministic("parameter-updates", s, counts[s] == REPORT_UPDATES[s], counts[s],
                                f"== {REPORT_UPDATES[s]}", " updates") for s in MAIN_SCHEDULES]


# ----------------------------------------------------------------------------------------------- the registry
_OPT_SCHED = tuple(f"{o}-{s}" for o in OPTIMIZERS for s in ("hybrid", "increase"))

CLAIMS: dict[str, Claim] = {c.id: c for c in (
    Claim("ghost-bn-per-virtual-batch", "design card; Hoffer et al. 2017; paper Sec. 5",
          "ghost batch norm normalizes each virtual batch on its own statistics",
          "per-virtual-batch mean and variance of the training output; distance to plain BN per slice",
          "|mean| < 1e-4, |var - v/(v+eps)| < 1e-3 per virtual batch and channel; equal to the oracle to 1e-5",
          "exact numerical check over hypothesis-generated inputs", "none",
          "the layer normalizing with whole-batch statistics, or a wrong moving-statistics rule",
          params=("v10-b100", "v10-b2500", "v10-b105")),
    Claim("noise-scale-equal", "paper Sec. 3-4, eq. 4-5",
          "decay, hybrid and increase lower the noise scale g = eps N / (B (1-m)) identically",
          "g per epoch for each schedule", "equal (approximate form); exact form within (N/B-1)/(N/B)",
          "exact check over hypothesis-generated schedules", "none",
          "a schedule built with another base learning rate, factor or step boundaries",
          params=("report-setup-m0.0", "report-setup-m0.9")),
    Claim("parameter-updates", "paper Sec. 5.1; report",
          "increase needs fewest updates, then hybrid, then decay (3600 / 1680 / 1488 on 60k images)",
          "sum over epochs of ceil(N/B)", "closed form; increase <= hybrid <= decay, equal only at factor 1",
          "exact check over hypothesis-generated schedules", "none",
          "a schedule whose batch sizes or phase lengths are off", params=MAIN_SCHEDULES),
    Claim("accuracy-within-1pt", "paper Sec. 5.1 (Fig. 2); report",
          "final test accuracy of hybrid and increase is within 1 point of decay, for every optimizer",
          "paired difference of final test accuracy (schedule - decay) over seeds, in points",
          "90% interval inside +-1 pt", "TOST (two one-sided paired t tests), alpha 0.05",
          "main grid: every optimizer x schedule x seed",
          "increase/hybrid with a different base learning rate, a broken batch-size change, or a model that "
          "stops learning at large batch", params=_OPT_SCHED),
    Claim("increase-faster-than-decay", "report (time plots)",
          "training wall clock: decay > hybrid > increase on this CPU",
          "ratio of training seconds (slower / faster schedule), paired by (optimizer, seed) blocks whose three "
          "runs train back to back",
          "geometric-mean ratio > 1, significant (medians in the notes)",
          "one-sided paired t on log ratios, alpha 0.05",
          "main grid (trained interleaved: decay, hybrid, increase per seed)",
          "timing that includes evaluation or tracing, or an engine whose large-batch epochs are slow",
          params=tuple(f"{a}>{b}" for a, b in ORDER_PAIRS)),
    Claim("epoch-time-falls-with-batch", "report",
          "seconds per epoch fall as B grows: B 100 > 500 > 2500",
          "per-epoch training seconds at each B inside the same increase run (and pytest-benchmark rounds)",
          "ratio > 1, significant", "one-sided paired t on log ratios, alpha 0.05",
          "increase runs of the main grid; pytest-benchmark epochs at B 100, 500, 2500",
          "per-step overhead dominating, or a large-batch slowdown (memory bound) in the engine",
          params=tuple(f"B{a}>B{b}" for a, b in BATCH_PAIRS)),
    Claim("fewer-updates", "paper Sec. 5.1",
          "the engine's update counts equal the schedule's closed form, and increase needs <= 0.42x decay's",
          "optimizer iterations per run", "== closed form; increase / decay <= 0.42", "exact",
          "main grid", "an engine that drops or adds the last partial batch, or miscounts steps",
          params=tuple(OPTIMIZERS)),
    Claim("train-loss-equivalent", "paper Fig. 3",
          "final training loss of hybrid and increase is equivalent to decay's",
          "paired difference of final training loss (mean over the last epoch), over seeds",
          "90% interval inside +-margin, margin = 2 sd of decay's final train loss across separate "
          "calibration seeds (1000 and up), pre-registered with every loss in reproduction/calibration.json "
          "(`reproduction calibrate`; a schedule may differ from decay by as much as two decay seeds typically do)",
          "TOST, alpha 0.05", "main grid (margins from the committed calibration)",
          "a schedule that trains less (e.g. fewer epochs or a smaller effective learning rate)",
          params=_OPT_SCHED),
    Claim("effective-lr", "paper Sec. 5.2 (Fig. 5, Table 1)",
          "raising the initial learning rate (with B), or the momentum to 0.98 (with B x5), keeps g and needs "
          "fewer updates; accuracy stays within 1 pt of decay (the paper saw a drop for momentum 0.98)",
          "update counts; paired accuracy difference vs momentum-decay", "fewer updates; |diff| < 1 pt",
          "exact for updates; TOST for accuracy", "momentum optimizer: increase-initial-lr, increase-momentum",
          "variants that change g, or a momentum override that does not reach the optimizer",
          params=("increase-initial-lr-updates", "increase-initial-lr-accuracy", "increase-momentum-updates",
                  "increase-momentum-accuracy"),
          known_failures={
              "increase-initial-lr-accuracy": KnownFailure(
                  "not reproduced (2026-11-28): with momentum 0.9 and the shared base rate 0.03, eps x5 = 0.15 "
                  "at B 500 diverged (NaN loss, 9.80%) on 2 of 3 seeds in the quick profile and 4 of 10 in the "
                  "full one; the 6 full-profile seeds that trained reached 96.50-97.22% against decay's "
                  "97.63-97.88% (about -1 pt). The paper raised eps on CIFAR-10 with a ResNet; on this model "
                  "the stability limit of eps binds first (momentum 0.1 diverges already under decay, "
                  "docs/tuning.md)"),  # no range: how many of the seeds diverge varies, which is the finding
              "increase-momentum-accuracy": KnownFailure(
                  "the paper's drop reproduces, larger (2026-11-28): momentum 0.98 with B x5 reached a mean "
                  "95.48% over 10 seeds (94.34-96.56%) against decay's 97.78%, -2.30 pt (90% interval "
                  "[-2.70, -1.89], refuted; quick profile, 3 seeds: -2.67 pt [-3.88, -1.46], undecided) where "
                  "the paper saw 93.3% vs 94.4% (-1.1 pt)",
                  effect_range=(-5.0, -1.0)),  # a drop beyond 1 pt; far below: diverged, not this drop
          }),
    Claim("negative-control", "this suite's pre-registered controls (issue: verdicts that discriminate)",
          "configurations the theory says must not match decay are told apart from it by the same TOST and margin "
          "as the equivalence claim they guard: no annealing (constant) in train loss; noise scale 5x lower from "
          "the start (eps/5) and B 2500 throughout (144 updates) in test accuracy",
          "paired difference control - decay over seeds (train loss; test accuracy in points)",
          "90% interval beyond the guarded claim's margin on the predicted side",
          "TOST, equivalence refuted at alpha 0.05; equivalent or undecided is red",
          "per optimizer: constant, decay at eps/5, constant at B 2500, against the main grid's decay",
          "an engine that ignores the schedule or the batch size (controls would train like decay), or a margin "
          "too wide to tell them apart",
          params=tuple(f"{o}-{c.name}" for o in OPTIMIZERS for c in CONTROLS),
          known_failures={
              "sgd-constant": KnownFailure(
                  "annealing does not matter for plain SGD at its tuned rate (eps 0.1, B 100, g = 60): no noise "
                  "reduction at all ends with decay's train loss, +0.0003 (90% interval [-0.0064, +0.0070]; "
                  "margin 0.0050) over 3 seeds, so the SGD train-loss equivalences cannot fail for a missing "
                  "decay here. The claim high-noise runs SGD where it does matter (docs/annealing.md)",
                  effect_range=(-0.0050, 0.0050)),  # inside the margin; beyond it, annealing started to matter
              **{f"{o}-eps5": KnownFailure(
                  f"a noise scale 5x lower from the start costs {o} only {drop} in test accuracy (3 seeds), "
                  "inside the paper's 1-pt bound: the accuracy claim cannot tell decay from eps/5 for this "
                  "optimizer (it can for SGD, -2.5 pt; and B 2500 throughout is refuted for every optimizer). "
                  "The train-loss claim, whose constant control is refuted for this optimizer, is the one that "
                  "discriminates", effect_range=(-1.0, 0.5))  # a drop inside the margin; beyond it: discriminates
                 for o, drop in (("momentum", "-0.67 pt [-1.01, -0.34]"), ("nesterov", "-0.32 pt [-0.78, +0.14]"),
                                 ("adam", "-0.37 pt [-0.61, -0.13]"))},
          }),
    Claim("high-noise", "paper Sec. 5.1 and Fig. 3, where annealing matters (docs/annealing.md)",
          f"at a setting where lowering g matters for plain SGD ({HIGH_NOISE.name}, g = "
          f"{HIGH_NOISE.initial_noise_scale():.0f}; pre-registered from search seeds 2000-2004), hybrid and "
          "increase still match decay in test accuracy and train loss, while no annealing does not",
          "paired differences schedule - decay over seeds: test accuracy (pt) and final train loss",
          "accuracy within 1 pt; train loss within 2 sd of decay on the search seeds; constant beyond that",
          "TOST, alpha 0.05; the control: equivalence refuted", "SGD at B 50: decay, hybrid, increase, constant",
          "a schedule that lowers g less than decay does, or an engine that ignores the schedule (the control "
          "would then match decay)",
          params=("hybrid-test_accuracy", "increase-test_accuracy", "hybrid-train_loss", "increase-train_loss",
                  "constant-control")),
    Claim("schedule-applied", "this suite's records (what the optimizer and the loop did)",
          "every run trains with the learning rate, momentum, batch size and number of updates its schedule "
          "prescribes, as read back from the optimizer's variables and counted in the traced loop",
          "per epoch: applied lr (min and max over updates), momentum, examples per update and in all, "
          "optimizer iterations", "== the schedule (lr to float32 rounding)", "exact",
          "every run the claims read, controls included",
          "an engine that sets the learning rate once, ignores a momentum override, feeds another batch size, "
          "or drops the last partial batch",
          params=tuple(OPTIMIZERS)),
    Claim("noise-scale-control", "the report's own critique (learning rate and batch confounded)",
          "equal g with eps and B both x5 gives equal accuracy (decay at (eps, B 500) vs (eps/5, B 100))",
          "paired accuracy difference", "|diff| < 1 pt", "TOST, alpha 0.05",
          "SGD decay at (eps/5, B 100) and (eps, B 500)",
          "g not being the variable that matters, e.g. a learning-rate effect beyond g",
          params=("equal-g-eps-and-B-x5",)),
    Claim("baseline-adam", "report (Victor Zhou's CNN, 97.44% in 49.19 s)",
          "the no-BN CNN with Adam, batch 32, 6 epochs reaches at least the report's 97.44%",
          "final test accuracy over seeds", ">= 97.44%", "one-sided t, alpha 0.05", "baseline runs",
          "a broken no-BN model path or optimizer", params=("zhou-adam-b32",),
          known_failures={
              "zhou-adam-b32": KnownFailure(
                  "not reached (full profile, 10 seeds, 2026-11-28): mean 97.32% (90% interval [97.21, 97.44]), "
                  "seeds 96.99-97.59%, against the report's 97.44% from a single run: refuted, narrowly, at "
                  "alpha 0.05. The report's figure lies inside our seed spread (3 of 10 seeds reached it), so "
                  "its one run reads as a good draw rather than a different model. Quick profile (3 seeds): "
                  "97.35% [96.92, 97.78], undecided",
                  effect_range=(96.5, math.inf)),  # just short of 97.44%; below 96.5%: a broken path
          }),
    Claim("report-as-run", "report notebooks, JCDetwiler/batch-size-mnist @ b002b57",
          "with the report's own SGD settings our engine reaches the report's 97.66 / 97.44 / 97.59% "
          "(decay / increase / hybrid)",
          "final test accuracy minus the report's logged value, over seeds", "|diff| < 0.5 pt",
          "TOST (one-sample), alpha 0.05", "SGD at the report's per-schedule base rates",
          "an engine that trains differently from Keras (preprocessing, init, loss, ghost BN)",
          params=MAIN_SCHEDULES),
)}

EVALUATORS: dict[str, Callable[[Runs, Sequence[int]], list[Verdict]]] = {
    "ghost-bn-per-virtual-batch": eval_ghost_bn,
    "noise-scale-equal": eval_noise_scale,
    "parameter-updates": eval_parameter_updates,
    "accuracy-within-1pt": eval_accuracy_within_1pt,
    "increase-faster-than-decay": eval_increase_faster,
    "epoch-time-falls-with-batch": eval_epoch_time,
    "fewer-updates": eval_fewer_updates,
    "train-loss-equivalent": eval_train_loss,
    "effective-lr": eval_effective_lr,
    "noise-scale-control": eval_noise_control,
    "negative-control": eval_negative_controls,
    "high-noise": eval_high_noise,
    "schedule-applied": eval_schedule_applied,
    "baseline-adam": eval_baseline,
    "report-as-run": eval_report_as_run,
}


def get_claim(claim_id: str) -> Claim:
    try:
        return CLAIMS[claim_id]
    except KeyError:
        raise ValueError(f"claim={claim_id!r}: unknown; known claims are {sorted(CLAIMS)}") from None


def evaluate(claim_id: str, runs: Runs, seeds: Sequence[int]) -> dict[str, Verdict]:
    """Verdicts of one claim, by params id (the exact checks ignore ``runs``)."""
    get_claim(claim_id)
    return {v.params: v for v in EVALUATORS[claim_id](runs, seeds)}



def pytest_params(claim_id: str) -> list:
    """The claim's parameter sets as pytest params: known non-reproductions carry xfail(strict=True) with
    their measured numbers, so they go red again the day they start to hold, and ``raises=`` limits the
    xfail to the documented failure (``judge`` raises DocumentedNonReproduction only inside its range)."""
    import pytest

    claim = get_claim(claim_id)
    return [pytest.param(p, id=p, marks=[pytest.mark.xfail(strict=True, raises=DocumentedNonReproduction,
                                                           reason=claim.known_failures[p].reason)]
                         if p in claim.known_failures else []) for p in claim.params]

"""Pre-registration on calibration seeds: the equivalence margins and the power of the negative controls.

The train-loss claim asks whether hybrid and increase end with the same training loss as decay. "The same"
needs a margin fixed before the comparison: 2 x the seed-to-seed standard deviation of decay's final
training loss, per optimizer, on calibration seeds (1000 and up) that no claim compares. A workload with
``accuracy_equivalence`` gets the same rule for final test accuracy (claim accuracy-equivalent); the paper's
accuracy claim keeps its fixed 1 pt.

The negative controls must be refuted by their guarded claim's own test at its own refutation level; how
many seeds that takes depends on their spread, measured here too: each control against decay, paired by
seed, on the first calibration seeds, and from that the seeds each control needs to be refuted with 80%
power (``stats.seeds_for_power``). A control whose effect lies inside its margin cannot be refuted at any
seed count: it is pre-registered as not discriminating.

``reproduction calibrate`` trains those runs and writes the workload's pre-registration file
(reproduction/workloads/NAME.json) with every value, so a reader can recompute each margin; the claims read
it. ``load_margins`` refuses a file measured with other settings or another code version.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from reproduction import stats

if TYPE_CHECKING:
    from reproduction.results import RunResult

from reproduction.config import CODE_VERSION, RunConfig
from reproduction.errors import UsageError
from reproduction.optimizers import get_optimizer
from reproduction.workloads import CALIBRATION_SEEDS, Workload, purpose_seeds

DEFAULT_SEEDS = 10
CONTROL_SEEDS = 6  # the first this many calibration seeds also train every control
MARGIN_SDS = 2.0  # a schedule may differ from decay by as much as two decay seeds typically do
POWER = 0.8
ACCURACY_MARGIN = 1.0  # points: the accuracy claim's margin (the paper's 1 pt)


@dataclasses.dataclass(frozen=True)
class Margin:
    optimizer: str
    margin: float  # MARGIN_SDS x sd
    sd: float  # sample sd (ddof 1) of decay's final train loss over the seeds
    seeds: tuple[int, ...]
    accuracy_margin: float | None = None  # points, MARGIN_SDS x sd of decay's final test accuracy

    def for_claim(self, claim: str) -> tuple[float, str]:
        """The margin (and unit) of an equivalence claim for this optimizer."""
        if claim == "accuracy-within-1pt":
            return ACCURACY_MARGIN, " pt"
        if claim == "accuracy-equivalent":
            if self.accuracy_margin is None:
                raise UsageError(f"{self.optimizer}: no calibrated accuracy margin (accuracy_equivalence)")
            return self.accuracy_margin, " pt"
        return self.margin, ""


def calibration_seeds(n_seeds: int = DEFAULT_SEEDS) -> list[int]:
    if not isinstance(n_seeds, int) or n_seeds < 2:
        raise UsageError(f"seeds={n_seeds!r}: expected an integer >= 2 (a standard deviation needs two)")
    return purpose_seeds(CALIBRATION_SEEDS, n_seeds)


def calibration_configs(workload: Workload, n_seeds: int = DEFAULT_SEEDS) -> list[RunConfig]:
    """Decay on every calibration seed, and each control on the first CONTROL_SEEDS of them."""
    seeds = calibration_seeds(n_seeds)
    decay = [workload.config(o, "decay", k) for k in seeds for o in workload.optimizers]
    controls = [
        c.config(workload, o, k)
        for k in seeds[:CONTROL_SEEDS]
        for o in workload.optimizers
        for c in workload.controls
    ]
    return decay + controls


def _setting(workload: Workload, optimizer: str) -> dict:
    """What a margin depends on: the run settings of decay with this optimizer."""
    config = workload.config(optimizer, "decay", 0)
    spec = get_optimizer(optimizer)
    return {
        "base_lr": config.learning_rate,
        "momentum": spec.momentum,
        "nesterov": spec.nesterov,
        "schedule": "decay",
        "base_batch": config.base_batch,
        "factor": config.factor,
        "steps": config.steps,
        "epochs_per_step": config.epochs_per_step,
        "model": dataclasses.asdict(config.model),
    }


def _final(result, quantity: str) -> float:
    return 100.0 * result.final.test_accuracy if quantity == "test_accuracy" else result.final.train_loss


def _control_entry(workload, runs, optimizer, control, seeds, margin, level) -> dict:
    from reproduction.claims.base import diverged  # the claims' own rule

    d = []
    for k in seeds:
        run = runs[control.config(workload, optimizer, k)]
        decay = runs[workload.config(optimizer, "decay", k)]
        d.append(
            math.nan if diverged(run) else _final(run, control.quantity) - _final(decay, control.quantity)
        )
    finite = [x for x in d if np.isfinite(x)]
    n_diverged = len(d) - len(finite)
    mean = float(np.mean(finite)) if finite else math.nan
    sd = float(np.std(finite, ddof=1)) if len(finite) > 1 else math.nan
    beyond = control.direction * mean - margin  # how far past the margin, on the predicted side
    candidates = [
        stats.seeds_for_power(beyond, sd, level, POWER),
        _seeds_to_see_divergence(n_diverged / len(d)),
    ]
    needed = min((n for n in candidates if n is not None), default=None)
    return {
        "quantity": control.quantity,
        "direction": control.direction,
        "seeds": list(seeds),
        "differences": [x if np.isfinite(x) else None for x in d],  # None: the control run diverged
        "diverged": n_diverged,
        "mean": mean if math.isfinite(mean) else None,  # of the pairs that trained
        "sd": sd if math.isfinite(sd) else None,
        "margin": margin,
        "level": level,
        "seeds_needed": needed,
        "discriminates": needed is not None,
    }


def _seeds_to_see_divergence(rate: float) -> int | None:
    """A control run that diverges is told apart from decay whatever the margin (claims.guards): the seeds
    at which, diverging at ``rate`` (as on the calibration seeds), one of its runs does with POWER; None at
    rate 0."""
    if rate == 0:
        return None
    if rate == 1:
        return 2
    return max(2, math.ceil(math.log(1 - POWER) / math.log(1 - rate)))


def build_calibration(
    workload: Workload, runs: Mapping[RunConfig, RunResult], n_seeds: int, provenance: Mapping | None = None
) -> dict:
    """The pre-registration file's content from the runs of ``calibration_configs(workload, n_seeds)``. The
    controls' levels are those of the full profile (every optimizer: the strictest Bonferroni level)."""
    from reproduction.claims import Plan, refute_alpha  # the claims' own levels

    full = Plan(workload, workload.profile("full"))
    seeds = calibration_seeds(n_seeds)
    optimizers, controls = {}, {}
    for o in workload.optimizers:
        optimizers[o] = _optimizer_entry(workload, runs, o, seeds)
        margin = _margin(optimizers[o], workload, o, "calibration")
        for c in workload.controls:
            level = refute_alpha(c.claim, full)
            controls[f"{o}-{c.name}"] = _control_entry(
                workload, runs, o, c, seeds[:CONTROL_SEEDS], margin.for_claim(c.claim)[0], level
            )
    needed = [e["seeds_needed"] for e in controls.values() if e["discriminates"]]
    accuracy = (
        " (and of its final test accuracy in points, read by accuracy-equivalent)"
        if workload.accuracy_equivalence
        else ""
    )
    return {
        "what": f"margin = {MARGIN_SDS:g} x sd (ddof 1) of decay's final train loss over the seeds, per "
        f"optimizer, read by the train-loss-equivalent claim{accuracy}; each control - decay on the first "
        f"seeds, and the seeds it needs to be refuted at its guarded claim's level with {POWER:.0%} power",
        "workload": workload.name,
        "command": f"reproduction calibrate --workload {workload.name} --seeds {n_seeds}",
        "code_version": CODE_VERSION,
        **dict(provenance or {}),
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "optimizers": optimizers,
        "controls": controls,
        "seeds_needed": max(needed) if needed else None,
    }


def _optimizer_entry(workload: Workload, runs: Mapping[RunConfig, RunResult], o: str, seeds) -> dict:
    decay = [runs[workload.config(o, "decay", k)] for k in seeds]
    losses = [r.final.train_loss for r in decay]
    diverged = [k for k, loss in zip(seeds, losses, strict=True) if not np.isfinite(loss)]
    if diverged:
        raise UsageError(
            f"calibration: {o} decay at base rate {workload.learning_rate(o):g} diverged on calibration "
            f"seed(s) {diverged}: the rate is unstable; lower it (docs/tuning.md) and calibrate again"
        )
    entry = {
        "setting": _setting(workload, o),
        "seeds": seeds,
        "final_train_loss": losses,
        "sd": float(np.std(losses, ddof=1)),
        "margin": MARGIN_SDS * float(np.std(losses, ddof=1)),
    }
    if workload.accuracy_equivalence:
        accuracy = [100.0 * r.final.test_accuracy for r in decay]
        entry["final_test_accuracy"] = accuracy
        entry["accuracy_sd"] = float(np.std(accuracy, ddof=1))
        entry["accuracy_margin"] = MARGIN_SDS * entry["accuracy_sd"]
    return entry


def load_margins(content: dict, workload: Workload, where: str = "calibration") -> dict[str, Margin]:
    """optimizer -> Margin, after checking each entry was measured with today's settings and code."""
    if not isinstance(content, dict):
        raise UsageError(f"{where}: expected a JSON object, got {type(content).__name__}")
    if content.get("code_version") != CODE_VERSION:
        raise UsageError(
            f"{where}: measured at code version {content.get('code_version')!r}, the code is at "
            f"{CODE_VERSION!r}; run `reproduction calibrate --workload {workload.name}`"
        )
    entries = content.get("optimizers")
    if not isinstance(entries, dict):
        raise UsageError(f"{where}: field 'optimizers' must be an object of per-optimizer entries")
    margins = {}
    for o in workload.optimizers:
        if o not in entries:
            raise UsageError(
                f"{where}: no margin for optimizer {o!r} (has {sorted(entries)}); run `reproduction "
                f"calibrate --workload {workload.name}`"
            )
        margins[o] = _margin(entries[o], workload, o, where)
    return margins


def _margin(entry, workload: Workload, o: str, where: str) -> Margin:
    try:
        setting, losses, seeds = (
            entry["setting"],
            [float(x) for x in entry["final_train_loss"]],
            entry["seeds"],
        )
        sd_recorded, margin_recorded = float(entry["sd"]), float(entry["margin"])
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(
            f"{where}: optimizers.{o}: missing or malformed field ({type(exc).__name__}: {exc})"
        ) from None
    if setting != _setting(workload, o):
        raise UsageError(
            f"{where}: the {o!r} margin was measured with {setting}, the workload now gives "
            f"{_setting(workload, o)}; run `reproduction calibrate --workload {workload.name}`"
        )
    if not all(np.isfinite(losses)) or not all(0 <= x < 1e6 for x in losses):
        raise UsageError(f"{where}: optimizers.{o}.final_train_loss: expected finite losses, got {losses}")
    if not isinstance(seeds, list) or len(losses) < 2 or len(losses) != len(seeds):
        raise UsageError(f"{where}: optimizers.{o}: needs one final train loss per seed, at least two")
    sd = float(np.std(losses, ddof=1))
    if not np.isclose(sd, sd_recorded, rtol=1e-9) or not np.isclose(
        margin_recorded, MARGIN_SDS * sd, rtol=1e-9
    ):
        raise UsageError(f"{where}: optimizers.{o}: sd/margin do not follow from its losses (sd {sd})")
    accuracy = _accuracy_margin(entry, o, where) if workload.accuracy_equivalence else None
    return Margin(o, MARGIN_SDS * sd, sd, tuple(seeds), accuracy)


def _accuracy_margin(entry: dict, o: str, where: str) -> float:
    try:
        accuracy = [float(x) for x in entry["final_test_accuracy"]]
        recorded = float(entry["accuracy_margin"])
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(
            f"{where}: optimizers.{o}: missing or malformed accuracy field ({type(exc).__name__}: {exc}); "
            "run `reproduction calibrate`"
        ) from None
    if len(accuracy) != len(entry["seeds"]) or not all(0.0 <= a <= 100.0 for a in accuracy):
        raise UsageError(f"{where}: optimizers.{o}.final_test_accuracy: one accuracy in [0, 100] per seed")
    margin = MARGIN_SDS * float(np.std(accuracy, ddof=1))
    if not np.isclose(recorded, margin, rtol=1e-9):
        raise UsageError(f"{where}: optimizers.{o}: accuracy_margin does not follow from its accuracies")
    return margin


def read_preregistration(workload: Workload) -> dict:
    path = Path(workload.preregistration)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(
            f"calibration: {path} is missing; run `reproduction calibrate --workload {workload.name}`"
        ) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"calibration: {path} is not valid JSON ({exc})") from None


def read_margins(workload: Workload) -> dict[str, Margin]:
    return load_margins(read_preregistration(workload), workload, str(workload.preregistration))


def discriminating(workload: Workload, seeds: int | None = None) -> set[str]:
    """The controls ('optimizer-name') pre-registered as discriminating: beyond their margin on the
    calibration seeds, with a seed count that refutes them at their claim's level with 80% power
    (``seeds_needed``), at most ``seeds`` when given."""
    needed = seeds_needed(workload)
    return {name for name, n in needed.items() if n is not None and (seeds is None or n <= seeds)}


def seeds_needed(workload: Workload) -> dict[str, int | None]:
    """Every control in the pre-registration ('optimizer-name'): the seeds it needs to be refuted with 80%
    power, or None where it is pre-registered as not discriminating."""
    content = read_preregistration(workload)
    load_margins(content, workload, str(workload.preregistration))  # the same checks: version, settings
    controls = content.get("controls")
    if not isinstance(controls, dict):
        raise UsageError(
            f"{workload.preregistration}: field 'controls' must be an object; run `reproduction calibrate "
            f"--workload {workload.name}`"
        )
    return {
        name: int(entry.get("seeds_needed") or 0) if entry.get("discriminates") else None
        for name, entry in controls.items()
        if isinstance(entry, dict)
    }

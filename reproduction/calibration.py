"""Pre-registration on calibration seeds: the train-loss margins and the power of the negative controls.

The train-loss claim asks whether hybrid and increase end with the same training loss as decay. "The same"
needs a margin fixed before the comparison: 2 x the seed-to-seed standard deviation of decay's final
training loss, per optimizer, on calibration seeds (1000 and up) that no claim compares.

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
from reproduction.workloads import CALIBRATION_SEEDS, Workload

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


def calibration_seeds(n_seeds: int = DEFAULT_SEEDS) -> list[int]:
    if not isinstance(n_seeds, int) or n_seeds < 2:
        raise UsageError(f"seeds={n_seeds!r}: expected an integer >= 2 (a standard deviation needs two)")
    return [CALIBRATION_SEEDS + k for k in range(n_seeds)]


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
    d = [
        _final(runs[control.config(workload, optimizer, k)], control.quantity)
        - _final(runs[workload.config(optimizer, "decay", k)], control.quantity)
        for k in seeds
    ]
    mean, sd = float(np.mean(d)), float(np.std(d, ddof=1))
    beyond = control.direction * mean - margin  # how far past the margin, on the predicted side
    needed = stats.seeds_for_power(beyond, sd, level, POWER) if np.all(np.isfinite(d)) else None
    return {
        "quantity": control.quantity,
        "direction": control.direction,
        "seeds": list(seeds),
        "differences": d,
        "mean": mean,
        "sd": sd,
        "margin": margin,
        "level": level,
        "seeds_needed": needed,
        "discriminates": needed is not None,
    }


def build_calibration(
    workload: Workload, runs: Mapping[RunConfig, RunResult], n_seeds: int, provenance: Mapping | None = None
) -> dict:
    """The pre-registration file's content from the runs of ``calibration_configs(workload, n_seeds)``. The
    controls' levels are those of the full profile (every optimizer: the strictest Bonferroni level)."""
    from reproduction.claims import GUARDED_BY, Plan, refute_alpha  # the claims' own levels

    full = Plan(workload, workload.profile("full"))
    seeds = calibration_seeds(n_seeds)
    optimizers, controls = {}, {}
    for o in workload.optimizers:
        losses = [runs[workload.config(o, "decay", k)].final.train_loss for k in seeds]
        sd = float(np.std(losses, ddof=1))
        optimizers[o] = {
            "setting": _setting(workload, o),
            "seeds": seeds,
            "final_train_loss": losses,
            "sd": sd,
            "margin": MARGIN_SDS * sd,
        }
        for c in workload.controls:
            margin = ACCURACY_MARGIN if c.quantity == "test_accuracy" else MARGIN_SDS * sd
            level = refute_alpha(GUARDED_BY[c.quantity], full)
            controls[f"{o}-{c.name}"] = _control_entry(
                workload, runs, o, c, seeds[:CONTROL_SEEDS], margin, level
            )
    needed = [e["seeds_needed"] for e in controls.values() if e["discriminates"]]
    return {
        "what": f"margin = {MARGIN_SDS:g} x sd (ddof 1) of decay's final train loss over the seeds, per "
        "optimizer, read by the train-loss-equivalent claim; each control - decay on the first seeds, and "
        f"the seeds it needs to be refuted at its guarded claim's level with {POWER:.0%} power",
        "workload": workload.name,
        "command": f"reproduction calibrate --workload {workload.name} --seeds {n_seeds}",
        "code_version": CODE_VERSION,
        **dict(provenance or {}),
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "optimizers": optimizers,
        "controls": controls,
        "seeds_needed": max(needed) if needed else None,
    }


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
    return Margin(o, MARGIN_SDS * sd, sd, tuple(seeds))


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


def discriminating(workload: Workload) -> set[str]:
    """The controls ('optimizer-name') pre-registered as discriminating: beyond their margin on the
    calibration seeds, with a seed count that refutes them at their claim's level (``seeds_needed``)."""
    content = read_preregistration(workload)
    load_margins(content, workload, str(workload.preregistration))  # the same checks: version, settings
    controls = content.get("controls")
    if not isinstance(controls, dict):
        raise UsageError(
            f"{workload.preregistration}: field 'controls' must be an object; run `reproduction calibrate "
            f"--workload {workload.name}`"
        )
    return {
        name for name, entry in controls.items() if isinstance(entry, dict) and entry.get("discriminates")
    }

"""Pre-registered margins for the train-loss equivalence claim (paper Fig. 3).

The claim asks whether hybrid and increase end with the same training loss as decay. "The same" needs a
margin fixed before the comparison, as an equivalence test (TOST) requires: here, 2 x the seed-to-seed
standard deviation of decay's final training loss, measured per optimizer on calibration seeds (1000 and
up) that no claim compares. ``reproduction calibrate`` trains those runs and writes ``calibration.json``
beside this module; the file is committed with its per-seed losses, so a reader can recompute each margin,
and the claim reads it instead of retraining the calibration on every reproduction.

A margin is valid only for the optimizer setting it was measured with: ``load_margins`` refuses a file whose
base learning rate, momentum or schedule disagrees with the registry (retune -> recalibrate).
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from reproduction.config import CODE_VERSION, RunConfig
from reproduction.optimizers import OPTIMIZERS, get_optimizer

CALIBRATION_PATH = Path(__file__).with_name("calibration.json")
CALIBRATION_SEED_OFFSET = 1000  # seeds 1000, 1001, ...: decay runs that calibrate, never compared
DEFAULT_SEEDS = 10
MARGIN_SDS = 2.0  # a schedule may differ from decay by as much as two decay seeds typically do


@dataclasses.dataclass(frozen=True)
class Margin:
    optimizer: str
    margin: float  # MARGIN_SDS x sd
    sd: float  # sample sd (ddof 1) of decay's final train loss over the seeds
    seeds: tuple[int, ...]


def calibration_configs(n_seeds: int = DEFAULT_SEEDS) -> list[RunConfig]:
    if not isinstance(n_seeds, int) or n_seeds < 2:
        raise ValueError(f"seeds={n_seeds!r}: expected an integer >= 2 (a standard deviation needs two)")
    return [
        RunConfig(optimizer=o, schedule="decay", seed=CALIBRATION_SEED_OFFSET + k)
        for k in range(n_seeds)
        for o in OPTIMIZERS
    ]


def _setting(optimizer: str) -> dict:
    """What a margin depends on: the run settings of decay with this optimizer."""
    config = RunConfig(optimizer=optimizer, schedule="decay")
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


def build_calibration(
    runs: Mapping[RunConfig, object], n_seeds: int, provenance: Mapping | None = None
) -> dict:
    """The calibration.json content from the runs of ``calibration_configs(n_seeds)``."""
    optimizers = {}
    for o in OPTIMIZERS:
        seeds = [CALIBRATION_SEED_OFFSET + k for k in range(n_seeds)]
        losses = [runs[RunConfig(optimizer=o, schedule="decay", seed=s)].final.train_loss for s in seeds]
        sd = float(np.std(losses, ddof=1))
        optimizers[o] = {
            "setting": _setting(o),
            "seeds": seeds,
            "final_train_loss": losses,
            "sd": sd,
            "margin": MARGIN_SDS * sd,
        }
    return {
        "what": f"margin = {MARGIN_SDS:g} x sd (ddof 1) of decay's final train loss over the seeds, "
        "per optimizer; read by the train-loss-equivalent claim",
        "command": f"reproduction calibrate --seeds {n_seeds}",
        "code_version": CODE_VERSION,
        **dict(provenance or {}),
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "optimizers": optimizers,
    }


def load_margins(calibration: dict) -> dict[str, Margin]:
    """optimizer -> Margin, after checking each entry was measured with today's settings."""
    margins = {}
    entries = calibration.get("optimizers", {})
    for o in OPTIMIZERS:
        if o not in entries:
            raise ValueError(
                f"calibration: no margin for optimizer {o!r} (has {sorted(entries)}); run "
                "`reproduction calibrate`"
            )
        entry = entries[o]
        if entry["setting"] != _setting(o):
            raise ValueError(
                f"calibration: the {o!r} margin was measured with {entry['setting']}, the registry "
                f"now gives {_setting(o)}; run `reproduction calibrate`"
            )
        losses = entry["final_train_loss"]
        if len(losses) < 2 or len(losses) != len(entry["seeds"]):
            raise ValueError(f"calibration: {o!r} needs one final train loss per seed, at least two")
        sd = float(np.std(losses, ddof=1))
        if not np.isclose(sd, entry["sd"], rtol=1e-9) or not np.isclose(
            entry["margin"], MARGIN_SDS * sd, rtol=1e-9
        ):
            raise ValueError(f"calibration: {o!r} sd/margin do not follow from its losses (sd {sd})")
        margins[o] = Margin(o, MARGIN_SDS * sd, sd, tuple(entry["seeds"]))
    return margins


def read_margins(path: Path | None = None) -> dict[str, Margin]:
    import json

    path = CALIBRATION_PATH if path is None else path
    try:
        return load_margins(json.loads(Path(path).read_text()))
    except FileNotFoundError:
        raise ValueError(f"calibration: {path} is missing; run `reproduction calibrate`") from None

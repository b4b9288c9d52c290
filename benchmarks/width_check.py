"""Does Fashion-MNIST need a wider CNN than MNIST's 8 filters? A plain script, run once before the workload's
rates were tuned (docs/workloads.md keeps its table): decay and no annealing at 8 and 16 filters, on tuning
seeds 3000-3002 (never judged), at the workload's rates, two workers.

    python benchmarks/width_check.py [RUNS_DIR]     # about 5 minutes on 2 cores with an empty store

The epoch seconds are the median B-100 epoch of the decay runs, warm-up epoch left out, trained two at a time.
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
import tempfile
from pathlib import Path

from reproduction.data import DatasetSource
from reproduction.runner import run_all
from reproduction.store import RunStore
from reproduction.workloads import TUNING_SEEDS, get_workload

OPTIMIZERS = ("sgd", "momentum", "adam")
SEEDS = tuple(TUNING_SEEDS + k for k in range(3))
WIDTHS = (8, 16)


def configs(width: int, optimizer: str, schedule: str):
    workload = get_workload("fashion-mnist")
    model = dataclasses.replace(workload.model, filters=width)
    return [workload.config(optimizer, schedule, seed, model=model) for seed in SEEDS]


def main(runs_dir: Path) -> None:
    grid = [c for w in WIDTHS for o in OPTIMIZERS for s in ("decay", "constant") for c in configs(w, o, s)]
    runs = run_all(grid, DatasetSource("fashion-mnist"), RunStore(runs_dir), timed=[], workers=2).runs
    print(
        "| filters | optimizer | decay accuracy | constant - decay accuracy | decay train loss | constant - "
        "decay loss | B-100 epoch s |"
    )
    print("|---|---|---|---|---|---|---|")
    for w in WIDTHS:
        for o in OPTIMIZERS:
            decay = [runs[c] for c in configs(w, o, "decay")]
            constant = [runs[c] for c in configs(w, o, "constant")]
            acc = statistics.mean(r.epochs[-1].test_accuracy for r in decay)
            loss = statistics.mean(r.epochs[-1].train_loss for r in decay)
            d_acc = statistics.mean(r.epochs[-1].test_accuracy for r in constant) - acc
            d_loss = statistics.mean(r.epochs[-1].train_loss for r in constant) - loss
            seconds = statistics.median(e.train_seconds for r in decay for e in r.epochs[1:])
            print(
                f"| {w} | {o} | {acc:.2%} | {100 * d_acc:+.2f} pt | {loss:.4f} | {d_loss:+.4f} | "
                f"{seconds:.2f} |"
            )


if __name__ == "__main__":  # run_all's workers import this module again
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="width-check-")))

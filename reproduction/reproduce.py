"""The main job: every run the claims need (reproduction/runner.py: resumable), then the report."""

from __future__ import annotations

from pathlib import Path

from reproduction import claims
from reproduction.cluster import DEFAULT_WORKERS, MnistSource, check_scheduler, check_workers
from reproduction.report import build_report, tally
from reproduction.runner import check_tensorboard, run_all, say
from reproduction.store import RunStore


def reproduce(
    profile: str = "quick",
    out: Path = Path("report"),
    seeds: int | None = None,
    data_dir: str | None = None,
    runs_dir: str | None = None,
    fresh: bool = False,
    tensorboard: bool = False,
    data=None,
    quiet: bool = False,
    workers: int = DEFAULT_WORKERS,
    scheduler: str | None = None,
) -> int:
    """Run the grid and write the report. ``data`` (preprocessed arrays) overrides MNIST for smoke tests;
    ``scheduler``: a Dask scheduler address for the grid (reproduction/cluster.py)."""
    prof = claims.get_profile(profile, seeds)
    check_workers(workers)
    scheduler = check_scheduler(scheduler)
    if tensorboard:
        check_tensorboard()  # fail before training, not after the first run
    if data is None:
        data = MnistSource(data_dir)
        data.load()  # fetched and verified here, once, before any worker looks for its cache
    seed_list = prof.seed_list()
    store = RunStore(runs_dir)
    configs = claims.required_configs(seed_list, prof.full)
    timed = claims.timed_configs(seed_list)
    say(
        f"profile {prof.name}: {len(seed_list)} seeds, {len(configs)} runs ({len(timed)} timed, trained alone), "
        f"store {store.root}"
    )
    runs = run_all(
        configs,
        data,
        store,
        fresh=fresh,
        quiet=quiet,
        tensorboard=out / "tensorboard" if tensorboard else None,
        timed=timed,
        workers=workers,
        scheduler=scheduler,
    ).runs
    report, verdicts = build_report(runs, seed_list, prof.name, out)
    print(f"report: {report}  ({tally(verdicts)})")
    return 0

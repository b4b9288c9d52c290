"""The main job: every run the plan's claims need (reproduction/runner.py: resumable), then the report."""

from __future__ import annotations

from pathlib import Path

from reproduction import calibration, claims
from reproduction.atomic import ensure_directory
from reproduction.cluster import DEFAULT_WORKERS, check_scheduler, check_workers
from reproduction.report import build_report, tally
from reproduction.runner import run_all, say
from reproduction.store import RunStore


def reproduce(
    workload: str = "mnist",
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
    tls=None,
) -> int:
    """Run the plan's grid and write the report. ``data`` (preprocessed arrays) overrides the workload's
    dataset for smoke tests; ``scheduler``: a Dask scheduler address for the grid, ``tls`` this client's
    certificates for a tls:// one (reproduction/cluster.py)."""
    plan = claims.get_plan(workload, profile, seeds)
    calibration.read_margins(plan.workload)  # the claims' pre-registered margins: refused before any run
    check_workers(workers)
    scheduler = check_scheduler(scheduler)
    if tls is not None:
        tls.check_for(scheduler)
    store = RunStore(runs_dir)
    _check_outputs(store, Path(out), tensorboard)
    if data is None:
        data = plan.workload.source(data_dir)
        data.load()  # fetched and verified here, once, before any worker looks for its cache
    configs, timed = claims.required_configs(plan), claims.timed_configs(plan)
    say(
        f"workload {plan.workload.name}, profile {plan.profile_label}: {len(plan.seeds)} seeds, "
        f"{len(configs)} runs ({len(timed)} timed, trained alone), store {store.root}"
    )
    runs = run_all(
        configs,
        data,
        store,
        fresh=fresh,
        quiet=quiet,
        tensorboard=Path(out) / "tensorboard" if tensorboard else None,
        timed=timed,
        workers=workers,
        scheduler=scheduler,
        tls=tls,
    ).runs
    report, verdicts = build_report(plan, runs, Path(out))
    print(f"report: {report}  ({tally(verdicts, plan)})")
    return 0


def _check_outputs(store: RunStore, out: Path, tensorboard: bool) -> None:
    """Everything a run will write to, checked before any data is loaded or any run trained."""
    if tensorboard:
        from reproduction.tensorboard_log import check_tensorboard

        check_tensorboard()
    ensure_directory(store.root, "--runs-dir")
    ensure_directory(out, "--out")

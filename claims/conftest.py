"""Shared runs and the verdict table for the claims.

Runs are shared: one session fixture asks the run store for every configuration the claims need and
trains only what is missing (``--fresh-runs`` retrains), in the order ``required_configs`` gives, so the
schedules of one seed train back to back. Each claim test hands its verdict to ``judge``:
holds -> pass; refuted -> fail; undecided -> xfail with the numbers and the repetitions that would decide.
A documented non-reproduction (claims.KnownFailure) is an xfail only while its effect stays in the
documented range; outside it the test fails.
At the end pytest prints the verdict table and writes it as JSON next to the runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reproduction import claims as claims_mod
from reproduction import stats
from reproduction.atomic import atomic_write_json
from reproduction.cluster import DEFAULT_WORKERS, MnistSource
from reproduction.runner import run_all
from reproduction.store import RunStore, default_runs_dir

HERE = Path(__file__).parent
VERDICTS = pytest.StashKey[list]()  # this session's verdicts, in the order the tests judged them


def pytest_configure(config):
    config.stash[VERDICTS] = []


def pytest_collection_modifyitems(config, items):
    for item in items:  # this hook sees every collected item: mark only the claims
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.claims)


@pytest.fixture(scope="session")
def profile(pytestconfig):
    return claims_mod.get_profile(pytestconfig.getoption("--profile"))


@pytest.fixture(scope="session")
def seeds(profile):
    return profile.seed_list()


@pytest.fixture(scope="session")
def store(pytestconfig):
    return RunStore(pytestconfig.getoption("--runs-dir") or default_runs_dir())


@pytest.fixture(scope="session")
def mnist():
    return MnistSource().load()


def _say(pytestconfig, text):
    """Progress on the terminal now, not in the captured output of whichever test set up the runs."""
    reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    if capture is None:
        reporter.write_line(text)
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(text)


@pytest.fixture(scope="session")
def runs(pytestconfig, profile, seeds, store, mnist):
    """Every run the claims need: from the store, training only what is missing. (``mnist``: the data are
    fetched and verified here, once, before any worker looks for its cache.)"""
    return run_all(
        claims_mod.required_configs(seeds, profile.full),
        MnistSource(),
        store,
        fresh=pytestconfig.getoption("--fresh-runs"),
        quiet=True,
        say=lambda text: _say(pytestconfig, text),
        timed=claims_mod.timed_configs(seeds),
        workers=DEFAULT_WORKERS,
        scheduler=pytestconfig.getoption("--scheduler"),
    ).runs


@pytest.fixture(scope="session")
def evaluated(runs, profile, seeds):
    """claim id -> {params: Verdict}, each claim evaluated once per session; a claim this profile leaves to
    the full profile is skipped (its runs are not in this profile's store request)."""
    cache = {}

    def _evaluated(claim_id: str) -> dict[str, stats.Verdict]:
        if not claims_mod.in_profile(claim_id, profile.full):
            pytest.skip(f"{claim_id}: evaluated in the full profile only (--profile full)")
        if claim_id not in cache:
            cache[claim_id] = claims_mod.evaluate(claim_id, runs, seeds)
        return cache[claim_id]

    return _evaluated


@pytest.fixture
def judge(pytestconfig):
    """Record a verdict and turn it into the test outcome."""

    def _judge(verdict: stats.Verdict) -> stats.Verdict:
        pytestconfig.stash[VERDICTS].append(verdict)
        status = claims_mod.known_failure_status(verdict)
        if status == "documented":  # the xfail(strict, raises=) mark accepts this exception and no other
            raise claims_mod.DocumentedNonReproduction(
                f"{verdict.verdict.upper()} as documented: {verdict.summary()}"
            )
        if status == "outside":
            pytest.fail(
                f"OUTSIDE the documented non-reproduction's range "
                f"{claims_mod.get_claim(verdict.claim).known_failures[verdict.params].effect_range}: "
                f"{verdict.summary()}",
                pytrace=False,
            )
        if verdict.verdict == stats.REFUTED:
            pytest.fail(f"REFUTED: {verdict.summary()}", pytrace=False)
        if verdict.verdict == stats.UNDECIDED:
            pytest.xfail(f"UNDECIDED: {verdict.summary()}")
        return verdict

    return _judge


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    verdicts = config.stash.get(VERDICTS, [])
    if not verdicts:
        return
    tr = terminalreporter
    tr.section("claims verdict table")
    tr.write_line(f"{'claim':<28} {'params':<34} {'verdict':<9} {'effect [90% interval]':<36} bound")
    for v in verdicts:
        effect = f"{v.effect:.4g}{v.unit} [{v.low:.4g}, {v.high:.4g}]"
        tr.write_line(f"{v.claim:<28} {v.params:<34} {v.verdict:<9} {effect:<36} {v.bound}")
    path = (config.getoption("--runs-dir") or str(default_runs_dir())) + "/verdicts.json"
    atomic_write_json(
        path, {"profile": config.getoption("--profile"), "verdicts": [v.to_dict() for v in verdicts]}
    )
    tr.write_line(f"verdicts written to {path}")

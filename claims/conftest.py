"""The claims as pytest tests: one parametrized test over the claim registry, the runs shared, a verdict
table.

``--workload`` and ``--profile`` choose the plan (default mnist, quick). Runs are shared: one session fixture
asks the run store for every configuration the plan's claims need and trains only what is missing
(``--fresh-runs`` retrains), the timed ones first, alone, in their counterbalanced order. Each verdict is
judged by ``claims.status``, the rule the report uses too: holds -> pass; refuted, or undecided where not
declared in advance, or a setup failure -> fail; a documented non-reproduction -> xfail(strict) inside its
range; undecided as declared for this profile -> xfail inside its declared range. At the end pytest prints
the verdict table and writes it as JSON next to the runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reproduction import claims as claims_mod
from reproduction.atomic import atomic_write_json
from reproduction.claims import Status
from reproduction.cluster import DEFAULT_WORKERS
from reproduction.errors import UsageError
from reproduction.runner import run_all
from reproduction.store import RunStore, default_runs_dir

HERE = Path(__file__).parent
VERDICTS = pytest.StashKey[list]()  # this session's verdicts, in the order the tests judged them
PLAN = pytest.StashKey[claims_mod.Plan]()


def pytest_configure(config):
    config.stash[VERDICTS] = []
    try:
        plan = claims_mod.get_plan(config.getoption("--workload"), config.getoption("--profile"))
    except UsageError as exc:  # pytest prints its own UsageError in one line, others as an INTERNALERROR
        raise pytest.UsageError(str(exc)) from None
    config.stash[PLAN] = plan


def pytest_collection_modifyitems(config, items):
    for item in items:  # this hook sees every collected item: mark only the claims
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.claims)


def pytest_generate_tests(metafunc):
    """One test per (claim, parameter set) of the plan; documented non-reproductions carry xfail(strict) with
    their measured numbers, so they go red the day they start to hold, and ``raises=`` limits the xfail to
    the documented failure (``judge`` raises DocumentedNonReproduction only inside its range)."""
    if "claim_params" not in metafunc.fixturenames:
        return
    plan = metafunc.config.stash[PLAN]
    params = []
    for claim in claims_mod.claims_in(plan):
        for p in claim.params_for(plan):
            known = claim.known_failure(plan, p)
            marks = [pytest.mark.slow] if claim.reads_runs else []
            if known is not None:
                marks.append(
                    pytest.mark.xfail(
                        strict=True, raises=claims_mod.DocumentedNonReproduction, reason=known.reason
                    )
                )
            params.append(pytest.param((claim.id, p), id=f"{claim.id}:{p}", marks=marks))
    metafunc.parametrize("claim_params", params)


@pytest.fixture(scope="session")
def plan(pytestconfig) -> claims_mod.Plan:
    return pytestconfig.stash[PLAN]


@pytest.fixture(scope="session")
def store(pytestconfig):
    return RunStore(pytestconfig.getoption("--runs-dir") or default_runs_dir())


@pytest.fixture(scope="session")
def dataset(plan):
    """The workload's data, fetched and verified once, before any worker looks for its cache."""
    return plan.workload.source().load()


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
def runs(pytestconfig, plan, store, dataset):
    """Every run the plan's claims need: from the store, training only what is missing."""
    return run_all(
        claims_mod.required_configs(plan),
        plan.workload.source(),
        store,
        fresh=pytestconfig.getoption("--fresh-runs"),
        quiet=True,
        say=lambda text: _say(pytestconfig, text),
        timed=claims_mod.timed_configs(plan),
        workers=DEFAULT_WORKERS,
        scheduler=pytestconfig.getoption("--scheduler"),
    ).runs


@pytest.fixture(scope="session")
def verdicts_of(request, plan):
    """claim id -> {params: Verdict}, each claim evaluated once per session; runs are trained only when a
    claim that reads them is judged."""
    cache = {}

    def _verdicts_of(claim_id: str):
        if claim_id not in cache:
            claim = claims_mod.get_claim(claim_id)
            runs = request.getfixturevalue("runs") if claim.reads_runs else {}
            cache[claim_id] = claims_mod.evaluate(claim_id, plan, runs)
        return cache[claim_id]

    return _verdicts_of


@pytest.fixture
def judge(pytestconfig, plan):
    """Record a verdict and turn it into the test outcome (claims.status, the report's rule)."""

    def _judge(verdict):
        pytestconfig.stash[VERDICTS].append(verdict)
        kind, why = claims_mod.status(verdict, plan)
        if kind == Status.DOCUMENTED:  # the xfail(strict, raises=) mark accepts this exception and no other
            raise claims_mod.DocumentedNonReproduction(f"{why}: {verdict.summary()}")
        if kind == Status.DECLARED:
            pytest.xfail(f"{why}: {verdict.summary()}")
        if kind == Status.FAIL:
            pytest.fail(f"{why.upper()}: {verdict.summary()}", pytrace=False)
        return verdict  # PASS, or REPRODUCES (its strict xfail mark turns the pass red)

    return _judge


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    verdicts = config.stash.get(VERDICTS, [])
    plan = config.stash.get(PLAN, None)
    if not verdicts or plan is None:
        return
    tr = terminalreporter
    tr.section(f"claims verdict table: {plan.workload.name}, profile {plan.profile_label}")
    tr.write_line(
        f"{'claim':<28} {'params':<34} {'verdict':<9} {'outcome':<19} {'effect [90% interval]':<36} bound"
    )
    for v in verdicts:
        effect = f"{v.effect:.4g}{v.unit} [{v.low:.4g}, {v.high:.4g}]"
        outcome = claims_mod.status(v, plan)[0].value
        tr.write_line(f"{v.claim:<28} {v.params:<34} {v.verdict:<9} {outcome:<19} {effect:<36} {v.bound}")
    full = claims_mod.Plan(plan.workload, plan.workload.profile("full"))
    left = [c.id for c in claims_mod.claims_in(full) if not c.applies(plan) and c.params_for(plan)]
    if left:
        tr.write_line(f"left to the full profile (untested here): {', '.join(left)}")
    path = (config.getoption("--runs-dir") or str(default_runs_dir())) + "/verdicts.json"
    atomic_write_json(
        path,
        {
            "workload": plan.workload.name,
            "profile": plan.profile.name,
            "verdicts": [v.to_dict() for v in verdicts],
        },
    )
    tr.write_line(f"verdicts written to {path}")

"""Smoke test of the main job on a small synthetic data set and one seed: artefacts, resume, rebuild.

5,000 training examples: two updates an epoch at the quick profile's largest batch (2,500; the paper's 5.2
variants, which reach 12,500, are full-profile claims); with one seed every statistical claim is
'undecided', which is what a smoke run should say.
"""

from __future__ import annotations

import json
import re

import matplotlib.image
import pytest
from support import plan_with_seeds, synthetic_digits

from reproduction import claims
from reproduction.cli import main
from reproduction.reproduce import reproduce
from reproduction.store import RunStore

pytestmark = pytest.mark.alone  # the main job's timed runs train in this process
PLAN = plan_with_seeds("mnist", 1)  # the quick profile's runs, one seed
N_RUNS_ONE_SEED = len(claims.required_configs(PLAN))
N_TIMED_ONE_SEED = len(claims.timed_configs(PLAN))
INTERRUPT_AFTER = N_TIMED_ONE_SEED + 2  # inside the worker phase: the timed runs and two untimed ones stored


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """Interrupt the first attempt while workers train (after INTERRUPT_AFTER runs were stored), then resume
    twice; returns (out, runs_dir, runs stored per attempt, metadata of the stored runs)."""
    base = tmp_path_factory.mktemp("smoke")
    out, runs_dir = base / "report", base / "runs"
    data = synthetic_digits(n_train=5_000, n_test=500)
    stored = []
    real_put = RunStore.put

    def counting_put(self, result):
        if interrupt_after is not None and stored[-1] >= interrupt_after:
            raise KeyboardInterrupt  # as Ctrl-C would, between two runs
        stored[-1] += 1
        return real_put(self, result)

    mp = pytest.MonkeyPatch()
    mp.setattr(RunStore, "put", counting_put)
    try:
        interrupt_after = INTERRUPT_AFTER
        stored.append(0)
        with pytest.raises(KeyboardInterrupt):
            reproduce(
                "mnist", "quick", out, seeds=1, runs_dir=str(runs_dir), data=data, quiet=True, workers=2
            )
        interrupt_after = None
        for _ in range(2):
            stored.append(0)
            assert (
                reproduce(
                    "mnist", "quick", out, seeds=1, runs_dir=str(runs_dir), data=data, quiet=True, workers=2
                )
                == 0
            )
    finally:
        mp.undo()
    where = [json.loads(p.read_text())["metadata"] for p in runs_dir.glob("*.json")]
    return out, runs_dir, stored, where


@pytest.mark.slow
def test_resume_retrains_nothing_finished(smoke):
    _, runs_dir, stored, _ = smoke
    assert stored == [INTERRUPT_AFTER, N_RUNS_ONE_SEED - INTERRUPT_AFTER, 0]
    assert len(list(runs_dir.glob("*.json"))) == N_RUNS_ONE_SEED


@pytest.mark.slow
def test_timed_runs_train_alone_and_the_rest_in_single_threaded_workers(smoke):
    *_, where = smoke
    assert sorted(m["trained_in"] for m in where) == sorted(
        ["main"] * N_TIMED_ONE_SEED + ["worker"] * (N_RUNS_ONE_SEED - N_TIMED_ONE_SEED)
    )
    assert all(m["intra_op_threads"] == 1 for m in where if m["trained_in"] == "worker")


@pytest.mark.slow
def test_every_artefact_is_produced_and_well_formed(smoke):
    out, *_ = smoke
    report = (out / "REPORT.md").read_text()
    results = json.loads((out / "results.json").read_text())
    assert (
        len(results["runs"]) == N_RUNS_ONE_SEED and results["seeds"] == [0] and results["workload"] == "mnist"
    )
    quick = {c.id: c for c in claims.claims_in(PLAN) if c.params_for(PLAN)}
    n_rows = sum(len(c.params_for(PLAN)) for c in quick.values())
    rows = [
        line
        for line in report.splitlines()
        if re.match(r"\| [a-z0-9-]+ \| ", line) and line.split("|")[1].strip() in claims.CLAIMS
    ]
    assert len(rows) == n_rows == len(results["verdicts"])
    for claim_id, claim in quick.items():
        for params in claim.params_for(PLAN):
            assert any(f"| {claim_id} |" in r and f"| {params} |" in r for r in rows), (claim_id, params)
    full_only = sorted(c for c in claims.CLAIMS if not claims.CLAIMS[c].applies(PLAN))
    assert full_only == ["baseline-adam", "effective-lr", "report-as-run", "report-within-1pt"]
    assert all(f"`{c}`" in report for c in full_only) and "full profile only" in report
    # No control is discriminating at one seed, and MNIST declares no accuracy-equivalence margin.
    assert sorted(set(claims.CLAIMS) - set(quick) - set(full_only)) == [
        "accuracy-equivalent",
        "negative-control",
    ]
    assert "none judged in this profile" in report
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == 7
    for png in pngs:
        image = matplotlib.image.imread(png)
        assert image.shape[0] > 200 and image.shape[1] > 300
        assert f"]({png.name})" in report
    assert "## The gradient noise scale" in report and "B / B_simple" in report


@pytest.mark.slow
def test_report_from_rebuilds_the_same_markdown(smoke, tmp_path):
    out, *_ = smoke
    assert main(["report", "--from", str(out), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "REPORT.md").read_text() == (out / "REPORT.md").read_text()


REBUILD_WITHOUT_TENSORFLOW = """
import sys
from reproduction.cli import main
assert main(["report", "--from", sys.argv[1], "--out", sys.argv[2]]) == 0
loaded = sorted(m for m in ("tensorflow", "keras") if m in sys.modules)
sys.exit(f"report --from imported {loaded}" if loaded else 0)
"""


@pytest.mark.slow
def test_report_from_needs_no_tensorflow(smoke, tmp_path):
    import subprocess
    import sys

    out, *_ = smoke
    done = subprocess.run(
        [sys.executable, "-c", REBUILD_WITHOUT_TENSORFLOW, str(out), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "REPORT.md").read_text() == (out / "REPORT.md").read_text()


def test_report_from_an_empty_directory_is_a_clear_error(tmp_path, capsys):
    assert main(["report", "--from", str(tmp_path)]) == 2
    assert "no results.json there" in capsys.readouterr().err


def test_tensorboard_scalars_are_written(tmp_path):
    from reproduction.config import RunConfig
    from reproduction.tensorboard_log import write_tensorboard
    from reproduction.training import EpochRecord, RunResult

    result = RunResult(
        RunConfig("sgd", "increase"),
        tuple(EpochRecord(e, 0.1, 100, 600, 1.0, 0.1, 0.5 - 0.1 * e, 0.4, 0.9 + 0.01 * e) for e in range(6)),
        {},
    )
    write_tensorboard(result, tmp_path)
    files = list((tmp_path / result.config.key()).glob("events.out.tfevents.*"))
    assert len(files) == 1 and files[0].stat().st_size > 0

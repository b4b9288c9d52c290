"""docs/your-model.md as written: the page shows tests/my_model.py as it is, and its command takes that
model, which the suite has never seen, through the claims to a report with verdicts."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PAGE = ROOT / "docs" / "your-model.md"
COMMAND = "reproduction reproduce --workload tests.my_model:workload --profile quick --seeds 2"


def _cli(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    code = "import sys; from reproduction.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )


def test_the_page_shows_the_module_as_it_is_and_the_command_a_test_runs():
    text = PAGE.read_text()
    shown = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    assert shown == (ROOT / "tests" / "my_model.py").read_text()
    assert COMMAND in text


@pytest.mark.slow
@pytest.mark.alone
def test_a_model_the_suite_never_saw_goes_through_the_claims_to_a_report_with_verdicts(tmp_path):
    """The page's command, from the project root, on the local Dask grid: the workers import the module
    themselves and load its data."""
    out, runs = tmp_path / "report", tmp_path / "runs"
    done = _cli(*COMMAND.split()[1:], "--out", str(out), "--runs-dir", str(runs))
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["workload"] == "tests.my_model:workload" and results["seeds"] == [0, 1]
    judged = {v["claim"] for v in results["verdicts"]}
    assert {"accuracy-within-1pt", "train-loss-equivalent", "fewer-updates", "schedule-applied"} <= judged
    exact = [v for v in results["verdicts"] if v["claim"] in ("fewer-updates", "schedule-applied")]
    assert exact and all(v["verdict"] == "holds" for v in exact), exact  # counts and read-backs: no noise
    records = results["runs"]
    assert {r["metadata"]["model"] for r in records} == {"my_model"}
    assert any(r["metadata"].get("trained_in") == "worker" for r in records)  # the user's data on workers
    assert all(r["key"].startswith("tests-my_model-workload-") for r in records)
    assert "`my_model` from the workload's build_model, 1994 parameters" in (out / "REPORT.md").read_text()


def test_a_model_the_engine_cannot_train_is_one_line_before_any_run(tmp_path):
    """A model whose output has the wrong width, for runs bound for the workers: exit status 2, one line
    that names the workload and the problem, and nothing in the store."""
    (tmp_path / "bad_model.py").write_text(
        "import dataclasses, keras\n"
        "from reproduction.workloads import get_workload\n"
        "def build(seed):\n"
        "    return keras.Sequential([keras.Input(shape=(16,)), keras.layers.Dense(3)])\n"
        "def workload():\n"
        "    return dataclasses.replace(get_workload('tests.my_model:workload'), build_model=build)\n"
    )
    runs = tmp_path / "runs"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    code = "import sys; from reproduction.cli import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run(
        [sys.executable, "-c", code, "calibrate", "--workload", "bad_model:workload", "--seeds", "2"]
        + ["--workers", "2", "--runs-dir", str(runs), "--out", str(tmp_path / "margins.json")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert (
        "workload 'bad_model:workload': build_model(0): model output shape (None, 3), expected (None, 10)"
        in last
    )
    assert not list(runs.glob("*.json"))


def test_a_users_function_that_raises_or_exits_is_one_line_naming_the_call():
    """A bug in the user's build_model or load_data, or a workload function that calls sys.exit, is refused
    as bad input (UsageError: one line, exit status 2), not a traceback into this package or a silent 0."""
    from reproduction import data, training
    from reproduction.config import RunConfig
    from reproduction.errors import UsageError
    from reproduction.workloads import get_workload

    name = "tests.my_model_variants:raising_workload"
    with pytest.raises(UsageError, match=r"build_model\(0\) failed: RuntimeError: boom"):
        training.check_models([RunConfig(workload=name)], training_arrays())
    with pytest.raises(UsageError, match=r"load_data\(\) failed: RuntimeError: boom"):
        data._dataset("my-data", None, name)
    with pytest.raises(UsageError, match=r"exiting_workload\(\) failed: SystemExit"):
        get_workload("tests.my_model_variants:exiting_workload")


def training_arrays():
    import numpy as np

    x, y = np.zeros((20, 16), np.float32), np.arange(20, dtype=np.int32) % 10
    return x, y, x, y


def test_the_packages_own_workload_functions_keep_their_tracebacks(monkeypatch):
    """call_user turns a user's failure into one line; a failure in the package's own code is a bug, and
    keeps its exception."""
    from reproduction.workloads import call_user

    def broken(seed):
        raise RuntimeError("a bug")

    monkeypatch.setattr(broken, "__module__", "reproduction.workloads.cifar10")
    with pytest.raises(RuntimeError, match="a bug"):
        call_user(broken, "workload 'cifar10': build_model(0)", 0)

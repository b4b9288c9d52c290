"""The result schema reads and writes without TensorFlow."""

from __future__ import annotations

import subprocess
import sys

import pytest

from reproduction.config import RunConfig
from reproduction.results import EpochRecord, RunResult

NO_TENSORFLOW = """
import sys
import reproduction.report, reproduction.store, reproduction.claims, reproduction.results, reproduction.cli
loaded = sorted(m for m in ("tensorflow", "keras") if m in sys.modules)
print(loaded)
sys.exit(1 if loaded else 0)
"""


def test_the_report_the_store_and_the_claims_import_no_tensorflow():
    out = subprocess.run([sys.executable, "-c", NO_TENSORFLOW], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_run_result_json_round_trip():
    config = RunConfig("momentum", "hybrid", 3)
    result = RunResult(
        config,
        (
            EpochRecord(
                0,
                0.03,
                100,
                600,
                1.5,
                0.2,
                0.3,
                0.2,
                0.95,
                momentum=0.9,
                applied_lr_min=0.03,
                applied_lr_max=0.03,
                applied_momentum=0.9,
                applied_batch_min=100,
                applied_batch_max=100,
                applied_examples=60_000,
            ),
        ),
        {"cpu": "x"},
    )
    data = result.to_dict()
    assert data["key"] == config.key() and data["totals"]["parameter_updates"] == 600
    assert RunResult.from_dict(data) == result


def test_a_record_with_unknown_fields_is_refused():
    data = RunResult(RunConfig(), (EpochRecord(0, 0.1, 100, 600, 1.0, 0.1, 0.1, 0.1, 0.9),), {}).to_dict()
    data["epochs"][0]["surprise"] = 1
    with pytest.raises(ValueError, match=r"epochs\[0\]: unknown fields \['surprise'\]"):
        RunResult.from_dict(data)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.update(epochs=5), "field 'epochs' must be a list"),
        (lambda d: d.update(epochs=[]), "field 'epochs' is empty"),
        (lambda d: d.pop("config"), "field 'config' must be a dict"),
        (lambda d: d["epochs"][0].update(steps=1.5), r"epochs\[0\].steps=1.5: expected an integer"),
        (
            lambda d: d["epochs"][0].update(train_loss="low"),
            r"epochs\[0\].train_loss='low': expected a number",
        ),
        (lambda d: d["epochs"][0].update(steps=True), r"epochs\[0\].steps=True: expected an integer"),
        (lambda d: d["epochs"][0].pop("steps"), r"epochs\[0\]: .*missing .*steps"),
        (lambda d: d["config"].update(optimizer="lbfgs"), "optimizer='lbfgs': unknown"),
    ],
    ids=[
        "epochs-not-list",
        "no-epochs",
        "no-config",
        "float-steps",
        "string-loss",
        "bool-steps",
        "missing-field",
        "bad-optimizer",
    ],
)
def test_a_malformed_run_is_refused_naming_the_field(mutate, message):
    data = RunResult(RunConfig(), (EpochRecord(0, 0.1, 100, 600, 1.0, 0.1, 0.1, 0.1, 0.9),), {}).to_dict()
    mutate(data)
    with pytest.raises(ValueError, match=message):
        RunResult.from_dict(data)

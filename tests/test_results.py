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


def test_the_report_names_every_machine_and_thread_setting_its_runs_came_from():
    """Bits repeat only on a CPU of the same kind: a report whose runs came from two says which and how
    many; on one CPU it names it once, with each thread setting's count; an unrecorded count shows '?'."""
    from support import make_run

    from reproduction.report import machines_line

    def run(seed, cpu, inter):
        meta = {"cpu": cpu, "cpu_count": 2, "intra_op_threads": 1, "inter_op_threads": inter}
        config = RunConfig("sgd", "decay", seed=seed)
        return config, make_run(config, 0.97, 0.05, metadata=meta)

    one = dict(run(k, "AMD EPYC", 2) for k in range(3))
    assert machines_line(one) == "Machine: AMD EPYC, 2 cores, TensorFlow threads intra 1 / inter 2"
    mixed = dict(
        [run(0, "AMD EPYC", 2), run(1, "AMD EPYC", 1), run(2, "Intel Xeon", 0), run(3, "Intel Xeon", 0)]
    )
    assert machines_line(mixed) == (
        "Machines: AMD EPYC, 2 cores, TensorFlow threads intra 1 / inter 2 (1 run), intra 1 / inter 1 "
        "(1 run); Intel Xeon, 2 cores, TensorFlow threads intra 1 / inter ? (2 runs)"
    )


def test_the_report_says_whether_the_timed_blocks_trained_interleaved():
    """Runs of code version 6 interleave each timed block's epochs; a store may still hold timed runs that
    trained back to back, and the report says how many of each."""
    from support import make_run, plan_with_seeds

    from reproduction import claims
    from reproduction.report import _interleaved

    plan = plan_with_seeds(seeds=2)
    timed = claims.main_grid(plan, plan.timed_seeds)
    runs = {c: make_run(c, 0.97, 0.05, metadata={"timed_block": [c.key()]}) for c in timed}
    assert _interleaved(plan, runs) == ", each block's epochs interleaved"
    runs[timed[0]] = make_run(timed[0], 0.97, 0.05)
    n = len(timed)
    assert _interleaved(plan, runs) == (
        f" ({n - 1} of {n} runs with their block's epochs interleaved, the rest back to back)"
    )

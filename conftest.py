"""Suite-wide pytest configuration: hypothesis profiles and the options the claims read."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before anything imports TensorFlow
# runs train on one intra-op thread; inter-op threads: one per core (training.configure_threads)
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
from hypothesis import HealthCheck, settings  # noqa: E402

import reproduction  # noqa: E402,F401  (sets TensorFlow's environment before anything imports it)

# dev: random exploration, local example database. ci: derandomized, no database, so a red CI is
# reproducible from its log alone.
settings.register_profile("dev", max_examples=50, deadline=None)
settings.register_profile(
    "ci",
    max_examples=50,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def pytest_addoption(parser):
    group = parser.getgroup("reproduction")
    group.addoption(
        "--workload",
        default=os.environ.get("REPRODUCTION_WORKLOAD", "mnist"),
        help="the workload whose claims run (reproduction/workloads/; default mnist); env "
        "REPRODUCTION_WORKLOAD",
    )
    group.addoption(
        "--profile",
        choices=["quick", "full"],
        default=os.environ.get("REPRODUCTION_PROFILE", "quick"),
        help="claims profile: quick (CI default) or full; each workload sets its seeds (docs/commands.md); "
        "env REPRODUCTION_PROFILE",
    )
    group.addoption(
        "--runs-dir",
        default=None,
        help="run store for the claims (default: $REPRODUCTION_RUNS_DIR or ./runs)",
    )
    group.addoption("--fresh-runs", action="store_true", help="retrain runs even if the store has them")
    group.addoption(
        "--scheduler",
        default=os.environ.get("REPRODUCTION_SCHEDULER") or None,
        help="Dask scheduler address (tcp:// or tls://HOST:PORT) for the claims' runs; default: "
        "$REPRODUCTION_SCHEDULER, else a LocalCluster on 127.0.0.1 (reproduction/cluster.py)",
    )

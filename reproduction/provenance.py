"""Provenance of a run: code version, git commit, package versions, CPU, threads, when it finished. Kept apart
from the engine and from the results (results.py keeps it as the run's ``metadata`` dict)."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from reproduction.config import CODE_VERSION


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or ""


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_state() -> tuple[str | None, bool | None]:
    """(commit, has uncommitted changes to tracked files), or (None, None) outside a git checkout."""
    commit = _git("rev-parse", "HEAD") or None
    if commit is None:
        return None, None
    return commit, bool(_git("status", "--porcelain", "--untracked-files=no"))


def metadata() -> dict[str, Any]:
    import keras
    import numpy as np
    import tensorflow as tf

    commit, dirty = git_state()
    return {
        "code_version": CODE_VERSION,
        "git_commit": commit,
        "git_dirty": dirty,
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads()
        or int(os.environ.get("TF_NUM_INTRAOP_THREADS", 0)),  # 0: TensorFlow's default, every core
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads()
        or int(os.environ.get("TF_NUM_INTEROP_THREADS", 0)),  # 0: TensorFlow's default, one per core
        "op_determinism": True,
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
        "trained_in": "main",  # or "worker" (reproduction/cluster.py)
        "finished_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }

"""RunStore: a directory of run JSON files keyed by RunConfig.key() (config hash + code version).

Writes are atomic, so a killed run leaves either nothing or a whole file; a file that does not parse
is treated as absent (and retrained), never as a result. Several processes may share a store: a process
claims a run before training it (``RunLocks``, an advisory lock per run under ``.locks/``, released by the
operating system if the process dies), so two jobs on one store split the work instead of training a run
twice.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from reproduction.atomic import atomic_write_json
from reproduction.config import RunConfig
from reproduction.results import RunResult


def default_runs_dir() -> Path:
    return Path(os.environ.get("REPRODUCTION_RUNS_DIR", "runs"))


def _follows_schedule(result: RunResult) -> bool:
    """The recorded learning rates and batch sizes are the ones the config's schedule gives now."""
    phases = result.config.build_schedule().per_epoch()
    return len(phases) == len(result.epochs) and all(
        abs(p.learning_rate - e.learning_rate) <= 1e-12 * p.learning_rate and p.batch_size == e.batch_size
        for p, e in zip(phases, result.epochs, strict=True)
    )


class RunStore:
    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else default_runs_dir()

    def path(self, config: RunConfig) -> Path:
        return self.root / f"{config.key()}.json"

    def get(self, config: RunConfig) -> RunResult | None:
        path = self.path(config)
        if not path.is_file():
            return None
        try:
            result = RunResult.from_dict(json.loads(path.read_text()))
        except (ValueError, KeyError, TypeError) as exc:
            print(f"run store: ignoring unreadable {path} ({exc})", file=sys.stderr)
            return None
        if result.config != config or not _follows_schedule(result):
            return None  # another config or a stale run: retrain rather than trust it
        return result

    def put(self, result: RunResult) -> Path:
        path = self.path(result.config)
        atomic_write_json(path, result.to_dict())
        return path

    def locks(self) -> RunLocks:
        return RunLocks(self.root / ".locks")

    def all(self) -> list[RunResult]:
        results = []
        for path in sorted(self.root.glob("*.json")):
            try:
                results.append(RunResult.from_dict(json.loads(path.read_text())))
            except (ValueError, KeyError, TypeError):
                continue
        return results


class RunLocks:
    """One advisory lock per run (``flock`` on ``<key>.lock``): held while this process trains the run, so
    another process sharing the store waits for the result instead of training it again. Without ``fcntl``
    (Windows) every claim succeeds: no sharing protection there."""

    def __init__(self, directory: Path):
        self.directory = directory
        self._held: dict[str, int] = {}

    def claim(self, config: RunConfig, wait: bool = False) -> bool:
        """Hold the run's lock: at once (False if another process holds it), or after waiting for it."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            return True
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory / f"{config.key()}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return False
        self._held[config.key()] = fd
        return True

    def release(self, config: RunConfig) -> None:
        fd = self._held.pop(config.key(), None)
        if fd is not None:
            os.close(fd)  # closing releases the flock

    def release_all(self) -> None:
        for fd in self._held.values():
            os.close(fd)
        self._held.clear()

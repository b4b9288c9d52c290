"""Atomic file writes: a reader sees the old file or the whole new one, never a torn write."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reproduction.errors import UsageError


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; results and cache are meant to be shared
        os.replace(tmp, path)  # atomic on POSIX within one file system
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode())


def ensure_file_target(path: str | os.PathLike, flag: str) -> Path:
    """A file can be written at ``path`` (not a directory; its directory there or creatable); UsageError
    naming the option otherwise, before any work starts. Creates nothing: the write makes the directory."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{flag} {path}: a directory; expected the path of a file to write")
    check_directory(path.parent, flag)
    return path


def check_directory(path: str | os.PathLike, flag: str) -> Path:
    """``path`` is a directory a file can be written in, or can be made one; UsageError naming the option
    otherwise. Creates nothing (a probe file in the nearest existing ancestor comes and goes)."""

    def nearest_existing() -> Path:
        existing = Path(path)
        while not existing.exists() and existing.parent != existing:
            existing = existing.parent
        if not existing.is_dir():
            raise NotADirectoryError(20, "Not a directory", str(existing))
        return existing

    return _writable(Path(path), flag, nearest_existing)


def ensure_directory(path: str | os.PathLike, flag: str) -> Path:
    """Create ``path`` (and its parents) and check that a file can be written there; UsageError naming the
    option (``flag``, e.g. '--runs-dir') otherwise, before any work starts."""

    def made() -> Path:
        Path(path).mkdir(parents=True, exist_ok=True)
        return Path(path)

    return _writable(Path(path), flag, made)


def _writable(path: Path, flag: str, directory: Callable[[], Path]) -> Path:
    """``path``, once a probe file came and went in ``directory()``; any OSError is a UsageError."""
    try:
        with tempfile.NamedTemporaryFile(dir=directory(), prefix=".write-check-"):
            pass
    except OSError as exc:
        raise UsageError(
            f"{flag} {path}: not a writable directory ({type(exc).__name__}: {exc.strerror or exc})"
        ) from None
    return path

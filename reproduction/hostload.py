"""Was a timed run alone on the machine? The CPU time other processes used while it trained.

On Linux, /proc/stat gives the machine's busy CPU time (user, nice, system, irq, softirq; not idle, iowait or
steal) and ``time.process_time`` this process's own; their difference over the run, divided by its wall
time, is how many cores others kept busy meanwhile. Steal time (other virtual machines on the same host)
is recorded apart: nothing here can prevent it. Elsewhere only the load average is recorded, and
``other_cores`` is None (the timing claims then cannot check the run, and say so).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
MAX_OTHER_LOAD = 0.25  # cores other processes may have used, on average, while a timed run trained
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_seconds() -> tuple[float, float] | None:
    """(busy, steal) seconds of every CPU since boot, or None without /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq) / _TICKS, steal / _TICKS


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _loadavg() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def measured(fn: Callable[[], T]) -> tuple[T, dict[str, Any]]:
    """fn(), and the host's load while it ran: other_cores (None where not measurable), own_cores,
    steal_cores, and the 1-minute load average at start and end."""
    start_cpu, start_own, start_wall, load_start = (
        _cpu_seconds(),
        time.process_time(),
        time.perf_counter(),
        _loadavg(),
    )
    value = fn()
    end_cpu, own, wall = _cpu_seconds(), time.process_time() - start_own, time.perf_counter() - start_wall
    record: dict[str, Any] = {
        "wall_seconds": wall,
        "own_cores": own / wall,
        "loadavg_start": load_start,
        "loadavg_end": _loadavg(),
        "other_cores": None,
        "steal_cores": None,
    }
    if start_cpu is not None and end_cpu is not None:
        busy, steal = end_cpu[0] - start_cpu[0], end_cpu[1] - start_cpu[1]
        record.update(other_cores=max(0.0, busy - own) / wall, steal_cores=steal / wall)
    return value, record


def combined(records: list[dict[str, Any]]) -> dict[str, Any]:
    """One host-load record for a run measured in slices (its epochs, interleaved with other runs'): cores
    averaged over the slices' wall time, the load average at the first slice's start and the last's end."""
    wall = sum(r["wall_seconds"] for r in records)

    def mean(field):
        if any(r[field] is None for r in records):
            return None
        return sum(r[field] * r["wall_seconds"] for r in records) / wall

    return {
        "wall_seconds": wall,
        "own_cores": mean("own_cores"),
        "loadavg_start": records[0]["loadavg_start"],
        "loadavg_end": records[-1]["loadavg_end"],
        "other_cores": mean("other_cores"),
        "steal_cores": mean("steal_cores"),
    }


def alone(record: dict[str, Any] | None) -> bool:
    """A host-load record of a run that had the machine to itself (at most MAX_OTHER_LOAD other cores)."""
    other = (record or {}).get("other_cores")
    return other is not None and other <= MAX_OTHER_LOAD

"""The host-load record of a run measured in slices (a timed block's interleaved epochs)."""

from __future__ import annotations

import pytest

from reproduction.hostload import alone, combined


def slice_(wall, other, own=1.0, steal=0.0, load=(0.5, 0.7)):
    return {
        "wall_seconds": wall,
        "own_cores": own,
        "other_cores": other,
        "steal_cores": steal,
        "loadavg_start": load[0],
        "loadavg_end": load[1],
    }


def test_slices_combine_weighted_by_their_wall_time():
    record = combined(
        [slice_(3.0, 0.0, steal=0.4, load=(0.1, 0.2)), slice_(1.0, 0.8, own=2.0, load=(0.3, 0.9))]
    )
    assert record["wall_seconds"] == 4.0
    assert record["other_cores"] == pytest.approx(0.2) and record["own_cores"] == pytest.approx(1.25)
    assert record["steal_cores"] == pytest.approx(0.3)
    assert (record["loadavg_start"], record["loadavg_end"]) == (0.1, 0.9)
    assert alone(record) and not alone(combined([slice_(1.0, 0.0), slice_(1.0, 0.6)]))


def test_one_unmeasured_slice_leaves_the_run_unmeasured():
    record = combined([slice_(1.0, 0.0), slice_(1.0, None)])
    assert record["other_cores"] is None and not alone(record)

"""The command line: clear errors that name the field, before any data is loaded or anything trained."""

from __future__ import annotations

import re

import pytest

from reproduction.cli import main


def test_run_refuses_a_bad_learning_rate(capsys):
    assert main(["run", "--optimizer", "sgd", "--lr", "-1"]) == 2
    assert "base_lr=-1.0: expected None or a number > 0" in capsys.readouterr().err


def test_unknown_schedule_lists_the_choices(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "--schedule", "cosine"])
    assert exc.value.code == 2
    assert "choose from 'constant', 'decay', 'hybrid', 'increase'" in capsys.readouterr().err


def test_fetch_data_from_an_empty_directory_names_what_it_expected(tmp_path, capsys):
    assert main(["fetch-data", "--data-dir", str(tmp_path)]) == 2
    assert "expected the four IDX files" in capsys.readouterr().err


def test_reproduce_refuses_zero_seeds(capsys):
    with pytest.raises(SystemExit):
        main(["reproduce", "--seeds", "0"])
    assert "expected a positive integer" in capsys.readouterr().err


def test_run_from_the_store_prints_the_epoch_table(tmp_path, capsys, monkeypatch):
    """A stored run is served without training, and the table has a row per epoch."""
    from reproduction import data
    from reproduction.config import RunConfig
    from reproduction.store import RunStore
    from reproduction.training import EpochRecord, RunResult

    config = RunConfig("sgd", "increase", seed=0)
    schedule = config.build_schedule()
    records = tuple(
        EpochRecord(e, p.learning_rate, p.batch_size, 60_000 // p.batch_size, 1.0, 0.1, 0.1, 0.1, 0.97)
        for e, p in enumerate(schedule.per_epoch())
    )
    RunStore(tmp_path).put(RunResult(config, records, {}))

    def never(self):
        raise AssertionError("nothing trains, so no data is loaded")

    monkeypatch.setattr(data.DatasetSource, "load", never)
    assert (
        main(
            [
                "run",
                "--optimizer",
                "sgd",
                "--schedule",
                "increase",
                "--seed",
                "0",
                "--runs-dir",
                str(tmp_path),
                "--quiet",
                "--out",
                str(tmp_path / "out.json"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if re.match(r"\s+\d+\s+0\.1\s+\d+", line)]
    assert "from the store" in out and len(rows) == 6 and (tmp_path / "out.json").is_file()
    assert [int(r.split()[2]) for r in rows] == [100, 100, 500, 500, 2500, 2500]


def test_run_refuses_replicas_without_the_mirrored_strategy(capsys):
    assert main(["run", "--replicas", "2"]) == 2
    assert "replicas=2: only the 'mirrored' strategy takes a number of replicas" in capsys.readouterr().err

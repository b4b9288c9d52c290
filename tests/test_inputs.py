"""Every input file is validated with a clear error: malformed documents (wrong types, missing fields,
truncated bytes, non-UTF-8) fed to each loader and to the command line end in one line naming the file or the
field, exit status 2, no traceback, and nothing written."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reproduction import calibration
from reproduction.cli import main
from reproduction.config import RunConfig
from reproduction.errors import UsageError
from reproduction.report import load_results
from reproduction.results import EpochRecord, RunResult
from reproduction.workloads import get_workload

RUN = RunResult(
    RunConfig(), (EpochRecord(0, 0.1, 100, 600, 1.0, 0.1, 0.2, 0.2, 0.95),), {"n_train": 60000}
).to_dict()
RESULTS = {
    "workload": "mnist",
    "profile": "quick",
    "seeds": [0],
    "timed_seeds": [0],
    "runs": [RUN],
    "verdicts": [],
}
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def _paths(doc, prefix=()):
    """Every path to a value inside a JSON document."""
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, (*prefix, i))


def _mutated(doc, data):
    """``doc`` with one value replaced by an arbitrary JSON value, or one key removed."""
    doc = copy.deepcopy(doc)
    path = data.draw(st.sampled_from([p for p in _paths(doc) if p]))
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    if isinstance(parent, dict) and data.draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(json_values)
    return doc


def _assert_one_line_error(capsys, code, *names):
    err = capsys.readouterr().err.strip()
    assert (
        code == 2 and err.startswith("error: ") and "Traceback" not in err and len(err.splitlines()) == 1
    ), err
    assert all(name in err for name in names), err


@given(data=st.data())
@settings(max_examples=150, deadline=None)
def test_a_malformed_run_record_is_refused_naming_the_field(data):
    doc = _mutated(RUN, data)
    try:
        result = RunResult.from_dict(doc)
    except UsageError as exc:
        assert "\n" not in str(exc) and str(exc)
        return
    assert isinstance(result, RunResult)  # what still parses is a well-formed run (e.g. metadata changed)
    assert all(isinstance(e.steps, int) and isinstance(e.train_loss, float | int) for e in result.epochs)


@given(data=st.data())
@settings(max_examples=100, deadline=None)
def test_a_malformed_preregistration_file_is_refused(data):
    content = dict(json.loads(get_workload("mnist").preregistration.read_text()))
    content["code_version"] = calibration.CODE_VERSION
    doc = _mutated({"optimizers": content["optimizers"]}, data)
    try:
        calibration.load_margins({**content, **doc}, get_workload("mnist"))
    except UsageError as exc:
        assert "\n" not in str(exc)


@given(data=st.data())
@settings(max_examples=60, deadline=None)
def test_report_from_a_malformed_results_file_is_one_line_and_writes_nothing(data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("from")
    (folder / "results.json").write_text(json.dumps(_mutated(RESULTS, data)))
    try:
        load_results(folder)
    except UsageError as exc:
        assert "\n" not in str(exc) and "results.json" in str(exc)
    assert sorted(p.name for p in folder.iterdir()) == ["results.json"]


@pytest.mark.parametrize(
    "content, names",
    [
        (b'{"runs": 5}', ["results.json", "'runs'"]),
        (b"{'runs': []}", ["results.json", "not valid JSON"]),
        (
            b'{"runs": [], "verdicts": [], "seeds": [0], "profile": "quick"',
            ["results.json", "not valid JSON"],
        ),
        (b"\xff\xfe\x00", ["results.json", "not valid JSON"]),
        (json.dumps(dict(RESULTS, profile="medium")).encode(), ["profile", "'medium'"]),
        (json.dumps(dict(RESULTS, workload="cifar")).encode(), ["workload", "'cifar'"]),
        (json.dumps(dict(RESULTS, seeds=[3])).encode(), ["seeds [3]"]),
        (
            json.dumps(dict(RESULTS, runs=[{**RUN, "epochs": [{"epoch": "0"}]}])).encode(),
            ["runs[0]", "epoch"],
        ),
    ],
    ids=[
        "runs-not-a-list",
        "python-not-json",
        "truncated",
        "not-utf8",
        "profile",
        "workload",
        "seeds",
        "epoch",
    ],
)
def test_report_from_refuses_bad_results_with_one_line(tmp_path, capsys, content, names):
    (tmp_path / "results.json").write_bytes(content)
    _assert_one_line_error(capsys, main(["report", "--from", str(tmp_path)]), *names)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]  # no report, no figure


@pytest.mark.parametrize("flag", ["--runs-dir", "--out"])
@pytest.mark.parametrize("where", ["below-a-file", "/proc/nope"])
def test_directories_are_checked_before_any_training(tmp_path, capsys, flag, where):
    """Refused before any data is loaded or any run trains (the data are not even fetched)."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    target = str(blocker / "below") if where == "below-a-file" else where
    args = {"--runs-dir": str(tmp_path / "runs"), "--out": str(tmp_path / "out"), flag: target}
    code = main(
        ["reproduce", "--runs-dir", args["--runs-dir"], "--out", args["--out"], "--data-dir", "/nonexistent"]
    )
    _assert_one_line_error(capsys, code, flag, "not a writable directory")


@pytest.mark.parametrize("command", ["run", "calibrate"])
@pytest.mark.parametrize("where", ["a-directory", "below-a-file"])
def test_an_output_file_is_checked_before_any_training(tmp_path, capsys, command, where):
    """run --out and calibrate --out are written after training: a path that cannot take the file is
    refused first (the data are not even loaded)."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    out = str(tmp_path) if where == "a-directory" else str(blocker / "run.json")
    argv = [command, "--out", out, "--runs-dir", str(tmp_path / "runs"), "--data-dir", "/nonexistent"]
    code = main(argv + (["--optimizer", "sgd"] if command == "run" else []))
    _assert_one_line_error(capsys, code, "--out")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.parametrize("problem", ["missing-readme", "readme-without-block", "out-below-a-file"])
def test_report_checks_its_outputs_before_writing_anything(tmp_path, capsys, problem):
    """A README that cannot be read or has no block for the workload, or an --out that is no directory:
    one line, and the report directory untouched (it used to be rewritten before the README failed)."""
    source = tmp_path / "from"
    source.mkdir()
    (source / "results.json").write_text(json.dumps(RESULTS))
    (tmp_path / "plain.md").write_text("# no headline block here\n")
    (tmp_path / "file").write_text("not a directory")
    extra = {
        "missing-readme": ["--readme", str(tmp_path / "nope.md")],
        "readme-without-block": ["--readme", str(tmp_path / "plain.md")],
        "out-below-a-file": ["--out", str(tmp_path / "file" / "report")],
    }[problem]
    code = main(["report", "--from", str(source), *extra])
    _assert_one_line_error(capsys, code, "--readme" if "readme" in problem else "--out")
    assert sorted(p.name for p in source.iterdir()) == ["results.json"]
    assert (tmp_path / "plain.md").read_text() == "# no headline block here\n"


def test_report_from_results_without_a_run_the_claims_read_is_one_line_and_writes_nothing(tmp_path, capsys):
    """A results.json that lost a run (edited, or from another plan) used to end in a KeyError traceback after
    the --out directory was made."""
    source, out = tmp_path / "from", tmp_path / "new" / "report"
    source.mkdir()
    (source / "results.json").write_text(json.dumps(RESULTS))  # one run of the dozens the claims read
    code = main(["report", "--from", str(source), "--out", str(out)])
    _assert_one_line_error(capsys, code, "results.json", "run(s) the claims read are missing")
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize(
    "argv, names",
    [
        (["run", "--lr", "-1", "--out", "{tmp}/out/run.json"], ["base_lr=-1"]),
        (["launch", "--workers", "2", "--", "run", "--lr", "-1"], ["base_lr=-1"]),
        (["run", "--seed", "99999999999"], ["seed=99999999999", "2147483647"]),
        (["run", "--base-batch", "60001"], ["base_batch=60001", "exceeds the 60000 examples"]),
        (["run", "--train-examples", "50"], ["train_examples=50", "batch size 2500 exceeds the 50 examples"]),
        (["run", "--train-examples", "70000"], ["train_examples=70000", "has 60000"]),
        (["anneal", "--optimizer", "sgd", "--lr", "0.1", "--batch", "60001"], ["base_batch=60001"]),
        (["launch", "--workers", "3", "--", "run"], ["launch --workers 3", "batch 100", "replicas=3"]),
        (["run", "--lr", "1e-320"], ["base_lr=1e-320", "float32's normal range"]),  # trained at rate 0
        (["run", "--schedule", "decay", "--lr", "2e-38"], ["base_lr=2e-38", "8e-40"]),  # eps/25 subnormal
        (["run", "--lr", "1e39"], ["base_lr=1e+39", "float32's normal range"]),
    ],
    ids=[
        "run-out",
        "launch",
        "seed",
        "batch",
        "few-examples",
        "many-examples",
        "anneal",
        "launch-split",
        "lr-rounds-to-0",
        "decayed-lr-subnormal",
        "lr-rounds-to-inf",
    ],
)
def test_a_bad_run_option_is_one_line_before_the_store_the_data_or_any_training(
    tmp_path, capsys, argv, names
):
    """Checked on the config (reproduction.config.RunConfig.check_fits): these once failed inside training,
    after the store, a lock and the data, and out of a worker as a failed run; no directory is made."""
    store = ["--runs-dir", str(tmp_path / "runs"), "--data-dir", str(tmp_path / "data")]
    code = main([a.replace("{tmp}", str(tmp_path)) for a in argv] + store)
    _assert_one_line_error(capsys, code, *names)
    assert list(tmp_path.iterdir()) == []


def test_a_launch_worker_dir_that_is_a_file_is_one_line_before_the_store_or_the_data(tmp_path, capsys):
    """It once ended in FileExistsError's traceback, after the store was made and the data loaded."""
    (tmp_path / "afile").write_text("")
    argv = ["launch", "--workers", "2", "--worker-dir", str(tmp_path / "afile" / "w"), "--", "run"]
    code = main(argv + ["--runs-dir", str(tmp_path / "runs"), "--data-dir", str(tmp_path / "data")])
    _assert_one_line_error(capsys, code, "--worker-dir")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


@pytest.mark.parametrize(
    "argv",
    [
        ["reproduce", "--seeds", "1001"],  # would judge calibration seed 1000
        ["calibrate", "--seeds", "1001"],  # would reach search seed 2000
        ["anneal", "--optimizer", "sgd", "--lr", "0.1", "--seeds", "1001"],  # tuning seed 3000
        ["tune", "--optimizer", "sgd", "--grid", "0.1", "--seeds", "100000000"],  # built every config first
    ],
    ids=["reproduce", "calibrate", "anneal", "tune"],
)
def test_a_seed_count_that_reaches_another_purposes_seeds_is_one_line(tmp_path, capsys, argv):
    store = ["--runs-dir", str(tmp_path / "runs"), "--data-dir", str(tmp_path / "data")]
    out = ["--out", str(tmp_path / "out")] if argv[0] in ("reproduce", "calibrate") else []
    code = main(argv + store + out)
    _assert_one_line_error(capsys, code, "seeds=", "from 1 to 1000", "never shared")
    assert list(tmp_path.iterdir()) == []


def test_calibrate_needs_two_seeds_before_anything_is_made(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["calibrate", "--seeds", "1", "--out", str(tmp_path / "d" / "m.json")])
    assert exit_.value.code == 2 and "expected an integer >= 2" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_the_store_reads_a_corrupt_file_as_absent(tmp_path):
    """The store's own files: a torn or tampered file is ignored (and its run retrained), never an error."""
    from reproduction.store import RunStore

    config = RunConfig("sgd", "increase", 0)
    store = RunStore(tmp_path)
    for content in (b'{"config": {"optimizer": "sg', b"\xff\xff", json.dumps({**RUN, "epochs": 3}).encode()):
        store.path(config).write_bytes(content)
        assert store.get(config) is None

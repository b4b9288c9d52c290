"""Command line: ``reproduction fetch-data | run | launch | tune | calibrate | anneal | reproduce | report``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from reproduction import data as data_mod
from reproduction.cluster import RunFailed
from reproduction.launch import LaunchFailed

EPOCH_HEADER = (
    f"{'epoch':>5} {'lr':>9} {'batch':>6} {'steps':>6} {'train s':>8} {'eval s':>7} "
    f"{'train loss':>10} {'test loss':>9} {'test acc':>8} {'B_simple':>8}"
)


def format_epoch(e) -> str:
    return (
        f"{e.epoch:>5} {e.learning_rate:>9.5g} {e.batch_size:>6} {e.steps:>6} {e.train_seconds:>8.2f} "
        f"{e.eval_seconds:>7.2f} {e.train_loss:>10.4f} {e.test_loss:>9.4f} {100 * e.test_accuracy:>7.2f}% "
        f"{e.b_simple:>8.0f}"
    )


def cmd_fetch_data(args) -> int:
    mnist = data_mod.load_mnist(args.data_dir)
    print(f"MNIST verified, from {mnist.source}")
    for spec in data_mod.SPECS:
        print(
            f"  {spec.filename:<26} {str(getattr(mnist, spec.key).shape):<16} sha256(payload) "
            f"{spec.payload_sha256}"
        )
    print(f"cache: {data_mod.cache_dir()}")
    return 0


def _load_data(args):
    return data_mod.load_mnist(args.data_dir).preprocessed()


def _train_one(config, data, store, fresh=False, quiet=False, strategy=None):
    """(result, trained_now) through the same path as the main job (store, progress bar, atomic write)."""
    from reproduction.runner import run_all

    outcome = run_all(
        [config], data, store, fresh=fresh, quiet=quiet, say=lambda text: None, strategy=strategy
    )
    return outcome.runs[config], config in outcome.trained


def _run_config(args, strategy: str = "default", replicas: int = 1):
    from reproduction.config import RunConfig

    return RunConfig(
        optimizer=args.optimizer,
        schedule=args.schedule,
        seed=args.seed,
        base_lr=args.lr,
        train_examples=args.train_examples,
        strategy=strategy,
        replicas=replicas,
    )


def cmd_run(args) -> int:
    from reproduction.distribute import check_strategy, is_chief, make_strategy
    from reproduction.store import RunStore

    check_strategy(args.strategy, args.replicas)  # before TensorFlow starts
    # first: a strategy sets up TensorFlow's devices (and a worker's server) before anything else runs
    strategy = make_strategy(args.strategy, args.replicas) if args.strategy != "default" else None
    config = _run_config(args, args.strategy, strategy.num_replicas_in_sync if strategy is not None else 1)
    store = RunStore(args.runs_dir)
    if args.strategy == "multi-worker":  # every worker must take part, so none may take the run from a store
        from reproduction.training import Trainer

        progress = (
            None if args.quiet else lambda e: print(f"epoch {e.epoch} trained", flush=True)
        )  # in its log
        result = Trainer(_load_data(args), strategy=strategy).train(config, on_epoch=progress)
        chief = is_chief(strategy)
        if chief:
            store.put(result)
        print(
            f"trained as {'the chief' if chief else 'a worker'} of {result.metadata['workers']}: "
            f"{store.path(config) if chief else 'not stored (the chief stores the run)'}"
        )
    else:
        result, trained = _train_one(
            config, _load_data(args), store, fresh=args.fresh, quiet=args.quiet, strategy=strategy
        )
        print(f"{'trained' if trained else 'from the store'}: {store.path(config)}")
    print_run(result, out=args.out)
    return 0


def print_run(result, out=None) -> None:
    from reproduction.atomic import atomic_write_json

    print(EPOCH_HEADER)
    for e in result.epochs:
        print(format_epoch(e))
    print(
        f"parameter updates {result.parameter_updates}, train seconds {result.train_seconds:.2f}, "
        f"final test accuracy {100 * result.final.test_accuracy:.2f}%"
    )
    print(
        f"gradient noise scale B_simple (tr Sigma / |G|^2, on {result.metadata.get('noise_probe', 0)} probe "
        f"examples): {result.initial_b_simple:.0f} at the initial weights, {result.final.b_simple:.0f} after "
        f"the last epoch (docs/reference.md)"
    )
    meta = result.metadata
    if meta.get("strategy", "default") != "default":
        print(
            f"data parallel: {meta['replicas']} replicas, {meta['strategy']} strategy, {meta['workers']} "
            "process(es); equal to one device up to rounding (docs/reference.md)"
        )
    if out:
        atomic_write_json(out, result.to_dict())
        print(f"written: {out}")


def cmd_launch(args) -> int:
    from reproduction.launch import launch
    from reproduction.store import RunStore

    run_argv = args.run_argv[1:] if args.run_argv[:1] == ["--"] else args.run_argv
    if run_argv[:1] != ["run"]:
        raise ValueError(f"launch: expected '-- run [options]' after the launch options, got {run_argv[:1]}")
    run = build_parser().parse_args(run_argv)
    for name, flag in (("strategy", "default"), ("replicas", None), ("out", None)):
        if getattr(run, name) != flag:
            raise ValueError(
                f"launch: --{name} is not a run option here (launch runs every worker with "
                "--strategy multi-worker and writes the chief's result to the store)"
            )
    store = RunStore(run.runs_dir)
    config = _run_config(run, "multi-worker", args.workers)  # one replica per worker process (CPU)
    found = None if run.fresh else store.get(config)
    if found is not None:
        print(f"from the store: {store.path(config)}")
        print_run(found)
        return 0
    forward = ["run", "--optimizer", run.optimizer, "--schedule", run.schedule, "--seed", str(run.seed)]
    for name, flag in (("lr", "--lr"), ("train_examples", "--train-examples"), ("data_dir", "--data-dir")):
        if getattr(run, name) is not None:
            forward += [flag, str(getattr(run, name))]
    result = launch(forward, args.workers, store, worker_dir=args.worker_dir)
    print(f"trained across {args.workers} worker processes: {store.path(result.config)}")
    print_run(result)
    return 0


def cmd_tune(args) -> int:
    """Grid of base learning rates on the decay schedule (the paper's protocol: tune once, share it).

    Rule: the highest mean final test accuracy over the seeds; a diverged run counts as what it scored."""
    from reproduction.config import RunConfig
    from reproduction.store import RunStore

    data, store = _load_data(args), RunStore(args.runs_dir)
    means = {}
    print("| optimizer | base lr | " + " | ".join(f"seed {k}" for k in args.seeds) + " | mean |")
    print("|---|---|" + "---|" * len(args.seeds) + "---|")
    for lr in args.grid:
        accs = []
        for seed in args.seeds:
            config = RunConfig(optimizer=args.optimizer, schedule="decay", seed=seed, base_lr=lr)
            result, _ = _train_one(config, data, store, quiet=True)
            accs.append(100 * result.final.test_accuracy)
        means[lr] = sum(accs) / len(accs)
        print(
            f"| {args.optimizer} | {lr:g} | "
            + " | ".join(f"{a:.2f}%" for a in accs)
            + f" | {means[lr]:.2f}% |",
            flush=True,
        )
    best = max(means, key=means.get)
    print(f"best base lr for {args.optimizer}: {best:g} (mean {means[best]:.2f}%)")
    return 0


def cmd_calibrate(args) -> int:
    """Decay on the calibration seeds, per optimizer -> the train-loss margins in calibration.json."""
    from reproduction import calibration
    from reproduction.atomic import atomic_write_json
    from reproduction.runner import run_all
    from reproduction.store import RunStore
    from reproduction.training import metadata

    configs = calibration.calibration_configs(args.seeds)
    runs = run_all(
        configs, _load_data(args), RunStore(args.runs_dir), quiet=True, timed=[], workers=args.workers
    ).runs
    meta = metadata()
    content = calibration.build_calibration(
        runs, args.seeds, {k: meta[k] for k in ("git_commit", "git_dirty", "tensorflow", "cpu")}
    )
    calibration.load_margins(content)  # the same checks the claim will make
    out = Path(args.out) if args.out else calibration.CALIBRATION_PATH
    atomic_write_json(out, content)
    print("| optimizer | seeds | sd of final train loss | margin |")
    print("|---|---|---|---|")
    for o, entry in content["optimizers"].items():
        print(
            f"| {o} | {entry['seeds'][0]}-{entry['seeds'][-1]} | {entry['sd']:.5f} | {entry['margin']:.5f} |"
        )
    print(f"written: {out}")
    return 0


def cmd_anneal(args) -> int:
    """Constant against decay at each (base lr, base batch): where does lowering the noise scale matter?"""
    from reproduction import annealing
    from reproduction.runner import run_all
    from reproduction.store import RunStore

    settings = [annealing.Setting(args.optimizer, lr, batch) for lr in args.lr for batch in args.batch]
    seeds = [annealing.SEARCH_SEED_OFFSET + k for k in range(args.seeds)]
    runs = run_all(
        annealing.search_configs(settings, seeds),
        _load_data(args),
        RunStore(args.runs_dir),
        quiet=True,
        timed=[],
        workers=args.workers,
    ).runs
    for line in annealing.table([annealing.compare(s, runs, seeds) for s in settings]):
        print(line)
    return 0


def cmd_reproduce(args) -> int:
    from reproduction.reproduce import reproduce

    return reproduce(
        profile=args.profile,
        out=Path(args.out),
        seeds=args.seeds,
        data_dir=args.data_dir,
        runs_dir=args.runs_dir,
        fresh=args.fresh,
        tensorboard=args.tensorboard,
        workers=args.workers,
        scheduler=args.scheduler,
    )


def cmd_report(args) -> int:
    from reproduction.report import rebuild_report

    path = rebuild_report(Path(args.from_dir), Path(args.out) if args.out else None)
    print(f"report: {path}")
    return 0


def _workers(text: str) -> int:
    from reproduction.cluster import check_workers

    try:
        return check_workers(int(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"--workers {text!r}: expected an integer >= 0 (0: train every run in this process)"
        ) from exc


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive integer")
    return value


def build_parser() -> argparse.ArgumentParser:
    from reproduction.cluster import DEFAULT_WORKERS
    from reproduction.distribute import STRATEGIES
    from reproduction.optimizers import OPTIMIZERS
    from reproduction.schedules import SCHEDULES

    parser = argparse.ArgumentParser(prog="reproduction", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p, runs=True):
        p.add_argument(
            "--data-dir",
            help="directory with the four MNIST IDX files (raw or .gz) or mnist.npz "
            "(default: $REPRODUCTION_DATA_DIR, then the cache, then the network)",
        )
        if runs:
            p.add_argument(
                "--runs-dir", default=None, help="run store (default: $REPRODUCTION_RUNS_DIR or ./runs)"
            )

    p = sub.add_parser("fetch-data", help="fetch, verify and cache MNIST")
    common(p, runs=False)
    p.set_defaults(func=cmd_fetch_data)

    p = sub.add_parser("run", help="train one run (or take it from the store) and print its epochs")
    common(p)
    p.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="sgd")
    p.add_argument("--schedule", choices=sorted(SCHEDULES), default="increase")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--lr", type=float, default=None, help="base learning rate (default: the optimizer's tuned one)"
    )
    p.add_argument("--out", help="also write the run's JSON here")
    p.add_argument("--fresh", action="store_true", help="retrain even if the store has this run")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--strategy",
        choices=list(STRATEGIES),
        default="default",
        help="tf.distribute strategy: default (one device), mirrored (this machine's devices), "
        "multi-worker (TF_CONFIG from the environment; see 'launch')",
    )
    p.add_argument(
        "--replicas",
        type=_positive_int,
        default=None,
        help="with --strategy mirrored: that many logical CPU devices (default: the local devices)",
    )
    p.add_argument(
        "--train-examples",
        type=_positive_int,
        default=None,
        help="train on the first N training images only (smoke tests; default: all 60000)",
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "launch",
        help="one run across N local worker processes (tf.distribute multi-worker)",
        description="Start N workers on 127.0.0.1 with their TF_CONFIG, each running "
        "'reproduction run ... --strategy multi-worker'; store the chief's result "
        "when all succeed and agree. Example: reproduction launch --workers 2 -- run "
        "--optimizer sgd --schedule increase --seed 0",
    )
    p.add_argument("--workers", type=_positive_int, required=True, help="worker processes, one replica each")
    p.add_argument(
        "--worker-dir",
        default=None,
        help="keep each worker's log and result here (default: a "
        "temporary directory, removed after a success)",
    )
    p.add_argument("run_argv", nargs=argparse.REMAINDER, help="-- run [run options]")
    p.set_defaults(func=cmd_launch)

    p = sub.add_parser("tune", help="grid of base learning rates on the decay schedule")
    common(p)
    p.add_argument("--optimizer", choices=sorted(OPTIMIZERS), required=True)
    p.add_argument("--grid", type=float, nargs="+", required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.set_defaults(func=cmd_tune)

    p = sub.add_parser(
        "calibrate", help="decay on calibration seeds -> the train-loss margins (calibration.json)"
    )
    common(p)
    p.add_argument(
        "--seeds", type=_positive_int, default=10, help="calibration seeds per optimizer (default 10)"
    )
    p.add_argument(
        "--workers", type=_workers, default=DEFAULT_WORKERS, help="parallel single-threaded processes"
    )
    p.add_argument("--out", default=None, help="where to write (default: reproduction/calibration.json)")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser(
        "anneal", help="constant against decay at each base lr and batch: does annealing matter?"
    )
    common(p)
    p.add_argument("--optimizer", choices=sorted(OPTIMIZERS), required=True)
    p.add_argument("--lr", type=float, nargs="+", required=True, help="base learning rates")
    p.add_argument("--batch", type=_positive_int, nargs="+", default=[100], help="base batch sizes")
    p.add_argument("--seeds", type=_positive_int, default=3, help="search seeds (2000, 2001, ...; default 3)")
    p.add_argument(
        "--workers", type=_workers, default=DEFAULT_WORKERS, help="parallel single-threaded processes"
    )
    p.set_defaults(func=cmd_anneal)

    p = sub.add_parser("reproduce", help="the whole reproduction: grid of runs, claims, report and figures")
    common(p)
    p.add_argument("--profile", choices=["quick", "full"], default="quick")
    p.add_argument("--out", default="report", help="output directory (default: ./report)")
    p.add_argument("--seeds", type=_positive_int, default=None, help="override the profile's number of seeds")
    p.add_argument("--fresh", action="store_true", help="retrain every run")
    p.add_argument("--tensorboard", action="store_true", help="also write TensorBoard scalars per run")
    p.add_argument(
        "--workers",
        type=_workers,
        default=DEFAULT_WORKERS,
        help="parallel single-threaded processes for the runs whose wall clock no claim reads; the "
        f"timed runs always train alone (default: {DEFAULT_WORKERS}; 0: all in this process)",
    )
    p.add_argument(
        "--scheduler",
        default=os.environ.get("REPRODUCTION_SCHEDULER") or None,
        help="a Dask scheduler address (tcp://HOST:PORT) to train the grid on an existing cluster "
        "(default: $REPRODUCTION_SCHEDULER, else a LocalCluster on 127.0.0.1; README)",
    )
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser(
        "report", help="rebuild REPORT.md and figures from a reproduce output, without training"
    )
    p.add_argument("--from", dest="from_dir", required=True, help="a directory written by 'reproduce'")
    p.add_argument("--out", default=None, help="where to write (default: the same directory)")
    p.set_defaults(func=cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (data_mod.DataError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except LaunchFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except RunFailed as exc:
        print(f"error: {exc}; the other runs are in the store, re-run to retry", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: finished runs are in the store; re-run to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

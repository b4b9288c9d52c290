"""Command line: ``reproduction fetch-data | run | launch | tune | calibrate | anneal | reproduce | report``.

Input errors (errors.UsageError, data.DataError) end in one line on stderr and exit status 2; a failed run
or launch in exit status 1; Ctrl-C in 130; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from reproduction import data as data_mod
from reproduction.atomic import check_directory, ensure_file_target
from reproduction.cluster import ClusterLost, RunFailed
from reproduction.errors import UsageError
from reproduction.launch import LaunchFailed

EPOCH_HEADER = (
    f"{'epoch':>5} {'lr':>9} {'batch':>6} {'steps':>6} {'train s':>8} {'eval s':>7} {'train loss':>10} "
    f"{'test loss':>9} {'test acc':>8} {'B_simple':>8}"
)


def format_epoch(e) -> str:
    return (
        f"{e.epoch:>5} {e.learning_rate:>9.5g} {e.batch_size:>6} {e.steps:>6} {e.train_seconds:>8.2f} "
        f"{e.eval_seconds:>7.2f} {e.train_loss:>10.4f} {e.test_loss:>9.4f} {100 * e.test_accuracy:>7.2f}% "
        f"{e.b_simple:>8.0f}"
    )


def _workload(args):
    from reproduction.workloads import get_workload

    return get_workload(args.workload)


def _source(args):
    return _workload(args).source(args.data_dir)


def _store(args):
    from reproduction.atomic import ensure_directory
    from reproduction.store import RunStore

    store = RunStore(args.runs_dir)
    ensure_directory(store.root, "--runs-dir")
    return store


def cmd_fetch_data(args) -> int:
    dataset = data_mod.load_dataset(args.dataset, args.data_dir)
    print(f"{args.dataset} verified, from {dataset.source}")
    for name in ("x_train", "y_train", "x_test", "y_test"):
        array = getattr(dataset, name)
        print(f"  {name:<8} {str(array.shape):<16} sha256(payload) {data_mod.payload_sha256(array)}")
    if isinstance(dataset, data_mod.Mnist):  # the fetched data sets; CIFAR-10 is read where it lies
        print(f"cache: {data_mod.cache_dir()}")
    return 0


def _train(configs, args, store, *, workers=0, strategy=None, quiet=True):
    """The runs through the same path as the main job (store, atomic writes, resume)."""
    from reproduction import runner

    say = (lambda text: None) if quiet else runner.say
    return runner.run_all(
        configs,
        _source(args),
        store,
        fresh=getattr(args, "fresh", False),
        quiet=quiet,
        say=say,
        timed=[],
        workers=workers,
        strategy=strategy,
    )


def _run_config(args, strategy: str = "default", replicas: int = 1):
    config = _workload(args).config(
        args.optimizer,
        args.schedule,
        args.seed,
        base_lr=args.lr,
        base_batch=args.base_batch,
        train_examples=args.train_examples,
        strategy=strategy,
        replicas=replicas,
        noise_every=args.noise_every,
    )
    config.check_fits()  # before the store, the data and any training
    return config


def cmd_run(args) -> int:
    from reproduction.distribute import check_strategy, cluster_size, is_chief, make_strategy, tf_config
    from reproduction.launch import LAUNCHED

    check_strategy(args.strategy, args.replicas)  # before TensorFlow starts
    if args.out:
        ensure_file_target(args.out, "--out")
    if args.strategy == "multi-worker":  # the run's options, before this worker's server takes its port
        _run_config(args, "multi-worker", cluster_size(tf_config()))  # at least one replica per worker
        if os.environ.get(LAUNCHED) is None:
            print(
                "warning: this worker's TensorFlow server listens on every interface (0.0.0.0), whatever "
                "TF_CONFIG names: on a shared network, use `reproduction launch` or a firewall "
                "(docs/scale-out.md)",
                file=sys.stderr,
            )
    # first: a strategy sets up TensorFlow's devices (and a worker's server) before anything else runs
    strategy = make_strategy(args.strategy, args.replicas) if args.strategy != "default" else None
    config = _run_config(args, args.strategy, strategy.num_replicas_in_sync if strategy is not None else 1)
    store = _store(args)
    if args.strategy == "multi-worker":  # every worker must take part, so none may take the run from a store
        from reproduction.training import Trainer

        progress = (
            None if args.quiet else lambda e: print(f"epoch {e.epoch} trained", flush=True)
        )  # in its log
        result = Trainer(_source(args).load(), strategy=strategy).train(config, on_epoch=progress)
        chief = is_chief(strategy)
        if chief:
            store.put(result)
        where = store.path(config) if chief else "not stored (the chief stores the run)"
        print(f"trained as {'the chief' if chief else 'a worker'} of {result.metadata['workers']}: {where}")
    else:
        outcome = _train([config], args, store, strategy=strategy, quiet=args.quiet)
        result = outcome.runs[config]
        print(f"{'trained' if config in outcome.trained else 'from the store'}: {store.path(config)}")
    print_run(result, out=args.out)
    return 0


def print_run(result, out=None) -> None:
    from reproduction.atomic import atomic_write_json

    print(EPOCH_HEADER)
    for e in result.epochs:
        print(format_epoch(e))
    print(
        f"parameter updates {result.parameter_updates}, train seconds {result.train_seconds:.2f}, final test "
        f"accuracy {100 * result.final.test_accuracy:.2f}%"
    )
    print(
        "gradient noise scale B_simple (tr Sigma / |G|^2, from the updates' two-part gradients; "
        f"docs/noise-scale.md): {result.epochs[0].b_simple:.0f} over the first epoch, "
        f"{result.final.b_simple:.0f} over the last"
    )
    meta = result.metadata
    if meta.get("strategy", "default") != "default":
        print(
            f"data parallel: {meta['replicas']} replicas, {meta['strategy']} strategy, {meta['workers']} "
            "process(es); equal to one device up to rounding (docs/scale-out.md)"
        )
    if out:
        atomic_write_json(out, result.to_dict())
        print(f"written: {out}")


def cmd_launch(args) -> int:
    from reproduction.launch import launch

    run_argv = args.run_argv[1:] if args.run_argv[:1] == ["--"] else args.run_argv
    if run_argv[:1] != ["run"]:
        raise UsageError(f"launch: expected '-- run [options]' after the launch options, got {run_argv[:1]}")
    run = build_parser().parse_args(run_argv)
    for name, flag in (("strategy", "default"), ("replicas", None), ("out", None)):
        if getattr(run, name) != flag:
            raise UsageError(
                f"launch: --{name} is not a run option here (launch runs every worker with --strategy "
                "multi-worker and writes the chief's result to the store)"
            )
    try:
        config = _run_config(run, "multi-worker", args.workers)  # one replica per worker process (CPU)
    except UsageError as exc:
        raise UsageError(f"launch --workers {args.workers}: {exc}") from None
    if args.worker_dir is not None:
        check_directory(args.worker_dir, "--worker-dir")
    store = _store(run)
    found = None if run.fresh else store.get(config)
    if found is not None:
        print(f"from the store: {store.path(config)}")
        print_run(found)
        return 0
    _source(run).load()  # fetched and verified here: the workers' private network reaches nothing else
    result = launch(run_argv, args.workers, store, worker_dir=args.worker_dir)  # forwarded as given
    print(f"trained across {args.workers} worker processes: {store.path(result.config)}")
    print_run(result)
    return 0


def cmd_tune(args) -> int:
    """Grid of base learning rates on the decay schedule (the paper's protocol: tune once, share it).

    Rule: the highest mean final test accuracy over the tuning seeds; a diverged run counts as what it scored
    (chance), so a rate unstable on any seed loses."""
    from reproduction.workloads import TUNING_SEEDS, purpose_seeds

    seeds = purpose_seeds(TUNING_SEEDS, args.seeds, "--seeds")
    workload = _workload(args)
    configs = [workload.config(args.optimizer, "decay", k, base_lr=lr) for lr in args.grid for k in seeds]
    runs = _train(configs, args, _store(args), workers=args.workers).runs
    print("| optimizer | base lr | " + " | ".join(f"seed {k}" for k in seeds) + " | mean |")
    print("|---|---|" + "---|" * len(seeds) + "---|")
    means = {}
    for lr in args.grid:
        accs = [
            100 * runs[workload.config(args.optimizer, "decay", k, base_lr=lr)].final.test_accuracy
            for k in seeds
        ]
        means[lr] = sum(accs) / len(accs)
        print(
            f"| {args.optimizer} | {lr:g} | "
            + " | ".join(f"{a:.2f}%" for a in accs)
            + f" | {means[lr]:.2f}% |"
        )
    best = max(means, key=means.get)
    print(f"best base lr for {args.optimizer} on {workload.name}: {best:g} (mean {means[best]:.2f}%)")
    return 0


def cmd_calibrate(args) -> int:
    """Decay and the controls on the calibration seeds -> the workload's pre-registration file."""
    from reproduction import calibration
    from reproduction.atomic import atomic_write_json
    from reproduction.provenance import cpu_name, git_state

    workload = _workload(args)
    out = ensure_file_target(args.out or workload.preregistration, "--out")  # before any training
    runs = _train(
        calibration.calibration_configs(workload, args.seeds), args, _store(args), workers=args.workers
    ).runs
    commit, dirty = git_state()
    content = calibration.build_calibration(
        workload, runs, args.seeds, {"git_commit": commit, "git_dirty": dirty, "cpu": cpu_name()}
    )
    calibration.load_margins(content, workload)  # the same checks the claims will make
    atomic_write_json(out, content)
    print("| optimizer | seeds | sd of final train loss | margin |\n|---|---|---|---|")
    for o, entry in content["optimizers"].items():
        print(
            f"| {o} | {entry['seeds'][0]}-{entry['seeds'][-1]} | {entry['sd']:.5f} | {entry['margin']:.5f} |"
        )
    print(
        "\n| control | mean - decay | sd | margin | level | seeds for 80% power |\n|---|---|---|---|---|---|"
    )
    for name, e in content["controls"].items():
        print(
            f"| {name} | {_number(e['mean'], '+.4g')} | {_number(e['sd'], '.3g')} | {e['margin']:.4g} | "
            f"{e['level']:.3g} | "
            f"{_seeds_needed(e)} |"
        )
    print(f"seeds every discriminating control needs: {content['seeds_needed']}\nwritten: {out}")
    return 0


def _number(value, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _seeds_needed(entry: dict) -> str:
    diverged = f" ({entry['diverged']} diverged)" if entry.get("diverged") else ""
    if entry["seeds_needed"]:
        return f"{entry['seeds_needed']}{diverged}"
    beyond = entry["mean"] is not None and entry["direction"] * entry["mean"] > entry["margin"]
    return "none: more than 100 seeds" if beyond else "none: inside its margin"


def cmd_anneal(args) -> int:
    """Constant against decay at each (base lr, base batch): where does lowering the noise scale matter?"""
    from reproduction import annealing
    from reproduction.workloads import Setting, purpose_seeds

    workload = _workload(args)
    settings = [Setting(args.optimizer, lr, batch) for lr in args.lr for batch in args.batch]
    seeds = purpose_seeds(annealing.SEARCH_SEED_OFFSET, args.seeds, "--seeds")
    configs = annealing.search_configs(workload, settings, seeds)
    for config in configs:
        config.check_fits()
    runs = _train(configs, args, _store(args), workers=args.workers).runs
    for line in annealing.table([annealing.compare(workload, s, runs, seeds) for s in settings]):
        print(line)
    return 0


def _tls(args):
    """This client's certificates for a tls:// scheduler: all three options, or none (Dask's settings)."""
    from reproduction.cluster import Tls

    given = [args.tls_ca_file, args.tls_cert, args.tls_key]
    if any(given) and not all(given):
        raise UsageError(
            "--tls-ca-file, --tls-cert and --tls-key: give all three (this client's certificates for a "
            "tls:// scheduler) or none"
        )
    return Tls(*given) if all(given) else None


def cmd_reproduce(args) -> int:
    from reproduction.reproduce import reproduce

    tls = _tls(args)  # before anything is loaded or trained
    return reproduce(
        workload=args.workload,
        profile=args.profile,
        out=Path(args.out),
        seeds=args.seeds,
        data_dir=args.data_dir,
        runs_dir=args.runs_dir,
        fresh=args.fresh,
        tensorboard=args.tensorboard,
        workers=args.workers,
        scheduler=args.scheduler,
        tls=tls,
    )


def cmd_report(args) -> int:
    from reproduction.report import rebuild_report

    readme = Path(args.readme) if args.readme else None
    path = rebuild_report(Path(args.from_dir), Path(args.out) if args.out else None, readme)
    print(f"report: {path}" + (f"; headline block written to {readme}" if readme else ""))
    return 0


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected an integer >= 0 (0: train every run in this process)"
        )
    return value


def _seeds_for_a_spread(text: str) -> int:
    value = _positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"{text!r}: expected an integer >= 2 (a spread needs two seeds)")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive integer")
    return value


def _common(p, runs: bool = True, workers: bool = False) -> None:
    from reproduction.cluster import DEFAULT_WORKERS
    from reproduction.workloads import known_workloads

    p.add_argument(
        "--workload",
        default="mnist",
        help=f"the dataset and model with their pre-registered settings: {', '.join(known_workloads())}, or "
        "package.module:function returning a Workload (docs/workloads.md; default: mnist)",
    )
    p.add_argument(
        "--data-dir",
        help="the dataset's files in a directory of yours (MNIST: the four IDX files, raw or .gz, or "
        "mnist.npz; default: the cache, then the network)",
    )
    if runs:
        p.add_argument(
            "--runs-dir", default=None, help="run store (default: $REPRODUCTION_RUNS_DIR or ./runs)"
        )
    if workers:
        p.add_argument(
            "--workers",
            type=_workers,
            default=DEFAULT_WORKERS,
            help=f"parallel worker processes (default: {DEFAULT_WORKERS}; 0: all in this process)",
        )


def _add_run(sub) -> None:
    from reproduction.distribute import STRATEGIES
    from reproduction.optimizers import OPTIMIZERS
    from reproduction.schedules import SCHEDULES

    p = sub.add_parser("run", help="train one run (or take it from the store) and print its epochs")
    _common(p)
    p.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="sgd")
    p.add_argument("--schedule", choices=sorted(SCHEDULES), default="increase")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--lr", type=float, default=None, help="base learning rate (default: the workload's tuned one)"
    )
    p.add_argument("--out", help="also write the run's JSON here")
    p.add_argument("--fresh", action="store_true", help="retrain even if the store has this run")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--strategy",
        choices=list(STRATEGIES),
        default="default",
        help="tf.distribute strategy: default (one device), mirrored (this machine's devices), multi-worker "
        "(TF_CONFIG from the environment; see 'launch')",
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
        help="train on the first N training images only (smoke tests; default: all)",
    )
    p.add_argument(
        "--base-batch",
        type=_positive_int,
        default=None,
        help="the first phase's batch (default: the workload's); the schedule keeps its factor",
    )
    p.add_argument(
        "--noise-every",
        type=_positive_int,
        default=None,
        help="estimate the gradient noise scale on one update in K only: less time, wider errors "
        "(default: every update; docs/noise-scale.md)",
    )
    p.set_defaults(func=cmd_run)


def _add_fetch_data(sub) -> None:
    p = sub.add_parser("fetch-data", help="fetch, verify and cache a dataset")
    p.add_argument("--dataset", default="mnist", choices=sorted(data_mod.DATASETS))
    p.add_argument("--data-dir", help="read the dataset's files from this directory instead")
    p.set_defaults(func=cmd_fetch_data)


def _add_launch(sub) -> None:
    p = sub.add_parser(
        "launch",
        help="one run across N local worker processes (tf.distribute multi-worker)",
        description="Start N workers on 127.0.0.1 with their TF_CONFIG, each running 'reproduction run ... "
        "--strategy multi-worker'; store the chief's result when all succeed and agree. Example: "
        "reproduction launch --workers 2 -- run --optimizer sgd --schedule increase --seed 0",
    )
    p.add_argument("--workers", type=_positive_int, required=True, help="worker processes, one replica each")
    p.add_argument(
        "--worker-dir",
        default=None,
        help="keep each worker's log and result here (default: a temporary directory, removed after a "
        "success)",
    )
    p.add_argument("run_argv", nargs=argparse.REMAINDER, help="-- run [run options]")
    p.set_defaults(func=cmd_launch)


def _add_preregistration(sub) -> None:
    """tune, calibrate, anneal: the commands that choose settings on seeds no claim reads."""
    from reproduction.optimizers import OPTIMIZERS

    p = sub.add_parser("tune", help="grid of base learning rates on the decay schedule, on tuning seeds")
    _common(p, workers=True)
    p.add_argument("--optimizer", choices=sorted(OPTIMIZERS), required=True)
    p.add_argument("--grid", type=float, nargs="+", required=True, help="base learning rates to try")
    p.add_argument("--seeds", type=_positive_int, default=5, help="tuning seeds (3000, 3001, ...; default 5)")
    p.set_defaults(func=cmd_tune)

    p = sub.add_parser(
        "calibrate", help="decay and the controls on calibration seeds -> the pre-registration file"
    )
    _common(p, workers=True)
    p.add_argument(
        "--seeds", type=_seeds_for_a_spread, default=10, help="calibration seeds per optimizer (default 10)"
    )
    p.add_argument(
        "--out", default=None, help="where to write (default: the workload's preregistration file)"
    )
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser(
        "anneal", help="constant against decay at each base lr and batch: does annealing matter?"
    )
    _common(p, workers=True)
    p.add_argument("--optimizer", choices=sorted(OPTIMIZERS), required=True)
    p.add_argument("--lr", type=float, nargs="+", required=True, help="base learning rates")
    p.add_argument("--batch", type=_positive_int, nargs="+", default=[100], help="base batch sizes")
    p.add_argument("--seeds", type=_positive_int, default=3, help="search seeds (2000, 2001, ...; default 3)")
    p.set_defaults(func=cmd_anneal)


def _add_reproduce(sub) -> None:
    p = sub.add_parser("reproduce", help="the whole reproduction: grid of runs, claims, report and figures")
    _common(p, workers=True)
    p.add_argument("--profile", choices=["quick", "full"], default="quick")
    p.add_argument("--out", default="report", help="output directory (default: ./report)")
    p.add_argument("--seeds", type=_positive_int, default=None, help="override the profile's number of seeds")
    p.add_argument("--fresh", action="store_true", help="retrain every run")
    p.add_argument("--tensorboard", action="store_true", help="also write TensorBoard scalars per run")
    p.add_argument(
        "--scheduler",
        default=os.environ.get("REPRODUCTION_SCHEDULER") or None,
        help="a Dask scheduler address (tcp://HOST:PORT or tls://HOST:PORT) to train the grid on an "
        "existing cluster (default: $REPRODUCTION_SCHEDULER, else a LocalCluster on 127.0.0.1)",
    )
    for flag, what in (
        ("--tls-ca-file", "the CA that signed the cluster's certificates"),
        ("--tls-cert", "this client's certificate"),
        ("--tls-key", "this client's private key"),
    ):
        p.add_argument(
            flag, help=f"with a tls:// scheduler: {what} (default: Dask's distributed.comm.tls settings)"
        )
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser(
        "report", help="rebuild REPORT.md and figures from a reproduce output, without training"
    )
    p.add_argument("--from", dest="from_dir", required=True, help="a directory written by 'reproduce'")
    p.add_argument("--out", default=None, help="where to write (default: the same directory)")
    p.add_argument("--readme", default=None, help="also rewrite this README's generated headline block")
    p.set_defaults(func=cmd_report)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reproduction", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_fetch_data, _add_run, _add_launch, _add_preregistration, _add_reproduce):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    # one intra-op TensorFlow thread for every run, set before TensorFlow loads (training.configure_threads)
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (data_mod.DataError, UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except LaunchFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except RunFailed as exc:
        print(f"error: {exc}; the other runs are in the store, re-run to retry", file=sys.stderr)
        return 1
    except ClusterLost as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: finished runs are in the store; re-run to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""Engine speed against its peer, Keras ``model.fit`` (what the group report used), in the same run.

Per batch size, rounds alternate (engine epoch, fit epoch, engine epoch, ...) so machine noise hits both
alike; the verdict is the median of the per-round ratios. pytest-benchmark stores the engine's epochs
(one round = one 60k epoch) and the ratios in ``extra_info``. Not part of the default ``tox`` run:
``tox -e bench`` (or ``pytest benchmarks --benchmark-only``).

Targets: at B = 100 our epoch is at least 2x faster than ``model.fit``. The roofline (this machine's
arithmetic and memory bandwidth against reproduction/roofline.py's model of an epoch) says how far the
engine is from what the hardware allows (docs/engine.md).
"""

from __future__ import annotations

import statistics
import time

import keras
import numpy as np
import pytest
import tensorflow as tf
from support import train_single_threaded

from reproduction.data import load_mnist
from reproduction.model import ModelOptions, build_cnn, micro_batch_size
from reproduction.training import Engine, configure_determinism

ROUNDS = 5


@pytest.fixture(scope="module")
def mnist_all():
    return load_mnist().preprocessed()


@pytest.fixture(scope="module")
def mnist(mnist_all):
    return mnist_all[:2]


def _engine(seed=0, noise=True, noise_every=1):
    """The engine as runs train it: micro-batches of model.MICRO_BATCH, the noise estimate on (on one update
    in ``noise_every``), or off."""
    configure_determinism()
    keras.utils.set_random_seed(seed)
    micro = micro_batch_size(ModelOptions())
    return Engine(build_cnn(), keras.optimizers.SGD(0.05), micro, noise=noise, noise_every=noise_every)


def _warm(engine, x, y):
    """Trace, then one epoch at the base batch, as every run's large batches follow one: a fresh engine's
    first B-2500 epochs ran 1.4x slower here until an epoch at a smaller batch had run (cause not found)."""
    engine.warm_up(x, y)
    engine.train_epoch(x, y, 0.05, 100, (0, 999))


def _fit_model(seed=0):
    keras.utils.set_random_seed(seed)
    model = build_cnn()
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy")
    return model


@pytest.mark.parametrize("batch", [100, 500, 2500], ids=lambda b: f"B{b}")
def test_engine_epoch_vs_model_fit(benchmark, mnist, batch):
    x_np, y_np = mnist
    x, y = tf.constant(x_np), tf.constant(y_np)
    engine, fit_model = _engine(), _fit_model()
    _warm(engine, x, y)
    fit_model.fit(x_np[:batch], y_np[:batch], batch_size=batch, epochs=1, verbose=0)  # build and trace

    engine_s, fit_s = [], []
    for r in range(ROUNDS):
        t = time.perf_counter()
        steps = engine.train_epoch(x, y, 0.05, batch, (0, r)).steps
        engine_s.append(time.perf_counter() - t)
        assert steps == -(-len(x_np) // batch)
        t = time.perf_counter()
        fit_model.fit(x_np, y_np, batch_size=batch, epochs=1, verbose=0, shuffle=True)
        fit_s.append(time.perf_counter() - t)

    counter = iter(range(1000))
    benchmark.pedantic(
        lambda: engine.train_epoch(x, y, 0.05, batch, (1, next(counter))),
        rounds=3,
        iterations=1,
        warmup_rounds=0,
    )
    ratio = statistics.median(f / e for f, e in zip(fit_s, engine_s, strict=True))
    benchmark.extra_info.update(
        {
            "batch_size": batch,
            "engine_seconds": engine_s,
            "model_fit_seconds": fit_s,
            "median_ratio_fit_over_engine": ratio,
        }
    )
    print(
        f"\nB={batch}: engine median {statistics.median(engine_s):.2f} s, model.fit median "
        f"{statistics.median(fit_s):.2f} s, fit/engine {ratio:.2f}x"
    )
    if batch == 100:
        # 5x (engine <= 0.2 of fit) is out of reach here: oneDNN's convolution kernels bound the step
        print("B=100: target 5x not asserted; where the time goes: python benchmarks/profile_step.py --ops")
        assert ratio >= 2.0, f"engine only {ratio:.2f}x faster than model.fit at B=100 (target 2x)"
    assert ratio > 1.0


def _probe_flops_per_second(n=2048, repeats=5) -> float:
    a = tf.random.normal([n, n])
    tf.linalg.matmul(a, a).numpy()
    best = min(_timed(lambda: tf.linalg.matmul(a, a).numpy()) for _ in range(repeats))
    return 2 * n**3 / best


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _probe_bytes_per_second(n_floats: int, passes: int = 20, repeats: int = 5) -> float:
    """Streaming bandwidth of TensorFlow's elementwise ops on arrays of ``n_floats``: ``passes`` times
    y = 1.0001 * x in one traced loop (each pass reads and writes the array), best of ``repeats``."""
    x = tf.random.normal([n_floats])

    @tf.function
    def stream(t):
        for _ in tf.range(passes):
            t = t * 1.0001
        return t[0]

    stream(x).numpy()
    best = min(_timed(lambda: stream(x).numpy()) for _ in range(repeats))
    return 2 * 4 * n_floats * passes / best


def test_roofline(benchmark, mnist):
    """The engine's epoch (SGD, median of 3 epochs after the trace) at B 100, 500, 2500 against the larger
    of two bounds: training FLOP / this machine's large-matmul rate, and memory traffic / its streaming
    bandwidth on large (256 MB) arrays (reproduction/roofline.py); also the memory bound at the bandwidth of
    small (4 MB, cache-sized) arrays. The table docs/engine.md quotes."""
    from reproduction.roofline import epoch_bounds, training_costs

    flops_rate = _probe_flops_per_second()
    dram, cache = _probe_bytes_per_second(64 * 2**20), _probe_bytes_per_second(2**20, passes=400)
    x_np, y_np = mnist
    x, y = tf.constant(x_np), tf.constant(y_np)
    # the engine as runs train (Trainer): micro-batches of model.MICRO_BATCH
    configure_determinism()
    keras.utils.set_random_seed(0)
    engine = Engine(build_cnn(), keras.optimizers.SGD(0.05), micro_batch=micro_batch_size(ModelOptions()))
    engine.warm_up(x, y)
    costs, n = training_costs(optimizer_slots=0), len(x_np)
    rows = []
    for batch in (100, 500, 2500):
        seconds = statistics.median(
            _timed(lambda b=batch, k=k: engine.train_epoch(x, y, 0.05, b, (0, k))) for k in range(3)
        )
        bound = epoch_bounds(costs, n, batch, flops_rate, dram)
        small = epoch_bounds(costs, n, batch, flops_rate, cache)
        rows.append((batch, seconds, bound, small))
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    benchmark.extra_info.update(
        {
            "matmul_flops_per_second": flops_rate,
            "dram_bytes_per_second": dram,
            "cache_bytes_per_second": cache,
            "epochs": {b: {"engine_seconds": s, **bound} for b, s, bound, _ in rows},
        }
    )
    print(
        f"\nmatmul {flops_rate / 1e9:.0f} GFLOP/s; streaming {dram / 1e9:.1f} GB/s (256 MB arrays), "
        f"{cache / 1e9:.1f} GB/s (4 MB arrays); per image {rows[0][2]['flops'] / n / 1e3:.0f}k FLOP, "
        f"{rows[0][2]['bytes'] / n / 1e3:.0f} kB at B 100"
    )
    print(
        "| B | engine epoch | compute bound | memory bound (256 MB arrays) | engine / roofline | memory "
        "bound (4 MB arrays) | engine / that roofline |"
    )
    print("|---|---|---|---|---|---|---|")
    for batch, seconds, bound, small in rows:
        print(
            f"| {batch} | {seconds:.2f} s | {bound['compute_seconds']:.3f} s | {bound['memory_seconds']:.3f} "
            f"s | {seconds / bound['bound_seconds']:.1f}x | {small['memory_seconds']:.3f} s | "
            f"{seconds / small['bound_seconds']:.1f}x |"
        )
    assert all(s > 0 and np.isfinite(b["bound_seconds"]) for _, s, b, _ in rows)


def _median_step_seconds(step, x, steps=200, repeats=7) -> float:
    step(x)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(steps):
            step(x)
        times.append((time.perf_counter() - t) / steps)
    return statistics.median(times)


@pytest.mark.parametrize("batch", [100, 2500], ids=lambda b: f"B{b}")
def test_ghost_bn_cost_against_plain_bn(benchmark, batch):
    """Ghost BN layer alone, forward + backward, against Keras BatchNormalization (docs/engine.md)."""
    from reproduction.ghost_batch_norm import GhostBatchNormalization

    x = tf.constant(np.random.default_rng(0).normal(size=(batch, 28, 28, 1)).astype("float32"))
    seconds = {}
    for name, layer in (("ghost", GhostBatchNormalization(10)), ("plain", keras.layers.BatchNormalization())):
        layer(x[:10], training=True)

        @tf.function
        def step(x, layer=layer):
            with tf.GradientTape() as tape:
                tape.watch(x)
                out = tf.reduce_sum(layer(x, training=True) ** 2)
            return tape.gradient(out, [x, *layer.trainable_variables])

        seconds[name] = _median_step_seconds(step, x)
    ratio = benchmark.pedantic(lambda: seconds["ghost"] / seconds["plain"], rounds=1, iterations=1)
    benchmark.extra_info.update(
        {"ghost_seconds": seconds["ghost"], "plain_seconds": seconds["plain"], "ratio": ratio}
    )
    print(
        f"\nB={batch}: ghost {1e3 * seconds['ghost']:.3f} ms, plain {1e3 * seconds['plain']:.3f} ms, "
        f"ghost/plain {ratio:.2f}x"
    )
    assert ratio < 3.0


@pytest.mark.parametrize("batch", [500, 2500], ids=lambda b: f"B{b}")
def test_micro_batches_against_larger_chunks(benchmark, mnist, batch):
    """Why the engine splits large batches in chunks of model.MICRO_BATCH: epochs in those chunks against
    chunks of 500 (code version 5's) and one piece, interleaved, with the B-100 epoch for scale. Bound: the
    chunks of MICRO_BATCH no slower than chunks of 500 (median per-round ratio); the gain is reported."""
    from reproduction.model import MICRO_BATCH

    x, y = tf.constant(mnist[0]), tf.constant(mnist[1])
    engines = {}
    for micro in (MICRO_BATCH, 500, None):
        keras.utils.set_random_seed(0)
        engines[micro] = Engine(build_cnn(), keras.optimizers.SGD(0.05), micro_batch=micro)
        _warm(engines[micro], x, y)
    seconds: dict = {micro: [] for micro in engines} | {"B100": []}
    for r in range(ROUNDS):
        for micro, engine in engines.items():
            t = time.perf_counter()
            engine.train_epoch(x, y, 0.05, batch, (0, r))
            seconds[micro].append(time.perf_counter() - t)
        t = time.perf_counter()
        engines[MICRO_BATCH].train_epoch(x, y, 0.05, 100, (1, r))
        seconds["B100"].append(time.perf_counter() - t)
    ratio = benchmark.pedantic(
        lambda: statistics.median(a / b for a, b in zip(seconds[500], seconds[MICRO_BATCH], strict=True)),
        rounds=1,
        iterations=1,
    )
    median = {str(k): statistics.median(v) for k, v in seconds.items()}
    benchmark.extra_info.update({"epoch_seconds": {str(k): v for k, v in seconds.items()}, "ratio": ratio})
    print(
        f"\nB={batch}: chunks of {MICRO_BATCH} {median[str(MICRO_BATCH)]:.3f} s, of 500 "
        f"{median['500']:.3f} s, one piece {median['None']:.3f} s (B 100: {median['B100']:.3f} s); "
        f"500 / {MICRO_BATCH}: {ratio:.2f}x"
    )
    assert ratio > 1.0, f"chunks of {MICRO_BATCH} ran slower than chunks of 500 at B {batch}: {seconds}"


def test_two_single_threaded_workers_against_one_two_threaded_process(benchmark, mnist_all):
    """Why the untimed runs train in single-threaded worker processes (reproduction/cluster.py, a Dask
    LocalCluster): the same runs (decay, B 100,
    the bulk of the grid; increase, B up to 2500) trained here one after another with every core, against
    two single-threaded workers training them at the same time. Throughput = runs' training seconds in
    sequence / the longest worker's; process start-up is excluded from both."""
    from reproduction.cluster import train_on_cluster
    from reproduction.config import RunConfig
    from reproduction.training import Trainer

    data = mnist_all
    configs = [RunConfig("momentum", s, seed=k) for k in range(2) for s in ("decay", "increase")]
    trainer = Trainer(data)
    in_sequence = sum(trainer.train(c).train_seconds for c in configs)
    per_worker = {}
    for result in train_on_cluster(configs, data, workers=2):
        pid = result.metadata["worker_pid"]
        per_worker[pid] = per_worker.get(pid, 0.0) + result.train_seconds
    in_parallel = benchmark.pedantic(lambda: max(per_worker.values()), rounds=1, iterations=1)
    gain = in_sequence / in_parallel
    benchmark.extra_info.update(
        {"sequential_seconds": in_sequence, "parallel_seconds": in_parallel, "throughput_gain": gain}
    )
    print(
        f"\n4 runs: in sequence {in_sequence:.1f} s (all cores), two single-threaded workers "
        f"{in_parallel:.1f} s (longest worker), throughput {gain:.2f}x"
    )
    assert gain > 1.2, f"workers only {gain:.2f}x the throughput of one process"


_ONEDNN_PROBE = """
import os, sys, time
import keras, tensorflow as tf
from reproduction.data import load_mnist
from reproduction.model import build_cnn
from reproduction.training import Engine, configure_determinism
x, y, _, _ = load_mnist().preprocessed()
x, y = tf.constant(x), tf.constant(y)
configure_determinism()
keras.utils.set_random_seed(0)
engine = Engine(build_cnn(), keras.optimizers.SGD(0.05), micro_batch=500)
engine.warm_up(x, y)
t = time.perf_counter()
engine.train_epoch(x, y, 0.05, int(sys.argv[1]), (0, 0))
print(time.perf_counter() - t)
"""


@pytest.mark.parametrize("batch", [100, 2500], ids=lambda b: f"B{b}")
def test_onednn_kernels(benchmark, batch):
    """TF_ENABLE_ONEDNN_OPTS=1 (set by the package) against TensorFlow's own default, which leaves oneDNN
    off on CPUs it does not recognize (AMD EPYC here). Each setting needs a fresh process; the processes
    alternate (off, on, off, ...) and the verdict is the median of the per-pair ratios."""
    import os
    import subprocess
    import sys

    def epoch(setting):
        env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS=setting, TF_CPP_MIN_LOG_LEVEL="2")
        out = subprocess.run(
            [sys.executable, "-c", _ONEDNN_PROBE, str(batch)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        return float(out.stdout.strip().splitlines()[-1])

    pairs = [(epoch("0"), epoch("1")) for _ in range(3)]
    ratio = benchmark.pedantic(
        lambda: statistics.median(off / on for off, on in pairs), rounds=1, iterations=1
    )
    benchmark.extra_info.update(
        {
            "batch_size": batch,
            "onednn_off_seconds": [p[0] for p in pairs],
            "onednn_on_seconds": [p[1] for p in pairs],
            "median_ratio_off_over_on": ratio,
        }
    )
    print(
        f"\nB={batch}: oneDNN off {statistics.median(p[0] for p in pairs):.2f} s, on "
        f"{statistics.median(p[1] for p in pairs):.2f} s per epoch, off/on {ratio:.2f}x"
    )
    assert ratio > 1.0, f"oneDNN's kernels were not faster here: off/on {ratio:.2f}x"


def _alternating_epochs(engines: dict, x, y, batch: int) -> dict[str, list[float]]:
    """Each engine warmed (and one epoch at this batch: caches and allocator), then ROUNDS epochs each,
    alternating in one process: their seconds, by name."""
    for engine in engines.values():
        _warm(engine, x, y)
        engine.train_epoch(x, y, 0.05, batch, (0, 99))
    return _alternating_runs(engines, x, y, [(0.05, batch)], ROUNDS)


def _alternating_runs(engines: dict, x, y, epochs, rounds: int) -> dict[str, list[float]]:
    """``rounds`` runs of ``epochs`` ((learning rate, batch) each) per engine, engines alternating run by
    run in one process: each run's summed epoch seconds, by name. The engines come warmed."""
    seconds: dict[str, list[float]] = {name: [] for name in engines}
    for r in range(rounds):
        for name, engine in engines.items():
            total = 0.0
            for e, (lr, batch) in enumerate(epochs):
                t = time.perf_counter()
                engine.train_epoch(x, y, lr, batch, (r, e))
                total += time.perf_counter() - t
            seconds[name].append(total)
    return seconds


def _paired_ratio(
    benchmark, seconds: dict, over: str, under: str, batch: int | str, what: str, per: str = "epoch"
) -> float:
    """The median of the per-pair ratios ``over`` / ``under``, recorded and printed. ``batch``: the batch
    size, or a schedule's name for whole runs (``per`` 'run')."""
    pairs = list(zip(seconds[over], seconds[under], strict=True))
    ratio = benchmark.pedantic(lambda: statistics.median(a / b for a, b in pairs), rounds=1, iterations=1)
    benchmark.extra_info.update({"batch_size": batch, **seconds, "median_ratio": ratio})
    label = f"B={batch}" if per == "epoch" else str(batch)
    over_s, under_s = statistics.median(seconds[over]), statistics.median(seconds[under])
    print(f"\n{label}: {what}: {over} {over_s:.3f} s, {under} {under_s:.3f} s per {per}, {ratio:.3f}x")
    return ratio


@pytest.mark.parametrize("batch", [100, 500, 2500], ids=lambda b: f"B{b}")
def test_noise_scale_cost(benchmark, mnist, batch):
    """What the gradient noise scale costs: the engine with each chunk in two parts (the estimate) against
    the same engine with each chunk in one piece, epochs alternating in one process, the median of the
    per-pair ratios. Bound: at most 1.2x (the measured figures: docs/measurements.md)."""
    x_np, y_np = mnist
    x, y = tf.constant(x_np), tf.constant(y_np)
    seconds = _alternating_epochs({"split": _engine(noise=True), "whole": _engine(noise=False)}, x, y, batch)
    ratio = _paired_ratio(
        benchmark, seconds, "split", "whole", batch, "the noise estimate (split) against none"
    )
    assert ratio <= 1.2, f"the noise estimate costs {ratio:.2f}x an epoch at B {batch}"


@pytest.mark.parametrize("every", [1, 8], ids=lambda k: f"every{k}")
@pytest.mark.parametrize("schedule", ["decay", "increase"])
def test_noise_scale_share_of_a_run(benchmark, mnist, schedule, every):
    """The noise estimate's share of a whole run's training time: the MNIST schedule's six epochs (its
    batches and rates) by the engine with the estimate on (on every update, as the suite's runs, or on one
    in 8: RunConfig.noise_every) and off, whole runs alternating in one process, the median of the per-pair
    ratios of their summed epoch seconds. The per-batch figures above say where it comes from; this one is
    what a run pays. Bounds: 1.2x as above for every update; 1.03x for one in 8 (the issue's 1%, with this
    machine's noise)."""
    from reproduction.config import RunConfig

    x_np, y_np = mnist
    x, y = tf.constant(x_np), tf.constant(y_np)
    phases = RunConfig("sgd", schedule, base_lr=0.05).build_schedule().per_epoch()
    engines = {"estimate": _engine(noise_every=every), "none": _engine(noise=False)}
    for engine in engines.values():
        _warm(engine, x, y)
    seconds = _alternating_runs(engines, x, y, [(p.learning_rate, p.batch_size) for p in phases], 3)
    what = f"the noise estimate on one update in {every} against none"
    ratio = _paired_ratio(benchmark, seconds, "estimate", "none", schedule, what, "run")
    assert ratio <= 1.2, f"the noise estimate on one update in {every} costs {ratio:.3f}x a {schedule} run"


@pytest.mark.parametrize("schedule", ["decay", "increase"])
def test_noise_scale_share_of_a_worker_run(benchmark, schedule):
    """The same share where the estimate costs most: in a process with one inter-op thread, as the untimed
    runs train in workers (no idle core for the estimate's ops to overlap). The estimate off, on every
    update (the suite's runs) and on one in 8 (RunConfig.noise_every=8), whole runs alternating in one
    spawned process, 5 rounds. Bounds: one in 8 costs at most 1.05x (the issue asks 1%, which pairs of runs
    on this shared 2-core host cannot resolve: docs/measurements.md), and less than every update in the
    decay run, all of it at B 100, where the split costs most."""
    import concurrent.futures
    import multiprocessing

    from support import noise_cost_single_threaded

    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        seconds = pool.submit(noise_cost_single_threaded, schedule, (1, 8), 5).result()
    ratios = {
        name: statistics.median(a / b for a, b in zip(seconds[name], seconds["none"], strict=True))
        for name in ("every1", "every8")
    }
    benchmark.pedantic(lambda: ratios["every8"], rounds=1, iterations=1)
    benchmark.extra_info.update({"schedule": schedule, **seconds, **ratios})
    print(
        f"\n{schedule}, one thread: "
        + ", ".join(f"{k} {statistics.median(v):.3f} s" for k, v in seconds.items())
        + f" per run; every update {ratios['every1']:.3f}x, one in 8 {ratios['every8']:.3f}x"
    )
    assert ratios["every8"] <= 1.05, (
        f"one update in 8 measured costs {ratios['every8']:.3f}x a {schedule} run"
    )
    if schedule == "decay":
        assert ratios["every8"] < ratios["every1"], "measuring one update in 8 saved nothing"


def test_schedules_wall_clock(benchmark, mnist):
    """What the timing claims will measure, on seeds and rounds no claim reads (their pre-registration):
    the MNIST decay, hybrid and increase runs (SGD, noise estimate on) by one engine, run after run, the
    order rotated each round; the median per-round ratios of their seconds and the increase runs' epoch
    seconds at each batch size (the first epoch, the warm-up, left out; as reproduction/claims/timing.py).
    Asserts only the ordering the paper predicts at its loosest: decay slower than increase."""
    from reproduction.config import RunConfig

    x_np, y_np = mnist
    x, y = tf.constant(x_np), tf.constant(y_np)
    names = ("decay", "hybrid", "increase")
    epochs = {
        n: [
            (p.learning_rate, p.batch_size)
            for p in RunConfig("sgd", n, base_lr=0.05).build_schedule().per_epoch()
        ]
        for n in names
    }
    engine = _engine()
    _warm(engine, x, y)
    seconds: dict[str, list[float]] = {n: [] for n in names}
    by_batch: dict[int, list[float]] = {}
    for r in range(ROUNDS):
        for n in names[r % 3 :] + names[: r % 3]:
            total = 0.0
            for e, (lr, batch) in enumerate(epochs[n]):
                t = time.perf_counter()
                engine.train_epoch(x, y, lr, batch, (100 + r, e))
                total += time.perf_counter() - t
                if n == "increase" and e > 0:
                    by_batch.setdefault(batch, []).append(time.perf_counter() - t)
            seconds[n].append(total)
    ratios = {
        f"{a}/{b}": statistics.median(p / q for p, q in zip(seconds[a], seconds[b], strict=True))
        for a, b in (("decay", "hybrid"), ("hybrid", "increase"), ("decay", "increase"))
    }
    per_batch = {b: statistics.median(v) for b, v in sorted(by_batch.items())}
    benchmark.pedantic(lambda: ratios, rounds=1, iterations=1)
    benchmark.extra_info.update({**seconds, **ratios, "epoch_seconds_by_batch": per_batch})
    print(
        "\nschedules, median run seconds: "
        + ", ".join(f"{n} {statistics.median(seconds[n]):.2f} s" for n in names)
        + "; ratios "
        + ", ".join(f"{k} {v:.3f}x" for k, v in ratios.items())
        + "; increase epochs "
        + ", ".join(f"B{b} {s:.3f} s" for b, s in per_batch.items())
        + (f", B500/B2500 {per_batch[500] / per_batch[2500]:.3f}x" if {500, 2500} <= per_batch.keys() else "")
    )
    assert ratios["decay/increase"] > 1.0, f"decay ran no slower than increase: {ratios}"


@pytest.mark.parametrize("batch", [100, 2500], ids=lambda b: f"B{b}")
def test_generic_engine_against_the_folded_path(benchmark, mnist, batch):
    """What a user's model pays for the generic engine (any Keras classifier, through its own call): the
    report's CNN trained by both, the noise estimate on, epochs alternating, the median per-pair ratio.
    The folded path never computes the convolution's input gradient, the generic one must. Bound: at most
    4x (the measured figures: docs/measurements.md)."""
    from reproduction.classifier import output_kind
    from reproduction.training import GenericEngine

    x_np, y_np = mnist
    x, y = tf.constant(x_np), tf.constant(y_np)
    configure_determinism()
    model = build_cnn(seed=0)
    engines = {
        "folded": _engine(),
        "generic": GenericEngine(model, keras.optimizers.SGD(0.05), output_kind(model)),
    }
    seconds = _alternating_epochs(engines, x, y, batch)
    ratio = _paired_ratio(
        benchmark, seconds, "generic", "folded", batch, "the generic engine against the folded"
    )
    assert ratio <= 4.0, f"the generic engine took {ratio:.2f}x the folded path's epoch at B {batch}"


def test_dask_workers_against_plain_processes(benchmark, mnist_all):
    """The untimed runs' workers (reproduction/cluster.py): two runs on a LocalCluster of two single-threaded
    workers with Dask's defaults, with LOCAL_CLUSTER_CONFIG (no profiler, slow tick, no
    MALLOC_TRIM_THRESHOLD_),
    and in two plain single-threaded spawned processes; training seconds per run (start-up excluded)."""
    import concurrent.futures
    import multiprocessing

    from reproduction import cluster
    from reproduction.config import RunConfig

    configs = [RunConfig("momentum", "decay", k, base_lr=0.006) for k in range(2)]
    seconds = {}
    defaults = {
        "distributed.worker.profile.enabled": True,
        "distributed.admin.tick.interval": "20ms",
        "distributed.worker.memory.monitor-interval": "100ms",
        "distributed.admin.system-monitor.interval": "500ms",
        "distributed.nanny.pre-spawn-environ": {
            "MALLOC_TRIM_THRESHOLD_": 65536,
            "OMP_NUM_THREADS": 1,
            "MKL_NUM_THREADS": 1,
            "OPENBLAS_NUM_THREADS": 1,
        },
    }
    for name, override in (("dask defaults", defaults), ("LOCAL_CLUSTER_CONFIG", {})):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(cluster, "LOCAL_CLUSTER_CONFIG", {**cluster.LOCAL_CLUSTER_CONFIG, **override})
            seconds[name] = [
                r.train_seconds for r in cluster.train_on_cluster(configs, cluster.MnistSource(), workers=2)
            ]
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        runs = pool.map(train_single_threaded, [c.to_dict() for c in configs], [mnist_all] * len(configs))
        seconds["plain processes"] = [r["totals"]["train_seconds"] for r in runs]
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    benchmark.extra_info.update(seconds)
    print("\n" + "; ".join(f"{k}: {', '.join(f'{s:.1f}' for s in v)} s" for k, v in seconds.items()))
    assert statistics.median(seconds["LOCAL_CLUSTER_CONFIG"]) < 1.2 * statistics.median(
        seconds["plain processes"]
    )


def test_keras_recipe_fit_against_the_engine(benchmark, mnist_all):
    """BatchSizeScheduler in model.fit (reproduction/fit.py) against the engine on the same config (momentum,
    increase, seed 0): wall clock, per-epoch train loss, and a fit with B 100 throughout for scale."""
    import numpy as np

    from reproduction.config import RunConfig
    from reproduction.fit import BatchSizeScheduler
    from reproduction.optimizers import get_optimizer
    from reproduction.training import Trainer

    x, y, _, _ = mnist_all
    engine = Trainer(mnist_all).train(RunConfig("momentum", "increase", seed=0))
    out = {}
    for schedule in ("increase", "constant"):
        config = RunConfig("momentum", schedule, seed=0)
        model = build_cnn(config.model, seed=0)
        model.compile(get_optimizer("momentum").build(), "sparse_categorical_crossentropy")
        scheduler = BatchSizeScheduler(config.build_schedule(), seed=0)
        start = time.perf_counter()
        history = model.fit(
            scheduler.dataset(x, y), epochs=6, callbacks=[scheduler], verbose=0, shuffle=False
        )
        seconds = time.perf_counter() - start
        deviation = np.array(history.history["loss"]) / [e.train_loss for e in engine.epochs] - 1
        out[schedule] = {"seconds": seconds, "max_train_loss_deviation": float(np.max(np.abs(deviation)))}
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    benchmark.extra_info.update({"engine_train_seconds": engine.train_seconds, **out})
    print(
        f"\nengine {engine.train_seconds:.1f} s; fit with the increase schedule "
        f"{out['increase']['seconds']:.1f} s, train loss within "
        f"{100 * out['increase']['max_train_loss_deviation']:.3f}% of the engine's; fit at B 100 throughout "
        f"{out['constant']['seconds']:.1f} s, {100 * out['constant']['max_train_loss_deviation']:.0f}% off"
    )
    assert out["increase"]["max_train_loss_deviation"] < 0.005 < out["constant"]["max_train_loss_deviation"]


def test_shared_prefixes_against_whole_runs(benchmark, mnist_all):
    """What sharing first epochs saves (reproduction/sharing.py): a family of the MNIST schedules (SGD;
    decay, hybrid, increase and the constant control) trained run by run, and as a tree from its shared
    prefixes, by one Trainer, families alternating, on seeds no claim reads; wall clock per family,
    evaluation and snapshots included, on 20,000 of the training images. The epochs alone predict 16/24;
    bound: at most 0.8x."""
    from reproduction.config import RunConfig
    from reproduction.sharing import Prefixes, share
    from reproduction.training import Trainer

    trainer = Trainer(mnist_all)
    schedules = ("decay", "hybrid", "increase", "constant")

    def family(seed):
        return [RunConfig("sgd", s, seed=seed, base_lr=0.05, train_examples=20_000) for s in schedules]

    def whole(configs):
        return [trainer.train(c) for c in configs]

    def shared(configs):
        prefixes = Prefixes(
            share(configs), lambda p, parent: trainer.train_prefix(p.config, p.epochs, parent)
        )
        return [trainer.train(c, start=prefixes.start(c)) for c in configs]

    whole(family(99))  # traces and warms the engine
    seconds: dict[str, list[float]] = {"shared": [], "whole": []}
    for r in range(3):
        for name, train in (("shared", shared), ("whole", whole))[:: 1 if r % 2 else -1]:
            t = time.perf_counter()
            train(family(200 + r))
            seconds[name].append(time.perf_counter() - t)
    ratio = _paired_ratio(
        benchmark, seconds, "shared", "whole", "family", "shared prefixes against whole runs", "family"
    )
    assert ratio <= 0.8, f"sharing first epochs took {ratio:.3f}x the whole runs' time"


BLOCK_ROUNDS = 4


def test_timed_blocks_interleaved_against_back_to_back(benchmark, mnist_all):
    """Why a timed block interleaves its runs' epochs (training.Trainer.train_timed): the spread, over
    blocks, of the log ratio the wall-clock claims test (decay / increase train seconds), for blocks whose
    runs train back to back against blocks whose epochs interleave; the same runs (SGD, seeds 100+ that no
    claim reads), the two designs alternating round by round. Asserts only the ratio the claims predict at
    its loosest, decay slower than increase, in the interleaved blocks; the spreads are the measurement."""
    from reproduction.config import RunConfig
    from reproduction.training import Trainer

    trainer = Trainer(mnist_all)
    log_ratios: dict[str, list[float]] = {"back-to-back": [], "interleaved": []}
    for r in range(BLOCK_ROUNDS):
        block = [RunConfig("sgd", s, seed=100 + r) for s in ("decay", "hybrid", "increase")]
        for name in sorted(log_ratios, reverse=r % 2 == 1):
            if name == "interleaved":
                decay, _, increase = trainer.train_timed(block)
            else:
                decay, _, increase = (trainer.train(c) for c in block)
            log_ratios[name].append(float(np.log(decay.train_seconds / increase.train_seconds)))
    spread = {n: float(np.std(v, ddof=1)) for n, v in log_ratios.items()}
    benchmark.pedantic(lambda: spread["interleaved"], rounds=1, iterations=1)
    benchmark.extra_info.update(log_ratios=log_ratios, sd_of_log_ratio=spread)
    print(
        "\ndecay / increase per block: "
        + "; ".join(
            f"{n} median {np.exp(np.median(v)):.3f}x, sd of the log ratio {spread[n]:.3f}"
            for n, v in log_ratios.items()
        )
    )
    assert np.median(log_ratios["interleaved"]) > 0, f"decay ran no slower than increase: {log_ratios}"

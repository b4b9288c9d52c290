"""Where a training step's time goes: one 60k-image epoch of stripped-down steps, one TensorFlow thread, B
100.

A plain script, not a test (it asserts nothing; docs/engine.md reads its table, docs/measurements.md keeps it
with its date). Run it alone on the machine, from the repository root:

    python benchmarks/profile_step.py          # about 2 minutes
    python benchmarks/profile_step.py --ops    # the engine's step op by op (TensorFlow's profiler)

Each variant is one traced epoch of 600 steps over the real MNIST training set: the engine as runs train
it (with and without the noise estimate), then the bare model's step and its parts, then alternatives that
were tried (XLA, a depthwise convolution, im2col through extract_patches). Median of three epochs after one
warm-up epoch.
"""

from __future__ import annotations

import collections
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# as reproduction/__init__.py sets it, which loads only after keras here
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from reproduction.data import load_mnist  # noqa: E402
from reproduction.model import ModelOptions, build_cnn, micro_batch_size  # noqa: E402
from reproduction.training import Engine, configure_determinism  # noqa: E402

B = 100


def bare_epoch(step):
    """An epoch function for a step(x, y) of the bare model (no optimizer: plain gradient descent)."""

    @tf.function
    def epoch(x, y):
        n = tf.shape(x)[0]
        order = tf.argsort(tf.random.stateless_uniform([n], seed=[0, 0]))
        total = tf.constant(0.0)
        for i in tf.range(n // B):
            idx = order[i * B : (i + 1) * B]
            total += step(tf.gather(x, idx), tf.gather(y, idx))
        return total

    return epoch


def bare_steps():
    """The bare model's step and its parts, and the alternatives tried."""
    k = tf.Variable(tf.random.normal([3, 3, 1, 8], seed=1) * 0.3)
    b = tf.Variable(tf.zeros([8]))
    dk = tf.Variable(tf.random.normal([1352, 10], seed=2) * 0.03)
    db = tf.Variable(tf.zeros([10]))
    variables = [k, b, dk, db]
    conv = {
        "conv2d": lambda x: tf.nn.conv2d(x, k, 1, "VALID"),
        "depthwise": lambda x: tf.nn.depthwise_conv2d(x, k, [1, 1, 1, 1], "VALID"),
        "extract_patches": lambda x: tf.einsum(
            "nhwk,kf->nhwf",
            tf.image.extract_patches(x, [1, 3, 3, 1], [1] * 4, [1] * 4, "VALID"),
            tf.reshape(k, [9, 8]),
        ),
    }

    def logits(x, kind="conv2d"):
        h = tf.nn.max_pool2d(conv[kind](x) + b, 2, 2, "VALID")
        return tf.matmul(tf.reshape(h, [-1, 1352]), dk) + db

    def train(kind, jit=False):
        def grads(x, y):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits(x, kind)))
            return loss, tape.gradient(loss, variables)

        grads = tf.function(grads, jit_compile=True) if jit else grads

        def step(x, y):
            loss, g = grads(x, y)
            for v, d in zip(variables, g, strict=True):
                v.assign_sub(0.01 * d)
            return loss

        return step

    return {
        "bare model: conv forward only": lambda x, y: tf.reduce_sum(conv["conv2d"](x)[:, 0, 0, 0]),
        "bare model: conv + pool forward": lambda x, y: tf.reduce_sum(
            tf.nn.max_pool2d(conv["conv2d"](x), 2, 2, "VALID")[:, 0, 0, 0]
        ),
        "bare model: forward and loss": lambda x, y: tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits(x))
        ),
        "bare model: training step (conv2d)": train("conv2d"),
        "bare model: training step, depthwise convolution": train("depthwise"),
        "bare model: training step, im2col (extract_patches)": train("extract_patches"),
        "bare model: training step, XLA (jit_compile)": train("conv2d", jit=True),
    }


def timed(fn, rounds=3) -> float:
    fn()
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def op_table(engine, x, y) -> collections.Counter:
    """Milliseconds per step of each op of one profiled epoch on x, y, from the trace that TensorFlow's
    profiler writes (names without their loop prefixes; the profiler's own overhead included)."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    steps = len(x) // B
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        engine.train_epoch(x, y, 0.05, B, (0, 1))
        tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace.FromString(next(Path(logdir).rglob("*.xplane.pb")).read_bytes())
    per_op: collections.Counter = collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            if line.name.startswith("tf_Compute"):  # the executor's threads: one event per op run
                for event in line.events:
                    name = plane.event_metadata[event.metadata_id].name.rsplit("/", 1)[-1]
                    if not name.startswith("ExecutorState"):
                        per_op[name] += event.duration_ps / 1e9 / steps
    return per_op


def print_ops(x, y) -> None:
    engine = Engine(build_cnn(), keras.optimizers.SGD(0.05), micro_batch_size(ModelOptions()))
    engine.warm_up(x, y)
    engine.train_epoch(x, y, 0.05, B, (0, 0))
    x, y = x[:10_000], y[:10_000]
    wall = timed(lambda: engine.train_epoch(x, y, 0.05, B, (0, 0))) / (len(x) // B) * 1e3
    per_op = op_table(engine, x, y)
    print(f"| op (the engine as runs train it, one thread, B {B}) | ms per step |")
    print("|---|---|")
    for name, ms in per_op.most_common(12):
        print(f"| {name} | {ms:.3f} |")
    print(f"| all {len(per_op)} ops, profiled | {sum(per_op.values()):.3f} |")
    print(f"| the step's wall time, not profiled | {wall:.3f} |")


def main() -> int:
    x_np, y_np, _, _ = load_mnist().preprocessed()
    x, y = tf.constant(x_np), tf.constant(y_np)
    configure_determinism()
    if "--ops" in sys.argv[1:]:
        print_ops(x, y)
        return 0
    rows = []
    for noise in (True, False):
        keras.utils.set_random_seed(0)
        engine = Engine(
            build_cnn(), keras.optimizers.SGD(0.05), micro_batch_size(ModelOptions()), noise=noise
        )
        engine.warm_up(x, y)
        label = "engine as runs train it" + ("" if noise else ", without the noise estimate")
        rows.append((label, timed(lambda e=engine: e.train_epoch(x, y, 0.05, B, (0, 0)))))
    for label, step in bare_steps().items():
        epoch = bare_epoch(step)
        try:
            rows.append((label, timed(lambda e=epoch: e(x, y).numpy())))
        except tf.errors.UnimplementedError as exc:  # XLA under op determinism: no deterministic MaxPoolGrad
            rows.append((f"{label}: not run ({type(exc).__name__} under op determinism)", float("nan")))
    print(f"| variant (one thread, B {B}, one 60k epoch) | seconds | vs the engine |")
    print("|---|---|---|")
    for label, seconds in rows:
        print(f"| {label} | {seconds:.3f} | {seconds / rows[0][1]:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""One run on many devices or machines with tf.distribute: synchronous data parallel, equal to one device.

Strategies (``make_strategy``):
  * "default": ``tf.distribute.get_strategy()``, one device; the engine exactly as without a strategy;
  * "mirrored": ``MirroredStrategy`` over this machine's devices, or over ``replicas`` logical CPU devices
    (for tests and for trying it on a laptop; must be set before TensorFlow initializes its devices);
  * "multi-worker": ``MultiWorkerMirroredStrategy``, one process per worker, the cluster read from
    ``TF_CONFIG`` as any launcher sets it (``reproduction launch`` on one machine, Kubernetes, Ray Train).

How one update is split (reproduction/training.py): replica r of R takes the contiguous slice
[r*B/R, (r+1)*B/R) of the global batch B, so its virtual batches are exactly the single-device ones; its loss
is its per-example losses summed and divided by the *global* B; the optimizer sums the replicas' gradients
(the global batch's mean gradient) and applies one update everywhere; the ghost-BN moving statistics are
averaged over the replicas (their variables' aggregation is "mean"). What differs from one device is the
order of float additions only, so the results agree to rounding, not bit for bit (tests/test_distribute.py
states the tolerances). A batch that does not split into whole virtual batches per replica is refused
(``check_split``): it would change the normalization, hence the model.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

from reproduction.errors import UsageError

STRATEGIES = ("default", "mirrored", "multi-worker")


def check_strategy(kind: str, replicas: int | None = None) -> str:
    """A known strategy name; ``replicas`` (logical CPU devices) only with "mirrored". No TensorFlow import,
    so a command refuses bad input before starting it."""
    if kind not in STRATEGIES:
        raise UsageError(f"strategy={kind!r}: expected one of {list(STRATEGIES)}")
    if replicas is not None and kind != "mirrored":
        raise UsageError(
            f"replicas={replicas}: only the 'mirrored' strategy takes a number of replicas (logical CPU "
            f"devices); strategy={kind!r}"
        )
    return kind


def check_split(
    batch_sizes: Iterable[int], n_train: int, replicas: int, normalization: str, virtual_batch_size: int
) -> None:
    """Every batch of every epoch (the last one of an epoch holds N mod B examples) must split into
    ``replicas`` equal slices of whole virtual batches; plain BN, whose statistics span the whole batch,
    is one device only."""
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 1:
        raise UsageError(f"replicas={replicas!r}: expected a positive integer")
    if replicas == 1:
        return
    if normalization == "batch":
        raise UsageError(
            f"normalization='batch' with replicas={replicas}: plain batch normalization takes its statistics "
            "over the whole batch, which replicas do not share; use 'ghost' or 'none'"
        )
    unit = virtual_batch_size if normalization == "ghost" else 1
    for batch in sorted(set(batch_sizes)):
        for size, what in (
            (batch, f"batch {batch}"),
            (n_train % batch, f"the last batch of an epoch at batch {batch} ({n_train} examples)"),
        ):
            if size and size % (replicas * unit):
                per = f"{size / replicas:g} examples per replica"
                raise UsageError(
                    f"{what} does not split over replicas={replicas} into whole virtual batches of {unit} "
                    f"({per}): use batch sizes (and a training-set size) that are multiples of replicas x "
                    f"virtual batch size = {replicas * unit}"
                )


def tf_config() -> dict[str, Any]:
    """The cluster of a multi-worker run, from $TF_CONFIG; a clear error where it is missing or malformed."""
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise UsageError(
            "strategy 'multi-worker' needs TF_CONFIG in the environment (a JSON cluster and task, as "
            "'reproduction launch', Kubernetes or Ray Train set it)"
        )
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config["task"]
        if not (
            isinstance(cluster["worker"], list)
            and isinstance(cluster.get("chief", []), list)
            and task["type"] in ("worker", "chief")
            and isinstance(task["index"], int)
            and 0 <= task["index"] < len(cluster.get(task["type"], []))
            and all(_is_address(a) for a in (*cluster["worker"], *cluster.get("chief", [])))
        ):
            raise ValueError
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(
            f"TF_CONFIG={text!r}: expected {{'cluster': {{'worker': ['host:port', ...]}}, "
            "'task': {'type': 'worker', 'index': i}}, i an index into the task type's list and each port "
            "1-65535 (a 'chief' list is optional)"
        ) from exc
    return config


def _is_address(address) -> bool:
    """'host:port' with a port TensorFlow's server can bind."""
    host, _, port = str(address).rpartition(":")
    return bool(host) and port.isdigit() and 1 <= int(port) <= 65535


def cluster_size(config: dict[str, Any]) -> int:
    """Worker processes in a TF_CONFIG cluster, the chief included."""
    return len(config["cluster"].get("chief", [])) + len(config["cluster"]["worker"])


def logical_cpus(n: int) -> None:
    """Split this process's CPU into ``n`` logical devices (before TensorFlow initializes them)."""
    import tensorflow as tf

    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise UsageError(f"replicas={n!r}: expected a positive integer")
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)
    except RuntimeError as exc:
        if len(tf.config.list_logical_devices("CPU")) == n:
            return
        raise UsageError(
            f"replicas={n}: logical CPU devices must be configured before TensorFlow initializes (set them "
            "first in a fresh process)"
        ) from exc


def make_strategy(kind: str = "default", replicas: int | None = None):
    """A tf.distribute strategy by name. ``replicas`` (mirrored only): that many logical CPU devices."""
    import tensorflow as tf

    check_strategy(kind, replicas)
    if kind == "default":
        return tf.distribute.get_strategy()
    if kind == "mirrored":
        if replicas is not None:
            logical_cpus(replicas)
            return tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(replicas)])
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.MirroredStrategy([d.name for d in gpus] if gpus else ["/cpu:0"])
    tf_config()
    return tf.distribute.MultiWorkerMirroredStrategy()


def describe(strategy) -> dict[str, Any]:
    """What a run's metadata records of its strategy: name, replicas in sync, worker processes."""
    import tensorflow as tf

    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        name, workers = "multi-worker", cluster_size(tf_config())
    elif isinstance(strategy, tf.distribute.MirroredStrategy):
        name, workers = "mirrored", 1
    else:
        name, workers = "default", 1
    return {"strategy": name, "replicas": strategy.num_replicas_in_sync, "workers": workers}


def is_chief(strategy) -> bool:
    """The one process that writes a multi-worker run's result (worker 0, as TensorFlow's convention)."""
    import tensorflow as tf

    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    config = tf_config()
    task = config["task"]
    if config["cluster"].get("chief"):
        return task["type"] == "chief"
    return task["index"] == 0

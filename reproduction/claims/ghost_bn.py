"""Ghost batch norm normalizes each virtual batch on its own statistics (an exact check against Keras's
BatchNormalization applied per slice).
"""

from __future__ import annotations

import numpy as np

from reproduction.claims.base import Plan, Runs, exact, register
from reproduction.stats import Verdict


def ghost_bn_deviation(virtual_batch_size: int, x: np.ndarray, epsilon: float = 1e-3) -> dict[str, float]:
    """Normalize ``x`` (gamma 1, beta 0) in training mode and measure, over virtual batches and channels, the
    largest |mean|, the largest |var - var_in/(var_in + eps)|, and the largest distance to an independent
    oracle: Keras's own BatchNormalization applied to each virtual batch on its own."""
    import keras

    from reproduction.ghost_batch_norm import GhostBatchNormalization

    layer = GhostBatchNormalization(virtual_batch_size, epsilon=epsilon)
    out = np.asarray(layer(x, training=True))
    axes = tuple(range(x.ndim - 1))
    worst = {"mean": 0.0, "variance": 0.0, "oracle": 0.0}
    oracle = keras.layers.BatchNormalization(epsilon=epsilon)  # training output ignores its moving stats
    for lo in range(0, len(x), virtual_batch_size):
        xs, ys = x[lo : lo + virtual_batch_size], out[lo : lo + virtual_batch_size]
        var_in = xs.astype(np.float64).var(axis=axes)
        worst["mean"] = max(worst["mean"], float(np.abs(ys.mean(axis=axes)).max()))
        worst["variance"] = max(
            worst["variance"], float(np.abs(ys.var(axis=axes) - var_in / (var_in + epsilon)).max())
        )
        worst["oracle"] = max(
            worst["oracle"], float(np.abs(np.asarray(oracle(xs, training=True)) - ys).max())
        )
    return worst


GHOST_BN_TOLERANCE = {"mean": 1e-4, "variance": 1e-3, "oracle": 1e-5}


@register(
    id="ghost-bn-per-virtual-batch",
    source="design card; Hoffer et al. 2017; paper Sec. 5",
    statement="ghost batch norm normalizes each virtual batch on its own statistics",
    quantity="per-virtual-batch mean and variance of the training output; distance to plain BN per slice",
    bound="|mean| < 1e-4, |var - v/(v+eps)| < 1e-3 per virtual batch and channel; equal to the oracle to "
    "1e-5",
    test="exact numerical check on three fixed inputs (hypothesis-generated ones in tests/)",
    would_fail_if="the layer normalizing with whole-batch statistics, or a wrong moving-statistics rule",
    params=("v10-b100", "v10-b2500", "v10-b105"),
)
def eval_ghost_bn(plan: Plan | None = None, runs: Runs | None = None) -> list[Verdict]:
    """Report's setting: a batch of 100 real-scale inputs whose virtual batches have different
    distributions."""
    rng = np.random.default_rng(0)
    out = []
    for v, batch in ((10, 100), (10, 2500), (10, 105)):
        shift = np.repeat(rng.normal(0, 2, size=(-(-batch // v), 1, 1, 1)), v, axis=0)[:batch]
        x = (rng.normal(size=(batch, 28, 28, 1)) * (1 + np.abs(shift)) + shift).astype(np.float32)
        dev = ghost_bn_deviation(v, x)
        ok = all(dev[k] < GHOST_BN_TOLERANCE[k] for k in dev)
        out.append(
            exact(
                "ghost-bn-per-virtual-batch",
                f"v{v}-b{batch}",
                ok,
                dev["oracle"],
                f"deviations < {GHOST_BN_TOLERANCE}",
                detail=", ".join(f"max |{k}| {val:.2g}" for k, val in dev.items()),
            )
        )
    return out

"""A roofline for one training epoch of the report's CNN: the least time this machine's arithmetic and
memory bandwidth allow, to set the engine's epoch against (docs/engine.md; `pytest
benchmarks/test_engine_speed.py -k roofline`).

Pure arithmetic, no TensorFlow. The model follows the engine's step (reproduction/training.py with the
folded normalization of model.forward), per image, layer by layer, forward then backward:

  gather      the batch from the training set: read the image, write it
  ghost BN    standardize: read x twice (mean, then variance of the centred values), write x_hat;
              ~5 FLOP a pixel
  conv        3x3 'valid', 1 -> F channels on x_hat (the BN fold makes gamma, beta part of the filter)
  max pool    2x2: read the conv output, write the pooled one
  dense       flatten -> 10 logits; softmax cross-entropy on 10 values
  backward    dense: weight gradient and input gradient; max pool: read input, output and gradient, write
              the input gradient; conv: the filter gradient only (no input gradient: nothing trainable is
              below it); ghost BN: none (x_hat depends on no trainable weight)
  per update  the weights, their gradient and the optimizer's slots, read and written once (divided by B)

Traffic counts every tensor a layer reads or writes as memory traffic: a layer-by-layer implementation
that keeps nothing in cache between layers. A fused or cache-resident one moves less, so the memory bound
from DRAM bandwidth is a bound for the first kind; the benchmark also reports the bound at the bandwidth of
cache-sized arrays. FLOPs count multiply and add apart (a multiply-add is 2).
"""

from __future__ import annotations

import dataclasses

FLOAT = 4  # bytes of a float32


@dataclasses.dataclass(frozen=True)
class Cost:
    """One layer's work for one image (or, for ``per update`` rows, one parameter update)."""

    layer: str
    direction: str  # "forward", "backward", or "update"
    flops: float
    bytes_read: float
    bytes_written: float

    @property
    def bytes(self) -> float:
        return self.bytes_read + self.bytes_written


def training_costs(
    filters: int = 8,
    image: int = 28,
    kernel: int = 3,
    pool: int = 2,
    classes: int = 10,
    optimizer_slots: int = 1,
) -> list[Cost]:
    """Per-image costs of one training step (``update`` rows: per parameter update, not per image).
    ``optimizer_slots``: state tensors per weight (SGD 0, momentum 1, Adam 2)."""
    pixels = image * image
    conv_side = image - kernel + 1
    conv_out = conv_side * conv_side * filters
    pooled = (conv_side // pool) ** 2 * filters
    conv_flops = 2 * kernel * kernel * conv_out  # one input channel
    dense_flops = 2 * pooled * classes
    weights = kernel * kernel * filters + filters + pooled * classes + classes + 2  # conv, dense, gamma, beta
    f = FLOAT
    return [
        Cost("gather", "forward", 0, pixels * f, pixels * f),
        Cost("ghost BN", "forward", 5 * pixels, 2 * pixels * f, pixels * f),
        Cost("conv", "forward", conv_flops, pixels * f, conv_out * f),
        Cost("max pool", "forward", conv_out, conv_out * f, pooled * f),
        Cost("dense + softmax", "forward", dense_flops + 5 * classes, pooled * f, classes * f),
        Cost("dense", "backward", 2 * dense_flops, (pooled + classes) * f, pooled * f),
        Cost("max pool", "backward", conv_out, (conv_out + 2 * pooled) * f, conv_out * f),
        Cost("conv", "backward", conv_flops, (pixels + conv_out) * f, 0),
        Cost(
            "weights",
            "update",
            (4 + 2 * optimizer_slots) * weights,
            (3 + optimizer_slots) * weights * f,
            (1 + optimizer_slots) * weights * f,
        ),
    ]


def epoch_work(costs: list[Cost], examples: int, batch: int) -> tuple[float, float]:
    """(FLOPs, bytes) of one epoch of ``examples`` images in updates of ``batch``."""
    updates = -(-examples // batch)
    flops = sum(c.flops * (updates if c.direction == "update" else examples) for c in costs)
    traffic = sum(c.bytes * (updates if c.direction == "update" else examples) for c in costs)
    return flops, traffic


def epoch_bounds(
    costs: list[Cost], examples: int, batch: int, flops_per_second: float, bytes_per_second: float
) -> dict[str, float]:
    """Seconds an epoch needs at least: by arithmetic, by memory traffic, and the larger (the roofline)."""
    if flops_per_second <= 0 or bytes_per_second <= 0:
        raise ValueError(f"rates must be positive, got {flops_per_second} FLOP/s and {bytes_per_second} B/s")
    flops, traffic = epoch_work(costs, examples, batch)
    compute, memory = flops / flops_per_second, traffic / bytes_per_second
    return {
        "flops": flops,
        "bytes": traffic,
        "compute_seconds": compute,
        "memory_seconds": memory,
        "bound_seconds": max(compute, memory),
    }

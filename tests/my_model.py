"""A model the suite has never seen, through its claims: a workload of your own (docs/your-model.md).

Run the claims on it from the directory that holds this module (the project root here):

    reproduction calibrate --workload tests.my_model:workload --seeds 5
    reproduction reproduce --workload tests.my_model:workload --profile quick --seeds 2
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from reproduction.workloads import Control, Profile, Workload

CLASSES, FEATURES = 10, 16


def load_data():
    """Ten overlapping Gaussian classes in 16 dimensions: 2000 training and 1000 test examples."""
    rng = np.random.default_rng(7)
    centres = rng.normal(0.0, 1.0, size=(CLASSES, FEATURES))

    def draw(n):
        y = rng.integers(0, CLASSES, size=n)
        return (centres[y] + rng.normal(0.0, 1.0, size=(n, FEATURES))).astype(np.float32), y

    return (*draw(2000), *draw(1000))


def build_model(seed: int):
    """Dense(64) -> ghost batch norm (virtual batch 10) -> ReLU -> Dense(10) logits; weights from the seed."""
    import keras

    from reproduction.ghost_batch_norm import GhostBatchNormalization

    draw = random.Random(seed)  # each initializer's own seed: the weights depend on ``seed`` alone

    def init():
        return keras.initializers.GlorotUniform(seed=draw.randint(1, 10**9))

    return keras.Sequential(
        [
            keras.Input(shape=(FEATURES,)),
            keras.layers.Dense(64, kernel_initializer=init()),
            GhostBatchNormalization(virtual_batch_size=10),
            keras.layers.ReLU(),
            keras.layers.Dense(CLASSES, kernel_initializer=init()),  # logits
        ],
        name="my_model",
    )


def workload() -> Workload:
    return Workload(
        name="my-model",  # replaced by how it is asked for: tests.my_model:workload
        title="Gaussian classes, a ghost-BN MLP",
        dataset="gaussian-classes",  # a label: load_data gives the arrays
        n_train=2000,
        # `reproduction tune --seeds 3` (seeds 3000-3002): sgd 1 (91.97%), momentum 0.1 (91.80%)
        base_lr={"sgd": 1.0, "momentum": 0.1},
        profiles={
            "quick": Profile("quick", seeds=3, timed_seeds=1, full=False, all_controls=False),
            "full": Profile("full", seeds=5, timed_seeds=2),
        },
        preregistration=Path(__file__).with_name("my_model.json"),  # written by `reproduction calibrate`
        base_batch=20,  # batches 20, 100, 500: whole virtual batches of 10
        factor=5,
        steps=3,
        epochs_per_step=2,
        controls=(
            Control("constant", "no annealing: eps and B 20 throughout", "train_loss", +1, "constant"),
        ),
        build_model=build_model,
        load_data=load_data,
        notes="synthetic: ten Gaussian classes in 16 dimensions, 2000 training and 1000 test examples",
    )

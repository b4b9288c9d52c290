"""Variants of tests/my_model.py's model that the engine must refuse or treat apart
(tests/test_classifier.py); in a file of their own, so their workloads' fingerprints differ from its."""

from __future__ import annotations

import keras

from reproduction.ghost_batch_norm import GhostBatchNormalization


def _mlp(norm) -> keras.Model:
    return keras.Sequential(
        [keras.Input(shape=(16,)), keras.layers.Dense(64), norm, keras.layers.ReLU(), keras.layers.Dense(10)]
    )


def ghost_of_8(seed: int) -> keras.Model:
    """Virtual batches of 8: the workload's batches of 20 are not whole ones."""
    keras.utils.set_random_seed(seed)
    return _mlp(GhostBatchNormalization(virtual_batch_size=8))


def plain_batch_norm(seed: int) -> keras.Model:
    """Keras's BatchNormalization: the whole batch coupled, no noise estimate."""
    keras.utils.set_random_seed(seed)
    return _mlp(keras.layers.BatchNormalization(name="bn"))


def gpu_workload():
    """tests/my_model.py's workload, asking each run's worker for a GPU (a Dask worker resource)."""
    import dataclasses

    from reproduction.workloads import get_workload

    return dataclasses.replace(get_workload("tests.my_model:workload"), resources={"GPU": 1})


def with_dropout(seed: int) -> keras.Model:
    """Dropout after the ghost batch norm: a random state (its seed generator's) besides the weights."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input(shape=(16,)),
            keras.layers.Dense(64),
            GhostBatchNormalization(virtual_batch_size=10),
            keras.layers.ReLU(),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(10),
        ]
    )


def one_phase_workload():
    """tests/my_model.py's workload with a single phase: no schedule anneals, so it is refused."""
    import dataclasses

    from reproduction.workloads import get_workload

    return dataclasses.replace(get_workload("tests.my_model:workload"), steps=1)


def _raise(*args):
    raise RuntimeError("boom")


def raising_workload():
    """tests/my_model.py's workload whose build_model and load_data raise (a user's bug)."""
    import dataclasses

    from reproduction.workloads import get_workload

    return dataclasses.replace(get_workload("tests.my_model:workload"), build_model=_raise, load_data=_raise)


def exiting_workload():
    """A workload function that ends the process instead of returning."""
    import sys

    sys.exit(0)

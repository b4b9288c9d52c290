"""CIFAR-10 with Wide ResNet-16-4 and ghost batch norm (virtual batch 128): the paper's own experiment
(Smith et al. 2018, Sec. 5.1), for a machine with GPUs. Not run on this project's CPUs: nothing here is
tuned or calibrated yet, and the claims refuse to judge it until ``reproduction calibrate`` has written
cifar10.json (docs/cifar10.md says how, and what the paper reported).

Data: the official python-version batches from ``--data-dir`` (reproduction/cifar10.py), never downloaded.
Model: reproduction/wide_resnet.py, 2,748,890 trainable parameters, L2 5e-4 on the kernels. Schedules:
SGD with momentum 0.9 at the WRN recipe's rate 0.1, base batch 128, factor 5, four phases of 50 epochs
(200 epochs; the paper steps at 60, 120 and 160, which this suite's equal phases cannot express): decay
78,200 updates (the paper: about 80,000), increase 24,500 (the paper's phases: about 29,000).
"""

from __future__ import annotations

from pathlib import Path

from reproduction.workloads import Profile, Workload


def build_model(seed: int):
    from reproduction.wide_resnet import build_wide_resnet  # TensorFlow only where a run trains

    return build_wide_resnet(depth=16, width=4, virtual_batch_size=128, seed=seed)


WORKLOAD = Workload(
    name="cifar10",
    title="CIFAR-10 (Wide ResNet-16-4)",
    dataset="cifar10",
    n_train=50_000,
    base_lr={"momentum": 0.1},  # the WRN recipe's, as the paper took it; not tuned here
    profiles={
        "quick": Profile("quick", seeds=2, timed_seeds=1, full=False),
        "full": Profile("full", seeds=5, timed_seeds=2),
    },
    preregistration=Path(__file__).with_name("cifar10.json"),  # `reproduction calibrate --workload cifar10`
    base_batch=128,
    factor=5,
    steps=4,
    epochs_per_step=50,
    build_model=build_model,
    resources={"GPU": 1},
    notes="CIFAR-10, the official 50000 training and 10000 test images (python-version batches), each "
    "channel standardized by the training set's statistics, no augmentation (the paper used crops and "
    "flips); four equal phases of 50 epochs (the paper: 60, 60, 40, 40)",
)

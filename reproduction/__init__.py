"""batch-size-repro: Smith et al. (ICLR 2018), 'Don't Decay the Learning Rate, Increase the Batch Size',
reproduced on MNIST with the CS 5824 group report's small CNN.

Modules, in the direction data flows: config -> data, model (ghost_batch_norm), schedules, optimizers ->
training -> store -> claims, stats -> report, figures; cli ties them together.
"""

import os

# TensorFlow's C++ start-up chatter (CPU feature notes) drowns the suite's own output. Its note that oneDNN
# is on still prints in every process: set explicitly (below), it is logged before the level applies.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TensorFlow turns its oneDNN CPU kernels on by default only on CPUs it recognizes: on an AMD EPYC they were
# off and a B-100 epoch took 6.0 s instead of 2.0 s (benchmarks/test_engine_speed.py::test_onednn_kernels).
# Reruns stay bit-identical with them; each run's metadata records the setting.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

__version__ = "0.1.0"

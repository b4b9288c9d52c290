"""batch-size-repro: Smith et al. (ICLR 2018), 'Don't Decay the Learning Rate, Increase the Batch Size',
reproduced on MNIST with the CS 5824 group report's small CNN.

Modules, in the direction data flows: config -> data, model (ghost_batch_norm), schedules, optimizers ->
training -> store -> claims, stats -> report, figures; cli ties them together.
"""

import os

# TensorFlow's C++ start-up chatter (oneDNN, CPU feature notes) drowns the suite's own output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

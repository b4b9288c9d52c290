"""Wide ResNet (Zagoruyko & Komodakis 2016) with ghost batch norm: the paper's CIFAR-10 model, WRN-16-4 with
virtual batches of 128 (Smith et al. 2018, Sec. 5.1).

    conv3x3(16) -> 3 groups of n = (depth - 4) / 6 pre-activation blocks, widths 16k, 32k, 64k, strides 1,
    2, 2 -> norm -> ReLU -> global average pool -> Dense(classes) logits

A block is norm -> ReLU -> conv3x3 -> norm -> ReLU -> conv3x3, added to its input, or to a 1x1 convolution
of the first activation where the width or stride changes. Convolutions have no bias (the normalization
after each takes its place); every normalization is ghost batch norm, so the model's examples couple only
within a virtual batch (the generic engine's unit: reproduction/classifier.py). L2 weight decay 5e-4 on
every kernel, as in the WRN recipe, through Keras regularizers (the engine adds ``model.losses`` once per
update). WRN-16-4 has 2,748,890 trainable parameters (tests/test_cifar10.py counts them from the
architecture).
"""

from __future__ import annotations

import random

import keras

from reproduction.ghost_batch_norm import GhostBatchNormalization

WEIGHT_DECAY = 5e-4


def build_wide_resnet(
    depth: int = 16,
    width: int = 4,
    virtual_batch_size: int = 128,
    classes: int = 10,
    seed: int | None = None,
    input_shape: tuple[int, int, int] = (32, 32, 3),
    weight_decay: float = WEIGHT_DECAY,
) -> keras.Model:
    """WRN-depth-width; its initial weights depend on ``seed`` alone (None: Keras's global draw)."""
    if not isinstance(depth, int) or depth < 10 or (depth - 4) % 6:
        raise ValueError(f"depth={depth!r}: expected 6n + 4 with n >= 1 (10, 16, 22, 28, ...)")
    if not isinstance(width, int) or width < 1:
        raise ValueError(f"width={width!r}: expected a positive integer")
    layers = _Layers(random.Random(seed) if seed is not None else None, virtual_batch_size, weight_decay)
    inputs = keras.Input(shape=input_shape)
    h, channels = layers.conv(16, 3)(inputs), 16
    for group, strides in enumerate((1, 2, 2)):
        filters = 16 * width * 2**group
        for block in range((depth - 4) // 6):
            h = layers.block(h, channels, filters, strides if block == 0 else 1)
            channels = filters
    h = keras.layers.GlobalAveragePooling2D()(layers.norm_relu(h))
    outputs = keras.layers.Dense(
        classes, kernel_initializer=layers.initializer("glorot"), kernel_regularizer=layers.decay()
    )(h)
    return keras.Model(inputs, outputs, name=f"wrn_{depth}_{width}")


class _Layers:
    """The WRN's layers, each initializer seeded from one private draw (weights from the seed alone)."""

    def __init__(self, draw: random.Random | None, virtual_batch_size: int, weight_decay: float):
        self.draw, self.virtual_batch_size, self.weight_decay = draw, virtual_batch_size, weight_decay

    def initializer(self, kind: str = "he"):
        seed = self.draw.randint(1, 10**9) if self.draw else None
        return keras.initializers.HeNormal(seed) if kind == "he" else keras.initializers.GlorotUniform(seed)

    def decay(self):
        return keras.regularizers.L2(self.weight_decay) if self.weight_decay else None

    def conv(self, filters: int, size: int, strides: int = 1):
        return keras.layers.Conv2D(
            filters,
            size,
            strides=strides,
            padding="same",
            use_bias=False,
            kernel_initializer=self.initializer(),
            kernel_regularizer=self.decay(),
        )

    def norm_relu(self, h):
        return keras.layers.ReLU()(GhostBatchNormalization(self.virtual_batch_size, momentum=0.9)(h))

    def block(self, h, channels: int, filters: int, stride: int):
        """norm -> ReLU -> conv3x3 -> norm -> ReLU -> conv3x3, plus the input or its 1x1 projection."""
        a = self.norm_relu(h)
        shortcut = h if (channels, stride) == (filters, 1) else self.conv(filters, 1, stride)(a)
        r = self.conv(filters, 3, stride)(a)
        r = self.conv(filters, 3)(self.norm_relu(r))
        return keras.layers.Add()([shortcut, r])

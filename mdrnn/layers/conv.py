"""MaskedConvBlock2D: convolution, leaky ReLU and max pooling that respect a width mask."""

from __future__ import annotations

import keras
import tensorflow as tf

from mdrnn.layers.subsample import any_pooled, ceil_div


@keras.saving.register_keras_serializable(package="mdrnn")
class MaskedConvBlock2D(keras.layers.Layer):
    """A CRNN block: 3x3 ("same") convolution, leaky ReLU, then ph x pw max pooling.

    Masked pixels are zeroed before the convolution and after it, so a line padded
    into a batch sees zeros beyond its end exactly as it does alone, and gives the
    same output. Pooling pads the bottom and right to whole windows (with the lowest
    value, so padding never wins a maximum), and a pooled pixel is valid when any
    of its window is: h x w valid pixels become ceil(h / ph) x ceil(w / pw).

    Args:
        filters: output channels.
        pool: (ph, pw) pooling window and stride; (1, 1) for none.
        kernel: convolution kernel size.

    Input shape:
        (batch, height, width, channels); optional boolean mask (batch, height, width).

    Output shape:
        (batch, ceil(height / ph), ceil(width / pw), filters).
    """

    def __init__(self, filters: int, pool=(2, 2), kernel: int = 3, **kwargs):
        super().__init__(**kwargs)
        pool = tuple(pool)
        if len(pool) != 2 or not all(isinstance(p, int) and p >= 1 for p in pool):
            raise ValueError(f"MaskedConvBlock2D: pool must be two positive integers, "
                             f"got {pool!r}")
        self.filters, self.pool, self.kernel = int(filters), pool, int(kernel)
        self.conv = keras.layers.Conv2D(self.filters, self.kernel, padding="same",
                                        name="conv")
        self.supports_masking = True

    def build(self, input_shape):
        self.conv.build(input_shape)

    def output_width(self, width):
        """Columns out for `width` valid columns in (int or integer tensor)."""
        return ceil_div(width, self.pool[1])

    def call(self, inputs, mask=None):
        valid = None if mask is None else tf.cast(mask[..., None], inputs.dtype)
        x = inputs if valid is None else inputs * valid
        x = tf.nn.leaky_relu(self.conv(x), alpha=0.01)
        ph, pw = self.pool
        if (ph, pw) == (1, 1):
            return x if valid is None else x * valid
        lowest = x.dtype.min
        if valid is not None:  # masked pixels never win a maximum
            x = tf.where(valid > 0, x, lowest)
        shape = tf.shape(x)
        pad = [[0, 0], [0, ceil_div(shape[1], ph) * ph - shape[1]],
               [0, ceil_div(shape[2], pw) * pw - shape[2]], [0, 0]]
        x = tf.nn.max_pool2d(tf.pad(x, pad, constant_values=lowest), (ph, pw), (ph, pw),
                             "VALID")
        if valid is None:
            return x
        pooled = tf.nn.max_pool2d(tf.pad(valid, pad), (ph, pw), (ph, pw), "VALID")
        return tf.where(pooled > 0, x, tf.zeros_like(x))

    def compute_mask(self, inputs, mask=None):
        return None if mask is None else any_pooled(mask, self.pool)

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        ph, pw = self.pool
        return (b, None if h is None else ceil_div(h, ph),
                None if w is None else ceil_div(w, pw), self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "pool": list(self.pool),
                "kernel": self.kernel}

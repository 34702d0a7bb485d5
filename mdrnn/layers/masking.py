"""WidthMask: the entry of a model that reads padded batches of line images."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops


@keras.saving.register_keras_serializable(package="mdrnn")
class WidthMask(keras.layers.Layer):
    """Mark the columns beyond each sample's width as padding.

    Lines in a batch share one padded width; this layer zeroes each image beyond
    its own width and attaches the (B, H, W) mask that the following layers honour,
    so every line is recognised exactly as if it were alone.

    Call arguments:
        inputs: `[images, widths]`, images (B, H, W, C) and widths (B,) integers.

    Output shape:
        (batch, height, width, channels), the images with padding set to zero.

    Example:
        >>> images = keras.Input((64, None, 1)); widths = keras.Input((), dtype="int32")
        >>> x = WidthMask()([images, widths])
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def _mask(self, images, widths):
        shape = tf.shape(images)
        columns = tf.range(shape[2])[None, :] < tf.cast(widths, tf.int32)[:, None]  # (B, W)
        return tf.broadcast_to(columns[:, None, :], shape[:3])

    def call(self, inputs):
        images, widths = inputs
        return images * tf.cast(self._mask(images, widths)[..., None], images.dtype)

    def compute_mask(self, inputs, mask=None):
        # keras.ops only: Keras also builds the mask symbolically, as part of the graph.
        images, widths = inputs
        columns = ops.cumsum(ops.ones_like(images[..., 0], dtype="int32"), axis=2)  # 1..W
        return columns <= ops.reshape(ops.cast(widths, "int32"), (-1, 1, 1))

    def compute_output_shape(self, input_shape):
        return input_shape[0]

"""Layers that turn a 2-D map into the 1-D frame sequence that CTC reads."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops


@keras.saving.register_keras_serializable(package="mdrnn")
class CollapseHeight(keras.layers.Layer):
    """Sum activations over the valid rows of each column (Graves 2009).

    Call arguments:
        inputs: (B, H, W, K) tensor.
        mask: optional boolean (B, H, W); only valid rows are summed.

    Input shape:
        (batch, height, width, features).

    Output shape:
        (batch, width, features); the mask becomes (batch, width), true where a
        column has any valid row.

    Example:
        >>> CollapseHeight()(np.ones((2, 3, 5, 4), "float32")).shape
        TensorShape([2, 5, 4])
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError("CollapseHeight expects input of rank 4 (batch, height, "
                             f"width, features), got shape {tuple(input_shape)}")

    def output_width(self, width):
        return width

    def call(self, inputs, mask=None):
        if mask is not None:
            inputs = inputs * tf.cast(mask[..., None], inputs.dtype)
        return tf.reduce_sum(inputs, axis=1)

    def compute_mask(self, inputs, mask=None):
        return None if mask is None else ops.any(mask, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2], input_shape[3])


@keras.saving.register_keras_serializable(package="mdrnn")
class ColumnsToSequence(keras.layers.Layer):
    """Read an image column by column: each column's pixels become one frame.

    Input shape:
        (batch, height, width, channels) with height and channels known.

    Output shape:
        (batch, width, height * channels); a (B, H, W) mask becomes (B, W), true
        where a column has any valid pixel.

    Example:
        >>> ColumnsToSequence()(np.ones((2, 8, 30, 1), "float32")).shape
        TensorShape([2, 30, 8])
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def build(self, input_shape):
        if len(input_shape) != 4 or input_shape[1] is None or input_shape[3] is None:
            raise ValueError("ColumnsToSequence needs input (batch, height, width, "
                             f"channels) with known height and channels, got "
                             f"{tuple(input_shape)}")
        # Kept from the functional graph: a traced call may see the height as None.
        self._frame = input_shape[1] * input_shape[3]

    def output_width(self, width):
        return width

    def call(self, inputs, mask=None):
        if mask is not None:
            inputs = inputs * tf.cast(mask[..., None], inputs.dtype)
        x = tf.transpose(inputs, [0, 2, 1, 3])  # (B, W, H, C)
        return tf.reshape(x, [tf.shape(x)[0], tf.shape(x)[1], self._frame])

    def compute_mask(self, inputs, mask=None):
        return None if mask is None else ops.any(mask, axis=1)

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        return (b, w, h * c)

"""BlockSubsample2D: non-overlapping blocks of pixels gathered into channels."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops


def ceil_div(size, block: int):
    return -(-size // block)


def any_pooled(mask, block):
    """A (B, H, W) boolean mask over bh x bw blocks: a block is valid when any pixel is.

    keras.ops with static padding only, since Keras also builds masks symbolically:
    padding by block - 1 makes the last partial block whole, and "valid" pooling
    drops the rest.
    """
    bh, bw = block
    mask = ops.cast(mask[..., None], "float32")
    mask = ops.pad(mask, [[0, 0], [0, bh - 1], [0, bw - 1], [0, 0]])
    return ops.max_pool(mask, (bh, bw), strides=(bh, bw), padding="valid")[..., 0] > 0


@keras.saving.register_keras_serializable(package="mdrnn")
class BlockSubsample2D(keras.layers.Layer):
    """Gather non-overlapping bh x bw blocks into the channel axis (Graves 2009).

    The image is zero-padded at the bottom and right to whole blocks, and a block is
    valid when any of its pixels is, so a valid region of h x w pixels becomes
    ceil(h / bh) x ceil(w / bw) blocks whatever padding surrounds it.

    Args:
        block: (bh, bw), block height and width in pixels.

    Call arguments:
        inputs: (B, H, W, C) tensor.
        mask: optional boolean (B, H, W); masked pixels are zeroed before gathering.

    Input shape:
        (batch, height, width, channels).

    Output shape:
        (batch, ceil(height / bh), ceil(width / bw), bh * bw * channels), channels
        ordered by block row, then block column, then input channel.

    Example:
        >>> BlockSubsample2D((4, 3))(np.zeros((1, 64, 100, 1), "float32")).shape
        TensorShape([1, 16, 34, 12])
    """

    def __init__(self, block=(4, 3), **kwargs):
        super().__init__(**kwargs)
        block = tuple(block) if isinstance(block, (list, tuple)) else (block,)
        if len(block) != 2 or not all(isinstance(b, int) and not isinstance(b, bool)
                                      and b >= 1 for b in block):
            raise ValueError("BlockSubsample2D: block must be two positive integers "
                             f"(height, width), got {block!r}")
        self.block = block
        self.supports_masking = True

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError("BlockSubsample2D expects input of rank 4 (batch, height, "
                             f"width, channels), got shape {tuple(input_shape)}")

    def output_height(self, height):
        return ceil_div(height, self.block[0])

    def output_width(self, width):
        """Frames out for `width` valid columns in (int or integer tensor)."""
        return ceil_div(width, self.block[1])

    def call(self, inputs, mask=None):
        bh, bw = self.block
        x = inputs
        if mask is not None:
            x = x * tf.cast(mask[..., None], x.dtype)
        shape = tf.shape(x)
        b, h, w, c = shape[0], shape[1], shape[2], shape[3]
        oh, ow = self.output_height(h), self.output_width(w)
        x = tf.pad(x, [[0, 0], [0, oh * bh - h], [0, ow * bw - w], [0, 0]])
        x = tf.reshape(x, [b, oh, bh, ow, bw, c])
        x = tf.transpose(x, [0, 1, 3, 2, 4, 5])  # (B, H', W', bh, bw, C)
        return tf.reshape(x, [b, oh, ow, bh * bw * inputs.shape[-1]])

    def compute_mask(self, inputs, mask=None):
        return None if mask is None else any_pooled(mask, self.block)

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        bh, bw = self.block
        return (b, None if h is None else self.output_height(h),
                None if w is None else self.output_width(w),
                None if c is None else bh * bw * c)

    def get_config(self):
        return {**super().get_config(), "block": list(self.block)}

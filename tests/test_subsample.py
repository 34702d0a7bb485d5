"""BlockSubsample2D: blocks into channels, with the mask and the lengths."""

import numpy as np
import tensorflow as tf

from mdrnn.layers import (
    BlockSubsample2D,
)


def test_block_subsample_gathers_blocks_in_row_column_channel_order():
    x = np.arange(2 * 3 * 2, dtype="float32").reshape(1, 2, 3, 2)  # H=2, W=3, C=2
    y = BlockSubsample2D((2, 2))(x).numpy()
    assert y.shape == (1, 1, 2, 8)
    # Block (0, 0): pixels (0,0), (0,1), (1,0), (1,1), each with its two channels.
    np.testing.assert_array_equal(y[0, 0, 0], [0, 1, 2, 3, 6, 7, 8, 9])
    # Block (0, 1): the right column is zero padding.
    np.testing.assert_array_equal(y[0, 0, 1], [4, 5, 0, 0, 10, 11, 0, 0])


def test_block_subsample_mask_and_lengths():
    layer = BlockSubsample2D((4, 3))
    mask = np.zeros((2, 9, 14), bool)
    mask[0, :9, :14] = True
    mask[1, :5, :7] = True
    x = np.ones((2, 9, 14, 1), "float32")
    y = layer(x, mask=mask)
    out_mask = layer.compute_mask(x, tf.constant(mask)).numpy()
    assert y.shape == (2, 3, 5, 12)
    assert out_mask.shape == (2, 3, 5)
    assert out_mask[0].all()
    # 5 valid rows -> 2 blocks, 7 valid columns -> 3 blocks.
    assert out_mask[1].sum() == 6 and out_mask[1, :2, :3].all()
    # Masked pixels are zeroed before gathering.
    assert y.numpy()[1, 1, 2].sum() == 1 * 1  # only pixel (4, 6) is valid in that block
    assert layer.output_width(7) == 3 and layer.output_width(np.array([1, 3, 4])).tolist() == [
        1, 1, 2]

"""CollapseHeight and ColumnsToSequence: 2-D maps into the 1-D frames CTC reads."""

import numpy as np
import tensorflow as tf

from mdrnn.layers import (
    CollapseHeight,
    ColumnsToSequence,
)


def test_collapse_height_sums_valid_rows_only():
    x = np.arange(2 * 3 * 2 * 1, dtype="float32").reshape(2, 3, 2, 1)
    mask = np.ones((2, 3, 2), bool)
    mask[1, 2:] = False  # second sample: last row is padding
    mask[1, :, 1] = False  # and its second column
    layer = CollapseHeight()
    y = layer(x, mask=mask).numpy()
    np.testing.assert_array_equal(y[0, :, 0], [0 + 2 + 4, 1 + 3 + 5])
    np.testing.assert_array_equal(y[1, :, 0], [6 + 8, 0])
    np.testing.assert_array_equal(layer.compute_mask(x, tf.constant(mask)).numpy(),
                                  [[True, True], [True, False]])


def test_columns_to_sequence():
    x = np.arange(2 * 3 * 1, dtype="float32").reshape(1, 2, 3, 1)
    y = ColumnsToSequence()(x).numpy()
    np.testing.assert_array_equal(y[0], [[0, 3], [1, 4], [2, 5]])

"""WidthMask: padding beyond each line's width."""

import numpy as np

from mdrnn.layers import (
    WidthMask,
)


def test_width_mask_zeroes_padding_and_sets_mask():
    images = np.ones((2, 2, 5, 1), "float32")
    widths = np.array([5, 2], "int32")
    layer = WidthMask()
    y = layer([images, widths]).numpy()
    mask = layer.compute_mask([images, widths]).numpy()
    assert y[0].sum() == 10 and y[1].sum() == 4
    np.testing.assert_array_equal(mask[1, 0], [True, True, False, False, False])

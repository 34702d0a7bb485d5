"""BlockSubsample2D, CollapseHeight, ColumnsToSequence, WidthMask and Metadata."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mdrnn.layers import (
    BlockSubsample2D,
    CollapseHeight,
    ColumnsToSequence,
    Metadata,
    WidthMask,
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


def test_width_mask_zeroes_padding_and_sets_mask():
    images = np.ones((2, 2, 5, 1), "float32")
    widths = np.array([5, 2], "int32")
    layer = WidthMask()
    y = layer([images, widths]).numpy()
    mask = layer.compute_mask([images, widths]).numpy()
    assert y[0].sum() == 10 and y[1].sum() == 4
    np.testing.assert_array_equal(mask[1, 0], [True, True, False, False, False])


@pytest.mark.parametrize("layer,arg", [
    (lambda: BlockSubsample2D((0, 2)), "(0, 2)"),
    (lambda: BlockSubsample2D((2,)), "(2,)"),
    (lambda: BlockSubsample2D((2, 2))(np.zeros((2, 3), "float32")), "rank 4"),
    (lambda: CollapseHeight()(np.zeros((2, 3, 4), "float32")), "rank 4"),
])
def test_bad_arguments(layer, arg):
    with pytest.raises(ValueError, match=arg.replace("(", r"\(").replace(")", r"\)")):
        layer()


def test_configs_round_trip():
    for layer in (BlockSubsample2D((4, 2)), CollapseHeight(), ColumnsToSequence(), WidthMask(),
                  Metadata(charset={"symbols": ["a"]}, preprocessing={"height": 48},
                           architecture={"type": "mdlstm"})):
        clone = type(layer).from_config(layer.get_config())
        assert clone.get_config() == layer.get_config()


def test_metadata_passes_through_and_survives_saving(tmp_path):
    inputs = keras.Input((4,))
    meta = Metadata(charset={"symbols": ["x", "y"]}, preprocessing={"height": 32},
                    name="metadata")
    model = keras.Model(inputs, meta(inputs))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    x = np.ones((1, 4), "float32")
    np.testing.assert_array_equal(loaded(x), x)
    assert loaded.get_layer("metadata").charset == {"symbols": ["x", "y"]}
    assert loaded.get_layer("metadata").preprocessing == {"height": 32}

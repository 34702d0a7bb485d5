"""One contract for every layer of mdrnn.layers: output shape as declared, the weights
it should have, a config round trip that computes the same, and a gradient step."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import mdrnn.layers
from mdrnn.layers import (
    MDLSTM2D,
    BlockSubsample2D,
    CollapseHeight,
    ColumnsToSequence,
    MaskedConvBlock2D,
    Metadata,
    WidthMask,
)

# layer factory, input shape (B, H, W, C), expected trainable weight count, output shape
CASES = {
    "MDLSTM2D": (lambda: MDLSTM2D(3, directions=("tl", "br")), (2, 5, 7, 2),
                 2 * (5 * 3 * 2 + 10 * 9 + 5 * 3 + 4 * 3), (2, 5, 7, 6)),
    "BlockSubsample2D": (lambda: BlockSubsample2D((2, 3)), (2, 5, 7, 2), 0, (2, 3, 3, 12)),
    "CollapseHeight": (lambda: CollapseHeight(), (2, 5, 7, 2), 0, (2, 7, 2)),
    "ColumnsToSequence": (lambda: ColumnsToSequence(), (2, 5, 7, 2), 0, (2, 7, 10)),
    "MaskedConvBlock2D": (lambda: MaskedConvBlock2D(4, pool=(2, 2)), (2, 5, 7, 2),
                          3 * 3 * 2 * 4 + 4, (2, 3, 4, 4)),
    "Metadata": (lambda: Metadata(charset={"symbols": ["a"]}, preprocessing={"height": 5}),
                 (2, 5, 7, 2), 0, (2, 5, 7, 2)),
}


def test_every_exported_layer_has_a_case():
    assert set(CASES) | {"WidthMask"} == set(mdrnn.layers.__all__)


@pytest.fixture(params=sorted(CASES))
def case(request):
    make, shape, weights, output = CASES[request.param]
    x = tf.constant(np.random.default_rng(0).normal(size=shape).astype("float32"))
    return make, x, weights, output


def test_output_shape_is_the_declared_one(case):
    make, x, _, output = case
    layer = make()
    y = layer(x)
    assert tuple(y.shape) == output
    assert tuple(layer.compute_output_shape(x.shape)) == output


def test_weight_count(case):
    make, x, weights, _ = case
    layer = make()
    layer(x)
    assert sum(int(np.prod(w.shape)) for w in layer.trainable_weights) == weights


def test_config_round_trip_computes_the_same(case):
    make, x, _, _ = case
    layer = make()
    y = layer(x)
    config = keras.saving.serialize_keras_object(layer)
    again = keras.saving.deserialize_keras_object(config, safe_mode=True)
    again(x)  # builds it
    again.set_weights(layer.get_weights())
    np.testing.assert_allclose(again(x), y, rtol=1e-6, atol=1e-6)


def test_a_gradient_step_reaches_the_input_and_every_weight(case):
    make, x, _, _ = case
    layer = make()
    layer(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(tf.square(layer(x)))
    gradients = tape.gradient(loss, [x, *layer.trainable_weights])
    for gradient in gradients:
        assert gradient is not None and np.isfinite(gradient).all()
    assert float(tf.reduce_sum(tf.abs(gradients[0]))) > 0


def test_width_mask_zeroes_padding_and_passes_its_mask_on():
    images = tf.ones((2, 3, 5, 1))
    layer = WidthMask()
    y = layer([images, tf.constant([5, 2])])
    assert tuple(y.shape) == (2, 3, 5, 1)
    assert float(tf.reduce_sum(y[1])) == 3 * 2
    mask = layer.compute_mask([images, tf.constant([5, 2])])
    assert mask.shape == (2, 3, 5) and bool(mask[1, 0, 1]) and not bool(mask[1, 0, 2])
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    np.testing.assert_array_equal(again([images, tf.constant([5, 2])]), y)


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

"""Metadata: the model file's facts, through saving and loading."""

import keras
import numpy as np

from mdrnn.layers import (
    Metadata,
)


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

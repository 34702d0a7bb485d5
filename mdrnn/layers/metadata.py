"""Metadata: a pass-through layer whose config carries what a model file must know."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="mdrnn")
class Metadata(keras.layers.Layer):
    """Pass inputs through unchanged; keep JSON-able facts about the model in the config.

    A recogniser saved as one `.keras` file needs its charset and preprocessing
    with it; as the config of a layer they land in the archive's config.json and
    come back on loading, in safe mode, with no other file.

    Args:
        charset: the charset's config (see `mdrnn.datasets.charset.Charset`).
        preprocessing: the preprocessing config as a dict.
        architecture: the spec the network was built from.

    Example:
        >>> meta = model.get_layer("metadata"); meta.charset
    """

    def __init__(self, charset=None, preprocessing=None, architecture=None, **kwargs):
        super().__init__(**kwargs)
        self.charset = charset
        self.preprocessing = preprocessing
        self.architecture = architecture
        self.supports_masking = True

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "charset": self.charset,
                "preprocessing": self.preprocessing, "architecture": self.architecture}

"""Metadata: a pass-through layer whose config carries what a model file must know."""

from __future__ import annotations

from pathlib import Path

import keras

LM_ASSET = "lm.arpa.gz"


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
        language_model: how to decode with the model's n-gram LM (unit, order,
            weight, bonus), or None; the LM itself, gzipped ARPA text in
            `lm_arpa`, is saved as an asset of the archive.

    Example:
        >>> meta = Metadata(charset={"symbols": ["a", "b"]}, preprocessing={"height": 64})
        >>> meta.charset["symbols"], meta.get_config()["preprocessing"]
        (['a', 'b'], {'height': 64})
    """

    def __init__(self, charset=None, preprocessing=None, architecture=None,
                 language_model=None, **kwargs):
        super().__init__(**kwargs)
        self.charset = charset
        self.preprocessing = preprocessing
        self.architecture = architecture
        self.language_model = language_model
        self.lm_arpa: bytes | None = None
        self.supports_masking = True

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "charset": self.charset,
                "preprocessing": self.preprocessing, "architecture": self.architecture,
                "language_model": self.language_model}

    def save_assets(self, dir_path):
        if self.lm_arpa is not None:
            Path(dir_path, LM_ASSET).write_bytes(self.lm_arpa)

    def load_assets(self, dir_path):
        path = Path(dir_path, LM_ASSET)
        self.lm_arpa = path.read_bytes() if path.is_file() else None

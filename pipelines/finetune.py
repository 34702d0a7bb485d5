"""Fine-tuning: start a training run from a trained model (`mdrnn train --from`).

The model's network (its architecture spec), preprocessing and weights are kept; its
charset is extended by the symbols of the new training data that it lacks, whose
output rows are appended and start from their fresh initialisation
(`mdrnn.models.transfer_weights` copies the rest).
"""

from __future__ import annotations

import dataclasses
import logging

import keras

from mdrnn.datasets.charset import Charset
from mdrnn.errors import InputError
from mdrnn.models import load_model, metadata
from mdrnn.pipelines.preprocess_config import PreprocessConfig
from mdrnn.pipelines.train_config import TrainConfig

log = logging.getLogger("mdrnn.pipelines.train")


def start_from(config: TrainConfig, train_samples) -> tuple[keras.Model, TrainConfig, Charset]:
    """The trained model to fine-tune, the config that rebuilds it, and its charset
    extended by the symbols of the training data it lacks (new output rows).

    Args:
        config: a training config whose `initial_model` names the model file; its
            `dropout`, if set, replaces the model's dropout rate (in `train`).
        train_samples: the new training data.

    Raises:
        InputError: the file is not a loadable mdrnn recogniser.
    """
    model = load_model(config.initial_model)
    try:
        info = metadata(model)
        charset = Charset.from_config(info.charset)
        spec, preprocessing = dict(info.architecture), dict(info.preprocessing)
    except (ValueError, TypeError):
        raise InputError(f"{config.initial_model}: not an mdrnn recogniser (no usable "
                         "metadata)") from None
    extended = charset.extended(s.text for s in train_samples)
    if len(extended.symbols) > len(charset.symbols):
        log.warning("fine-tuning %s: %d new symbols %s", config.initial_model,
                    len(extended.symbols) - len(charset.symbols),
                    "".join(extended.symbols[len(charset.symbols):]))
    config = dataclasses.replace(config, spec=spec,
                                 preprocessing=PreprocessConfig.from_dict(preprocessing))
    return model, config, extended

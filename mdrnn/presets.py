"""Named network specs: the presets of `mdrnn.models.build_model` and `mdrnn train --preset`.

Plain data, no TensorFlow: the command line reads the names from here at once.
"""

from __future__ import annotations

import copy

GRAVES2009 = {
    "type": "mdlstm",
    "levels": [
        {"block": [4, 3], "units": 2},
        {"block": [4, 3], "tanh": 6, "units": 10},
        {"block": [4, 2], "tanh": 20, "units": 50},
    ],
    "dropout": 0.0,
}

# The same hierarchy with a last block of 4x1: width shrinks 9x instead of 18x, which
# gives characters about 40 px wide twice as many CTC frames (e.g. digits at height 48).
GRAVES2009_X9 = copy.deepcopy(GRAVES2009)
GRAVES2009_X9["levels"][2]["block"] = [4, 1]

BLSTM_CTC = {"type": "blstm", "height": 64, "block": [4, 3], "units": 100, "layers": 2,
             "dropout": 0.0}

# A convolutional-recurrent baseline in the spirit of Puigcerver (2017) and PyLaia's
# default: masked 3x3 convolution blocks with max pooling (width shrinks 4x), the
# columns read by stacked BLSTMs.
CRNN = {"type": "crnn", "height": 64,
        "conv": [[16, [2, 2]], [32, [2, 2]], [48, [2, 1]], [64, [2, 1]]],
        "units": 128, "layers": 2, "dropout": 0.0}

# graves2009_x9 with every level about twice as wide (MDLSTM units 4/20/100, tanh
# 12/40): about 4x the weights for 1.6-1.8x the training time per line on a CPU,
# where the per-diagonal steps rather than the multiply-adds bound the speed.
GRAVES2009_X9_WIDE = copy.deepcopy(GRAVES2009_X9)
for _level, _units, _tanh in zip(GRAVES2009_X9_WIDE["levels"], (4, 20, 100), (None, 12, 40)):
    _level["units"] = _units
    if _tanh:
        _level["tanh"] = _tanh

# graves2009_x9_wide with a middle block of 4x2: width shrinks 6x, so that dense
# handwriting at height 64 (a median of 22 px per character on the Copiste lines, 11
# px for the densest 5%) gets 2-4 CTC frames per character instead of 1.5-2.4.
GRAVES2009_X6_WIDE = copy.deepcopy(GRAVES2009_X9_WIDE)
GRAVES2009_X6_WIDE["levels"][1]["block"] = [4, 2]

PRESETS = {"graves2009": GRAVES2009, "graves2009_x9": GRAVES2009_X9,
           "graves2009_x9_wide": GRAVES2009_X9_WIDE, "graves2009_x6_wide": GRAVES2009_X6_WIDE,
           "blstm_ctc": BLSTM_CTC, "crnn": CRNN}


def resolve_spec(spec: str | dict) -> dict:
    """A copy of the spec a preset name (or a spec dict) stands for.

    Raises:
        ValueError: an unknown preset name, naming the known ones.
    """
    if isinstance(spec, str):
        if spec not in PRESETS:
            raise ValueError(f"unknown preset {spec!r}; choose from {sorted(PRESETS)}")
        spec = PRESETS[spec]
    return copy.deepcopy(spec)

"""Keras layers of mdrnn; importing this module registers them for safe-mode loading."""

from mdrnn.layers.collapse import CollapseHeight, ColumnsToSequence
from mdrnn.layers.conv import MaskedConvBlock2D
from mdrnn.layers.masking import WidthMask
from mdrnn.layers.mdlstm import MDLSTM2D
from mdrnn.layers.metadata import Metadata
from mdrnn.layers.subsample import BlockSubsample2D

__all__ = ["BlockSubsample2D", "CollapseHeight", "ColumnsToSequence", "MDLSTM2D",
           "MaskedConvBlock2D", "Metadata", "WidthMask"]

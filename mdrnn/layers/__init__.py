"""Keras layers of mdrnn; importing this module registers them for safe-mode loading."""

from mdrnn.layers.mdlstm import MDLSTM2D

__all__ = ["MDLSTM2D"]

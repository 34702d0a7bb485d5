"""mdrnn: offline handwriting recognition with multidimensional LSTM and CTC."""

__version__ = "0.1.0"

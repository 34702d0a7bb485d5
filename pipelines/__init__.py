"""The jobs: preprocessing, segmentation, training, transcription and the CLI."""

"""Data in, samples out: charsets, file formats, bundled digits, tf.data."""

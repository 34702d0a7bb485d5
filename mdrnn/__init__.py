"""mdrnn: offline handwriting recognition with multidimensional LSTM and CTC.

``import mdrnn`` registers the toolkit's Keras layers (`mdrnn.layers`), so that
``keras.models.load_model`` reads mdrnn models, as soon as Keras is imported (at
once when it already is). It does not import Keras or TensorFlow itself, so that
the command line starts quickly.
"""

import importlib
import importlib.abc
import importlib.util
import sys

__version__ = "0.1.0"


class _RegisterLayersWithKeras(importlib.abc.MetaPathFinder):
    """Finds nothing itself: when Keras is imported, imports `mdrnn.layers` after it."""

    def find_spec(self, name, path=None, target=None):
        if name != "keras":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def exec_module(module):
            execute(module)
            importlib.import_module("mdrnn.layers")

        spec.loader.exec_module = exec_module
        return spec


if "keras" in sys.modules:
    importlib.import_module("mdrnn.layers")
elif not any(isinstance(f, _RegisterLayersWithKeras) for f in sys.meta_path):
    sys.meta_path.insert(0, _RegisterLayersWithKeras())

"""The package installs as `mdrnn` alone and claims no global `datasets`/`pipelines`."""

import importlib.metadata
import importlib.resources
import importlib.util
import os
import subprocess
import sys


def test_subpackages_live_under_mdrnn():
    import mdrnn.datasets
    import mdrnn.pipelines

    assert mdrnn.datasets.__name__ == "mdrnn.datasets"
    assert mdrnn.pipelines.__name__ == "mdrnn.pipelines"


def test_no_global_datasets_or_pipelines_names():
    dist = importlib.metadata.distribution("mdrnn")
    top_level = (dist.read_text("top_level.txt") or "").split()
    assert top_level == ["mdrnn"]
    # Importing our subpackages must not register the global names.
    code = (
        "import sys, mdrnn.datasets, mdrnn.pipelines;"
        "print('datasets' in sys.modules, 'pipelines' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd="/")
    assert out.stdout.split() == ["False", "False"]
    spec = importlib.util.find_spec("pipelines")
    assert spec is None or "mdrnn" not in (spec.origin or "")


def test_cli_help_is_fast_and_does_not_import_tensorflow():
    code = "import sys; from mdrnn.pipelines import cli; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd="/")
    assert out.stdout.strip() == "False"


def test_import_mdrnn_lets_keras_load_models_without_importing_keras_itself(tmp_path):
    model = str(importlib.resources.files("mdrnn.zoo") / "fr-copiste.keras")
    load = (f"model = keras.models.load_model({model!r}); "
            "print(model.get_layer('metadata').__class__.__name__)")
    for code in ("import sys, mdrnn; print('keras' in sys.modules, 'tensorflow' in "
                 f"sys.modules); import keras; {load}",
                 f"import keras, mdrnn; {load}"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             cwd=tmp_path, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        assert out.returncode == 0, out.stderr[-2000:]
        assert out.stdout.split()[-1] == "Metadata"
        if code.startswith("import sys"):
            assert out.stdout.split()[:2] == ["False", "False"]
    # Without mdrnn, Keras does not know the layers: the test above tests something.
    out = subprocess.run([sys.executable, "-c", f"import keras; {load}"], capture_output=True,
                         text=True, cwd=tmp_path)
    assert out.returncode != 0 and "Could not locate class" in out.stderr + out.stdout

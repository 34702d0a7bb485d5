"""The package installs as `mdrnn` alone and claims no global `datasets`/`pipelines`."""

import importlib.metadata
import importlib.util
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

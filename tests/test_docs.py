"""The docstring examples of the library run as written."""

import doctest
import importlib
import pkgutil

import numpy as np
import pytest

import mdrnn
import mdrnn.datasets
import mdrnn.pipelines

# Modules of an optional extra, with the package they need.
OPTIONAL = {"mdrnn.pipelines.beam_job": "apache_beam"}
MODULES = sorted({info.name for package in (mdrnn, mdrnn.datasets, mdrnn.pipelines)
                  for info in pkgutil.walk_packages(package.__path__, package.__name__ + ".")})


def test_every_package_is_searched():
    assert {"mdrnn.layers.mdlstm", "mdrnn.pipelines.recognizer", "mdrnn.datasets.charset",
            "mdrnn.lm"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tmp_path, monkeypatch):
    if name in OPTIONAL:
        pytest.importorskip(OPTIONAL[name])
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    module = importlib.import_module(name)
    result = doctest.testmod(module, extraglobs={"np": np}, optionflags=doctest.ELLIPSIS,
                             report=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed"

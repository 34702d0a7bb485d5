import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data():
    """The real handwriting beside the checkout (`../shared/data`); skips when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def model_file(tmp_path_factory):
    """A saved tiny untrained recogniser (`tiny.tiny_model`) for the charset "ab c"."""
    from tiny import tiny_model

    from mdrnn.datasets.charset import Charset

    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    tiny_model(Charset.from_texts(["ab c"])).save(path)
    return path

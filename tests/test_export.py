"""`mdrnn export`: a SavedModel that a process without mdrnn loads and runs, giving the
Keras model's logits on normalised uint8 lines of several widths."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner
from tiny import line_images, tiny_model

from mdrnn.datasets.charset import Charset
from mdrnn.errors import InputError
from mdrnn.models import output_lengths
from mdrnn.pipelines.cli import main
from mdrnn.pipelines.export import export_model
from mdrnn.pipelines.preprocess import normalise_line, preprocess_line
from mdrnn.pipelines.preprocess_config import PreprocessConfig


@pytest.mark.parametrize("settings", [{}, {"right_to_left": True, "mean_std": True}])
def test_exported_model_runs_without_mdrnn(tmp_path, settings):
    charset = Charset.from_texts(["ab c"])
    model = tiny_model(charset)
    config = PreprocessConfig(height=16, **settings)
    metadata = model.get_layer("metadata")
    metadata.preprocessing = config.to_dict()
    model.save(tmp_path / "m.keras")
    export_model(tmp_path / "m.keras", tmp_path / "served")
    assert json.loads((tmp_path / "served" / "mdrnn.json").read_text())["charset"] == [
        " ", "a", "b", "c"]
    assert PreprocessConfig.from_dict(json.loads(
        (tmp_path / "served" / "preprocess.json").read_text())) == config

    lines = [normalise_line(image, config) for image in line_images(3, seed=4)]
    widths = np.array([line.shape[1] for line in lines], np.int32)
    batch = np.full((3, 16, int(widths.max()) + 5, 1), 255, np.uint8)  # padded with paper
    for i, line in enumerate(lines):
        batch[i, :, :line.shape[1], 0] = line
    np.save(tmp_path / "image.npy", batch)
    np.save(tmp_path / "width.npy", widths)
    script = textwrap.dedent(f"""
        import sys, numpy as np, tensorflow as tf
        served = tf.saved_model.load({str(tmp_path / "served")!r})
        out = served.serve({{"image": tf.constant(np.load({str(tmp_path / "image.npy")!r})),
                            "width": tf.constant(np.load({str(tmp_path / "width.npy")!r}))}})
        np.save({str(tmp_path / "logits.npy")!r}, out["logits"].numpy())
        np.save({str(tmp_path / "lengths.npy")!r}, out["lengths"].numpy())
        assert not any(name.startswith("mdrnn") for name in sys.modules)
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    logits, lengths = np.load(tmp_path / "logits.npy"), np.load(tmp_path / "lengths.npy")
    assert lengths.tolist() == np.asarray(output_lengths(model, widths)).tolist()
    # Each line alone through the Keras model, prepared as transcription prepares it
    # (normalising an already normalised line changes nothing but the conversion).
    for i, line in enumerate(lines):
        prepared = preprocess_line(line, config)
        alone = model({"image": prepared[None, :, :, None],
                       "width": np.array([prepared.shape[1]], np.int32)}).numpy()[0]
        np.testing.assert_allclose(logits[i, :lengths[i]], alone[:lengths[i]], atol=1e-4)


def test_export_refuses_a_folder_in_use_and_bad_models(tmp_path, model_file):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    with pytest.raises(InputError, match="busy: exists and is not an empty folder"):
        export_model(model_file, tmp_path / "busy")
    result = CliRunner().invoke(main, ["export", str(tmp_path / "none.keras"),
                                       str(tmp_path / "out")])
    assert result.exit_code == 1 and "none.keras: no such model file" in result.output
    assert not (tmp_path / "out").exists()

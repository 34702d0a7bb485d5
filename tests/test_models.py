"""Recognition models: the Graves 2009 hierarchy, the BLSTM baseline and specs."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mdrnn.ctc import ctc_loss
from mdrnn.models import (
    blstm_ctc,
    build_model,
    graves2009,
    metadata,
    output_lengths,
    width_multiple,
)
from mdrnn.presets import GRAVES2009

SMALL = {"type": "mdlstm", "levels": [{"block": [2, 2], "units": 2},
                                      {"block": [2, 3], "tanh": 4, "units": 3}]}


def run(model, images, widths):
    return model({"image": images, "width": np.asarray(widths, "int32")}).numpy()


def test_graves2009_has_the_papers_weight_count():
    assert graves2009(120).count_params() == 159_369


def test_graves2009_shrinks_width_18x_and_height_64x():
    model = graves2009(5)
    x = np.zeros((1, 64, 180, 1), "float32")
    assert run(model, x, [180]).shape == (1, 10, 6)
    assert model.get_layer("mdlstm3").output.shape[1:3] == (None, None)
    assert output_lengths(model, 180) == 10


TINY_CRNN = {"type": "crnn", "conv": [[4, [2, 2]], [4, [2, 1]], [3, [1, 1]]], "units": 4,
             "layers": 1}


@pytest.mark.parametrize("model_fn", [lambda: build_model(SMALL, 3), lambda: graves2009(3),
                                      lambda: blstm_ctc(3, height=16),
                                      lambda: build_model(TINY_CRNN, 3, height=16)])
def test_output_lengths_match_real_output_shapes(model_fn):
    model = model_fn()
    height = 16
    for width in [1, 2, 3, 5, 6, 7, 17, 18, 19, 36, 37, 53]:
        x = np.zeros((1, height, width, 1), "float32")
        assert run(model, x, [width]).shape[1] == output_lengths(model, width), width
    widths = np.array([1, 7, 18, 53])
    assert output_lengths(model, widths).tolist() == [
        output_lengths(model, int(w)) for w in widths]
    symbolic = output_lengths(model, tf.constant(widths))
    assert symbolic.numpy().tolist() == output_lengths(model, widths).tolist()


@pytest.mark.parametrize("model_fn", [lambda: build_model(SMALL, 4),
                                      lambda: blstm_ctc(4, height=12),
                                      lambda: build_model(TINY_CRNN, 4, height=12)])
def test_padded_batch_equals_each_line_alone(model_fn):
    model = model_fn()
    rng = np.random.default_rng(0)
    widths = [23, 9, 16]
    lines = [rng.uniform(size=(1, 12, w, 1)).astype("float32") for w in widths]
    batch = np.zeros((3, 12, 30, 1), "float32")
    for b, line in enumerate(lines):
        batch[b, :, : widths[b]] = line[0]
    batch[1, :, 9:] = 7.0  # garbage in the padding must not matter
    batched = run(model, batch, widths)
    for b, (line, width) in enumerate(zip(lines, widths)):
        alone = run(model, line, [width])[0]
        frames = output_lengths(model, width)
        np.testing.assert_allclose(batched[b, :frames], alone[:frames], atol=2e-5)


def test_model_file_holds_charset_and_preprocessing(tmp_path):
    model = build_model(SMALL, 2, charset={"symbols": ["1", "2"]},
                        preprocessing={"height": 12})
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    x = np.random.default_rng(1).uniform(size=(2, 12, 20, 1)).astype("float32")
    np.testing.assert_array_equal(run(loaded, x, [20, 11]), run(model, x, [20, 11]))
    assert metadata(loaded).charset == {"symbols": ["1", "2"]}
    assert metadata(loaded).preprocessing == {"height": 12}
    assert metadata(loaded).architecture["levels"] == SMALL["levels"]
    assert output_lengths(loaded, 20) == output_lengths(model, 20)


def test_wide_preset_weight_count_from_the_design_formula():
    def mdlstm(n, c):  # per direction: 5nC + 10n^2 + 5n + 4n, four directions
        return 4 * (5 * n * c + 10 * n * n + 9 * n)

    # blocks 4x3, 4x3, 4x1; units 4, 20, 100; tanh 12, 40; 10 labels + blank
    expected = (mdlstm(4, 12) + 16 * 12 * 12 + mdlstm(20, 12) + 80 * 4 * 40
                + mdlstm(100, 40) + 400 * 11 + 11)
    assert expected == 526_379
    assert build_model("graves2009_x9_wide", 10).count_params() == expected


def test_dropout_spec_adds_dropout_after_tanh_layers():
    spec = {**GRAVES2009, "dropout": 0.25}
    model = build_model(spec, 10)
    assert [layer.name for layer in model.layers if "dropout" in layer.name] == [
        "dropout2", "dropout3"]
    assert model.count_params() == graves2009(10).count_params()


@pytest.mark.parametrize("spec,needle", [
    ("graves2008", "unknown preset"),
    ({"type": "cnn"}, "type"),
    ({"type": "mdlstm", "levels": []}, "levels"),
    ({"type": "mdlstm", "levels": [{"block": [2, 2]}]}, "units"),
    ({"type": "mdlstm", "levels": [{"block": [2, 2], "units": 2, "size": 3}]}, "size"),
    ({"type": "mdlstm", "levels": [{"units": 2}], "dropout": 1.5}, "dropout"),
    ({"type": "blstm"}, "height"),
    ({"type": "crnn", "height": 16}, "conv"),
    ({"type": "crnn", "height": 16, "conv": [[0, [2, 2]]]}, "filters"),
    ({"type": "crnn", "height": 16, "conv": [[4]]}, "conv block 1"),
])
def test_bad_specs_raise(spec, needle):
    with pytest.raises(ValueError, match=needle):
        build_model(spec, 3)


def test_one_training_step_gives_finite_loss_and_gradients_for_every_weight():
    model = build_model({**SMALL, "levels": [*SMALL["levels"], {"block": [1, 1], "tanh": 3,
                                                                "units": 2}]}, 3)
    rng = np.random.default_rng(2)
    images = rng.uniform(size=(2, 8, 40, 1)).astype("float32")
    widths = np.array([40, 27], "int32")
    labels = np.array([[1, 2, 3], [3, 3, 0]], "int32")
    with tf.GradientTape() as tape:
        logits = model({"image": images, "width": widths}, training=True)
        loss = tf.reduce_mean(ctc_loss(labels, logits, np.array([3, 2]),
                                       output_lengths(model, widths)))
    grads = tape.gradient(loss, model.trainable_variables)
    assert np.isfinite(loss.numpy()) and loss.numpy() > 0
    for var, grad in zip(model.trainable_variables, grads, strict=True):
        assert grad is not None, var.path
        assert np.all(np.isfinite(grad.numpy())), var.path
        assert np.any(grad.numpy() != 0), var.path


@pytest.mark.slow
def test_a_few_hundred_steps_fit_a_handful_of_digit_lines():
    from mdrnn.datasets.charset import Charset
    from mdrnn.datasets.digits import digit_lines
    from mdrnn.decoding import greedy_decode
    from mdrnn.pipelines.preprocess import preprocess_line
    from mdrnn.pipelines.preprocess_config import PreprocessConfig

    samples = digit_lines("train", 4, seed=3, min_digits=3, max_digits=5)
    charset = Charset.from_texts(s.text for s in samples)
    config = PreprocessConfig(height=32)
    lines = [preprocess_line(s.load(), config) for s in samples]
    widths = np.array([line.shape[1] for line in lines], "int32")
    images = np.zeros((len(lines), 32, widths.max(), 1), "float32")
    for b, line in enumerate(lines):
        images[b, :, : line.shape[1], 0] = line
    encoded = [charset.encode(s.text) for s in samples]
    labels = np.zeros((len(encoded), max(map(len, encoded))), "int32")
    for b, ids in enumerate(encoded):
        labels[b, : len(ids)] = ids
    label_length = np.array([len(ids) for ids in encoded], "int32")

    spec = {"type": "mdlstm", "levels": [{"block": [4, 2], "units": 4},
                                         {"block": [4, 2], "tanh": 8, "units": 16}]}
    model = build_model(spec, len(charset.symbols))
    frames = output_lengths(model, widths)
    optimizer = keras.optimizers.Adam(3e-3)
    forward = tf.function(lambda x: model(x, training=True), jit_compile=True)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            logits = forward({"image": images, "width": widths})
            loss = tf.reduce_mean(ctc_loss(labels, logits, label_length, frames))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    first = float(step())
    for _ in range(600):
        last = float(step())
    assert last < first / 10
    logits = model({"image": images, "width": widths}).numpy()
    decoded = [text for text, _ in greedy_decode(logits, frames, charset)]
    assert decoded == [s.text for s in samples]


def test_crnn_preset_shrinks_width_4x_and_round_trips(tmp_path):
    model = build_model("crnn", 5)
    assert output_lengths(model, 1001) == 251
    assert model.get_layer("columns").output.shape[-1] == 4 * 64  # height 64 / 16, 64 maps
    path = tmp_path / "crnn.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    x = np.random.default_rng(0).uniform(size=(1, 64, 40, 1)).astype("float32")
    np.testing.assert_allclose(run(loaded, x, [40]), run(model, x, [40]), atol=1e-6)


def test_presets_resolve_to_copies_and_unknown_names_are_named():
    from mdrnn.presets import PRESETS, resolve_spec

    spec = resolve_spec("graves2009_x6_wide")
    assert [level["block"] for level in spec["levels"]] == [[4, 3], [4, 2], [4, 1]]
    spec["levels"][0]["units"] = 99
    assert PRESETS["graves2009_x6_wide"]["levels"][0]["units"] == 4
    assert width_multiple(build_model("graves2009_x6_wide", 5)) == 6
    with pytest.raises(ValueError, match="unknown preset 'x'; choose from .*graves2009_x6_wide"):
        resolve_spec("x")


def test_a_model_file_of_an_earlier_version_loads_and_computes_the_same():
    from pathlib import Path

    from tiny import line_images, tiny_model

    from mdrnn.datasets.charset import Charset
    from mdrnn.models import load_model
    from mdrnn.pipelines.recognizer import Recognizer

    old = load_model(Path(__file__).parent / "data" / "tiny-2026-12-04.keras")
    assert metadata(old).charset == Charset.from_texts(["ab c"]).to_config()
    images = line_images(4, seed=5)
    then = Recognizer(old, decoder="greedy").recognize(images)
    now = Recognizer(tiny_model(Charset.from_texts(["ab c"])), decoder="greedy").recognize(images)
    assert [r.text for r in then] == [r.text for r in now]
    assert [r.confidence for r in then] == pytest.approx([r.confidence for r in now], abs=1e-6)

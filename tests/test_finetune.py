"""Fine-tuning (`train --from`): the charset grows, old output rows and all other weights
carry over, the base model's network and preprocessing are kept; shipped model names."""

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from mdrnn.datasets.charset import Charset
from mdrnn.datasets.digits import digit_lines
from mdrnn.datasets.samples import Sample
from mdrnn.errors import InputError
from mdrnn.models import build_model, metadata, transfer_weights
from mdrnn.pipelines.cli import main
from mdrnn.pipelines.train import train
from mdrnn.pipelines.train_config import TrainConfig
from mdrnn.zoo import resolve_model, shipped_models

TINY = {"type": "mdlstm", "levels": [{"block": [4, 3], "units": 2},
                                     {"block": [4, 2], "tanh": 4, "units": 4}]}


def test_charset_extension_keeps_the_old_ids():
    old = Charset.from_texts(["cab"])
    new = old.extended(["zebra", "cab"])
    assert new.symbols == ("a", "b", "c", "e", "r", "z")
    assert [new.encode(c)[0] for c in "abc"] == [old.encode(c)[0] for c in "abc"]
    assert old.extended(["abc"]) == old


def test_transfer_weights_fills_the_old_logit_rows():
    source = build_model(TINY, 3, height=16)
    target = build_model(TINY, 5, height=16)
    fresh = target.get_layer("logits").kernel.numpy()
    transfer_weights(source, target)
    for a, b in zip(source.get_layer("mdlstm2").weights, target.get_layer("mdlstm2").weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    kernel = target.get_layer("logits").kernel.numpy()
    np.testing.assert_array_equal(kernel[:, :4], source.get_layer("logits").kernel.numpy())
    np.testing.assert_array_equal(kernel[:, 4:], fresh[:, 4:])
    with pytest.raises(ValueError, match="weight .* has shape"):
        transfer_weights(build_model(TINY, 5, height=16), build_model(TINY, 3, height=16))
    other = {"type": "mdlstm", "levels": [{"block": [4, 3], "units": 3}]}
    with pytest.raises(ValueError, match="no layer 'mdlstm2'|mdlstm1"):
        transfer_weights(build_model(other, 3, height=16), target)


def test_fine_tuning_extends_the_charset_and_starts_from_the_weights(tmp_path):
    digits = digit_lines("train", 12, seed=1, max_digits=3)
    config = TrainConfig(spec=TINY, preprocessing={"height": 16}, epochs=1, batch_size=4,
                         xla=False)
    train(digits, digits[:4], tmp_path / "base", config, verbose=0)
    base = keras.models.load_model(tmp_path / "base" / "model.keras")
    base_symbols = metadata(base).charset["symbols"]

    # New data with a symbol the base never saw ("+"); preset and height are the base's.
    new = [Sample(s.source, s.text + "+", f"plus-{s.id}") for s in digits[:8]]
    tuned = TrainConfig(spec="graves2009", preprocessing={"height": 64}, epochs=1,
                        batch_size=4, xla=False, learning_rate=1e-12,
                        initial_model=str(tmp_path / "base" / "model.keras"),
                        dropout=0.1)
    train(new, new[:4], tmp_path / "tuned", tuned, verbose=0)
    model = keras.models.load_model(tmp_path / "tuned" / "model.keras")
    info = metadata(model)
    assert info.charset["symbols"] == [*base_symbols, "+"]
    assert info.preprocessing["height"] == 16 and info.architecture["dropout"] == 0.1
    # At a vanishing learning rate the carried weights stay what they were.
    np.testing.assert_allclose(model.get_layer("mdlstm1").weights[0].numpy(),
                               base.get_layer("mdlstm1").weights[0].numpy(), atol=1e-6)
    old_rows = base.get_layer("logits").kernel.numpy()
    np.testing.assert_allclose(model.get_layer("logits").kernel.numpy()[:, :old_rows.shape[1]],
                               old_rows, atol=1e-6)


def test_model_names_resolve_and_unknown_ones_are_named(tmp_path):
    for name in shipped_models():
        assert resolve_model(name).is_file()
    file = tmp_path / "m.keras"
    file.write_bytes(b"")
    assert resolve_model(str(file)) == file
    with pytest.raises(InputError, match="no-such-model: no such model file, nor a shipped"):
        resolve_model("no-such-model")
    result = CliRunner().invoke(main, ["transcribe", "no-such-model", str(file), "--out",
                                       str(tmp_path / "out")])
    assert result.exit_code == 1 and "no-such-model: no such model file" in result.output
    assert "Traceback" not in result.output

"""`mdrnn train --optimizer hf`: Hessian-free training of a recogniser, resumed exactly."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner
from test_train import TINY, lines, tiny_config  # noqa: F401

import mdrnn.pipelines.train as training
import mdrnn.pipelines.train_hf as train_hf
from mdrnn.layers import MDLSTM2D
from mdrnn.models import build_model
from mdrnn.optimizers import HessianFree
from mdrnn.pipelines.cli import main
from mdrnn.pipelines.train import train


def hf_config(**kwargs):
    # hf_clip 1: in every step, the tensor parts above their recent median are clipped.
    return tiny_config(optimizer="hf", hf_batches=3, hf_max_cg=8, hf_average=0.5,
                       hf_clip=1.0, schedule="cosine", **kwargs)


@pytest.mark.slow
@pytest.mark.parametrize("xla", [False, True])
def test_hf_training_lowers_the_loss_and_resumes_exactly(tmp_path, lines, monkeypatch, xla):  # noqa: F811
    config = hf_config(epochs=3, xla=xla)
    whole = train(*lines, tmp_path / "whole", config, verbose=0)
    losses = [row["loss"] for row in whole.history]
    assert losses[-1] < 0.8 * losses[0]
    dampings = [row["learning_rate"] for row in whole.history]  # λ after each epoch
    assert len(set(dampings)) > 1 and all(d > 0 for d in dampings)

    save = training.save_checkpoint

    def save_then_die(folder, model, optimizer, state):
        save(folder, model, optimizer, state)
        if state["epoch"] == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(training, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(*lines, tmp_path / "cut", config, verbose=0)
    monkeypatch.setattr(training, "save_checkpoint", save)
    resumed = train(*lines, tmp_path / "cut", config, resume=True, verbose=0)
    # λ and the last CG solution came back from the checkpoint: the same steps follow.
    assert [r["loss"] for r in resumed.history] == losses
    assert [r["learning_rate"] for r in resumed.history] == dampings
    for a, b in zip(*(keras.models.load_model(tmp_path / run / "model.keras").variables
                      for run in ("cut", "whole")), strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_the_cli_takes_hf_and_its_settings(tmp_path, monkeypatch):
    built = []

    def recorded(*args, **options):
        built.append(options)
        return HessianFree(*args, **options)

    monkeypatch.setattr(train_hf, "HessianFree", recorded)
    (tmp_path / "spec.json").write_text(json.dumps(TINY))
    result = CliRunner().invoke(main, [
        "train", "--train", "digits:train:8", "--val", "digits:val:4", "--out",
        str(tmp_path / "run"), "--spec", str(tmp_path / "spec.json"), "--height", "16",
        "--epochs", "1",
        "--batch-size", "4", "--no-xla", "--optimizer", "hf", "--hf-batches", "2",
        "--hf-damping", "3", "--hf-max-cg", "3", "--hf-precondition", "0.75",
        "--hf-clip", "6", "--hf-structural", "0.5"])
    assert result.exit_code == 0, result.output
    state = json.loads((tmp_path / "run" / "checkpoint" / "state.json").read_text())
    assert {k: state["config"][k] for k in ("optimizer", "hf_batches", "hf_damping",
                                            "hf_max_cg", "hf_precondition", "hf_clip",
                                            "hf_structural")} == {
        "optimizer": "hf", "hf_batches": 2, "hf_damping": 3.0, "hf_max_cg": 3,
        "hf_precondition": 0.75, "hf_clip": 6.0, "hf_structural": 0.5}
    assert [(o["damping"], o["max_cg"], o["precondition"], o["clip"], o["structural"])
            for o in built] == [(3, 3, 0.75, 6, 0.5)]
    # The checkpoint holds HF's state (λ, the last CG solution, the steps: one, on
    # the 2 batches of 4 lines), and the log's learning_rate column its λ.
    with np.load(tmp_path / "run" / "checkpoint" / "optimizer.npz") as saved:
        damping, solution, steps = (saved[f"arr_{i}"] for i in range(3))
    assert steps == 1 and solution.any()
    assert state["history"][0]["learning_rate"] == pytest.approx(float(damping))
    assert (tmp_path / "run" / "model.keras").is_file()


def test_hf_validates_and_saves_the_weights_moving_average(tmp_path):
    (tmp_path / "spec.json").write_text(json.dumps(TINY))
    result = CliRunner().invoke(main, [
        "train", "--train", "digits:train:12", "--val", "digits:val:4", "--out",
        str(tmp_path / "run"), "--spec", str(tmp_path / "spec.json"), "--height", "16",
        "--epochs", "1", "--batch-size", "4", "--no-xla", "--optimizer", "hf",
        "--hf-batches", "1", "--hf-max-cg", "3", "--hf-average", "0.6"])
    assert result.exit_code == 0, result.output
    with np.load(tmp_path / "run" / "checkpoint" / "optimizer.npz") as saved:
        steps, mean, averaged = saved["arr_2"], saved["arr_3"], saved["arr_4"]
    assert steps == averaged == 3  # 12 lines in batches of 4, a step each
    model = keras.models.load_model(tmp_path / "run" / "model.keras")  # epoch 1: the best
    saved_model = np.concatenate([v.numpy().ravel() for v in model.trainable_variables])
    np.testing.assert_allclose(saved_model, mean, rtol=1e-6, atol=1e-7)
    # The checkpoint's model weights are the last step's, not their average.
    with np.load(tmp_path / "run" / "checkpoint" / "model.npz") as saved:
        weights = np.concatenate([saved[f"arr_{i}"].ravel() for i in range(len(saved.files))])
    assert weights.size == mean.size and not np.allclose(weights, mean, atol=1e-4)


def test_hf_settings_are_checked_and_old_configs_read_without_them():
    from dataclasses import asdict

    from mdrnn.pipelines.train_config import TrainConfig

    with pytest.raises(ValueError, match="hf_precondition"):
        TrainConfig(optimizer="hf", hf_precondition=1.5)
    with pytest.raises(ValueError, match="hf_structural"):
        TrainConfig(optimizer="hf", hf_structural=-0.1)
    stored = asdict(TrainConfig(optimizer="hf"))
    del stored["hf_precondition"], stored["hf_structural"]  # written before they existed
    old = TrainConfig.from_dict(stored)
    assert old.hf_precondition == 0.0 and old.hf_structural == 0.0


def test_structural_damping_penalises_the_mdlstm_outputs_changes():
    """vᵀ(P_μ − P_0)v = λμ Σ‖J_h v‖² / B, J_h v the change of every MDLSTM layer's
    output (central differences; float32, as the logits are), padding included (there
    it is 0)."""
    keras.utils.set_random_seed(4)
    model = build_model(TINY, num_classes=5, height=16)
    rng = np.random.default_rng(4)
    batch = {"image": rng.random((2, 16, 24, 1)), "width": np.array([24, 13], np.int32)}
    steps = train_hf.HFSteps(model, tf.distribute.get_strategy(), 1, xla=False,
                             structural=0.5)
    v = tf.constant(rng.normal(size=steps.hf.flat_weights().shape), tf.float32)
    damping, mu = 0.3, 0.5
    product = steps.hf.gauss_newton_product(batch, v, damping, mu)
    without = steps.hf.gauss_newton_product(batch, v, damping, 0.0)

    states = keras.Model(model.input, [layer.output for layer in model.layers
                                       if isinstance(layer, MDLSTM2D)])
    theta, eps = steps.hf.flat_weights(), 1e-3

    def outputs_at(flat):
        steps.hf.set_flat_weights(flat)
        return [h.numpy() for h in states(batch)]

    changes = [(a.astype(float) - b) / (2 * eps) for a, b in zip(
        outputs_at(theta + eps * v), outputs_at(theta - eps * v), strict=True)]
    steps.hf.set_flat_weights(theta)
    assert len(changes) == 2 and all(np.abs(c).max() > 1e-3 for c in changes)
    # The first level sees blocks 3 columns wide: the second line's 13 columns are 5.
    assert np.all(changes[0][1, :, 5:] == 0) and np.abs(changes[0][1, :, :5]).max() > 1e-3
    expected = damping * mu * sum(float(np.sum(c * c)) for c in changes) / 2
    assert float(tf.reduce_sum(v * (product - without))) == pytest.approx(expected, rel=1e-5)
    # Without structural damping the recurrent outputs are not computed apart at all.
    plain = train_hf.HFSteps(model, tf.distribute.get_strategy(), 1, xla=False)
    assert plain._states is None and plain._outputs(batch)[1] == []

"""Training: outputs, exact resume, tf.distribute on two logical CPUs, the CLI."""

import csv
import dataclasses
import importlib.util
import json
import re
import subprocess
import sys
import textwrap

import cv2
import keras
import numpy as np
import pytest
from click.testing import CliRunner

import mdrnn.pipelines.train as training
from mdrnn.datasets.digits import digit_lines
from mdrnn.errors import InputError
from mdrnn.models import metadata
from mdrnn.pipelines.cli import main
from mdrnn.pipelines.train import train
from mdrnn.pipelines.train_config import TrainConfig

TINY = {"type": "mdlstm", "levels": [{"block": [4, 3], "units": 2},
                                     {"block": [4, 2], "tanh": 4, "units": 4}]}


def tiny_config(**kwargs):
    return TrainConfig(**{"spec": TINY, "preprocessing": {"height": 16}, "epochs": 2,
                          "batch_size": 4, "xla": False, **kwargs})


@pytest.fixture(scope="module")
def lines():
    return digit_lines("train", 16, seed=1, max_digits=4), digit_lines("val", 6, seed=1,
                                                                        max_digits=4)


def test_training_writes_model_checkpoint_and_logs(tmp_path, lines):
    result = train(*lines, tmp_path, tiny_config(schedule="cosine", learning_rate=0.002),
                   verbose=0)
    assert result.epochs_run == 2 and len(result.history) == 2
    assert all(np.isfinite(row["loss"]) for row in result.history)
    model = keras.models.load_model(tmp_path / "model.keras")
    assert sorted(metadata(model).charset["symbols"]) == sorted(
        set("".join(s.text for s in lines[0])))
    assert metadata(model).preprocessing["height"] == 16
    with open(tmp_path / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert float(rows[0]["loss"]) == pytest.approx(result.history[0]["loss"])
    # Cosine over 2 epochs: the base rate, then half of it, which the optimizer ends with.
    assert [float(r["learning_rate"]) for r in rows] == pytest.approx([0.002, 0.001])
    with np.load(tmp_path / "checkpoint" / "optimizer.npz") as saved:
        scalars = [float(saved[k]) for k in saved.files if saved[k].shape == ()]
    assert any(v == pytest.approx(0.001) for v in scalars)
    import tensorflow as tf

    events = list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    tags = {}
    for record in tf.compat.v1.train.summary_iterator(str(events[0])):
        for value in record.summary.value:
            tags.setdefault(value.tag, []).append(
                (record.step, value.metadata.plugin_data.plugin_name, value.tensor))
    assert [step for step, _, _ in tags["val_cer"]] == [1, 2]
    if importlib.util.find_spec("matplotlib"):
        assert cv2.imread(str(tmp_path / "curves.png")).shape[:2] == (700, 700)
        # The `mdrnn show` picture of a validation line, as TensorBoard reads images.
        step, plugin, tensor = tags["validation line 1"][-1]
        width, height, png = tf.make_ndarray(tensor)
        picture = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
        assert (step, plugin) == (2, "images")
        assert picture.shape[:2] == (int(height), int(width))
    state = json.loads((tmp_path / "checkpoint" / "state.json").read_text())
    assert state["epoch"] == 2 and state["config"]["spec"] == TINY


def test_an_existing_run_needs_resume_and_resume_needs_a_run(tmp_path, lines):
    with pytest.raises(InputError, match="no checkpoint"):
        train(*lines, tmp_path / "empty", tiny_config(), resume=True, verbose=0)
    train(*lines, tmp_path, tiny_config(epochs=1), verbose=0)
    with pytest.raises(InputError, match="--resume"):
        train(*lines, tmp_path, tiny_config(epochs=1), verbose=0)


def test_resume_after_an_interruption_gives_the_uninterrupted_result(tmp_path, lines,
                                                                      monkeypatch):
    config = tiny_config(epochs=3, augment=True, schedule="cosine")
    whole = train(*lines, tmp_path / "whole", config, verbose=0)
    whole_weights = [v.numpy() for v in keras.models.load_model(
        tmp_path / "whole" / "model.keras").variables]

    save = training.save_checkpoint

    def save_then_die(folder, model, optimizer, state):
        save(folder, model, optimizer, state)
        if state["epoch"] == 1:
            raise KeyboardInterrupt  # killed right after the first epoch's checkpoint

    monkeypatch.setattr(training, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(*lines, tmp_path / "cut", config, verbose=0)
    monkeypatch.setattr(training, "save_checkpoint", save)
    resumed = train(*lines, tmp_path / "cut", config, resume=True, verbose=0)

    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in whole.history]
    assert [r["learning_rate"] for r in resumed.history] == pytest.approx([1e-3, 7.5e-4, 2.5e-4])
    assert resumed.best_cer == whole.best_cer and resumed.best_epoch == whole.best_epoch
    cut_weights = [v.numpy() for v in keras.models.load_model(
        tmp_path / "cut" / "model.keras").variables]
    for a, b in zip(cut_weights, whole_weights, strict=True):
        np.testing.assert_array_equal(a, b)
    with open(tmp_path / "cut" / "log.csv") as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["1", "2", "3"]


@pytest.mark.parametrize("shards", [2, 3])
def test_a_sharded_step_makes_the_update_of_the_whole_batch(shards):
    import tensorflow as tf

    from mdrnn.models import build_model, output_lengths
    from mdrnn.pipelines.train_steps import make_optimizer, make_train_step

    rng = np.random.default_rng(0)
    width = np.array([40, 32, 24, 40, 16], "int32")
    images = rng.uniform(size=(5, 16, 40, 1)).astype("float32")
    images[np.arange(40) >= width[:, None, None].repeat(16, 1)] = 0.0
    labels = rng.integers(1, 6, (5, 3)).astype("int32")
    weights, losses = [], []
    for count in (1, shards):
        keras.utils.set_random_seed(3)
        model = build_model(TINY, 5, height=16)
        optimizer = make_optimizer(TrainConfig(optimizer="sgd", learning_rate=0.5))
        optimizer.build(model.trainable_variables)
        frames = output_lengths(model, width)
        batch = {"image": tf.constant(images), "width": tf.constant(width),
                 "labels": tf.constant(labels),
                 "label_length": tf.constant(np.minimum(3, frames).astype("int32")),
                 "index": tf.range(5)}
        step = make_train_step(model, optimizer, tf.distribute.get_strategy(), 5,
                               shards=count)
        losses.append(float(step(batch)))
        weights.append([w.numpy() for w in model.trainable_variables])
    assert losses[0] > 0
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-5)
    for whole, sharded in zip(*weights, strict=True):
        np.testing.assert_allclose(sharded, whole, rtol=1e-4, atol=1e-6)
    keras.utils.set_random_seed(3)
    initial = build_model(TINY, 5, height=16).trainable_variables
    # The step moved every weight, so the comparison above compares updates.
    assert all(not np.allclose(w.numpy(), u) for w, u in zip(initial, weights[0], strict=True))


def test_default_shards_are_the_cores_of_the_process(monkeypatch):
    import os

    import tensorflow as tf

    from mdrnn.pipelines import train_steps

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2})
    strategy = tf.distribute.get_strategy()
    assert train_steps.default_shards(strategy, 16) == 3
    assert train_steps.default_shards(strategy, 2) == 2
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {5})
    assert train_steps.default_shards(strategy, 16) == 1


def test_mirrored_strategy_on_two_logical_cpus_trains(tmp_path):
    script = textwrap.dedent(f"""
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from mdrnn.datasets.digits import digit_lines
        from mdrnn.pipelines.train import train
        from mdrnn.pipelines.train_config import TrainConfig
        from mdrnn.pipelines.train_steps import choose_strategy
        assert choose_strategy(2).num_replicas_in_sync == 2
        config = TrainConfig(spec={TINY!r}, preprocessing={{"height": 16}}, epochs=1,
                             batch_size=4)
        result = train(digit_lines("train", 8, seed=1, max_digits=4),
                       digit_lines("val", 4, seed=1, max_digits=4), {str(tmp_path)!r},
                       config, devices=2, verbose=0)
        print("loss", result.history[0]["loss"])
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    loss = float(out.stdout.split("loss")[-1])
    assert np.isfinite(loss) and loss > 0


def test_cli_train_and_its_errors(tmp_path):
    data = tmp_path / "lines"
    data.mkdir()

    for sample in digit_lines("train", 8, seed=2, max_digits=3):
        cv2.imwrite(str(data / f"{sample.id}.png"), sample.load())
        (data / f"{sample.id}.gt.txt").write_text(sample.text)
    runner = CliRunner()
    args = ["-q", "train", "--train", str(data), "--val", str(data), "--out",
            str(tmp_path / "run"), "--height", "16", "--epochs", "1", "--batch-size", "4",
            "--no-xla", "--spec", str(tmp_path / "spec.json")]
    (tmp_path / "spec.json").write_text(json.dumps(TINY))
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "best validation CER" in result.output
    assert re.search(r"trained on 8 lines; validated on 8 lines; \d+ symbols, [\d,]+ weights",
                     result.output)
    assert (tmp_path / "run" / "model.keras").is_file()
    with_lm = runner.invoke(main, [*args[:7], str(tmp_path / "run2"), *args[8:], "--lm", "auto",
                                   "--lm-order", "3"])
    assert with_lm.exit_code == 0, with_lm.output
    assert (tmp_path / "run2" / "model.keras").is_file()
    again = runner.invoke(main, args)
    assert again.exit_code == 1 and "--resume" in again.output
    assert "Traceback" not in again.output
    missing = runner.invoke(main, [*args[:3], str(tmp_path / "nowhere"), *args[4:]])
    assert missing.exit_code == 1 and "nowhere" in missing.output
    (tmp_path / "bad.json").write_text("{not json")
    bad_spec = runner.invoke(main, [*args[:-1], str(tmp_path / "bad.json")])
    assert bad_spec.exit_code == 2 and "bad.json" in bad_spec.output
    (tmp_path / "odd.json").write_text(json.dumps(
        {"type": "mdlstm", "levels": [{"block": [4, 3], "units": 2, "features": 6}]}))
    odd_spec = runner.invoke(main, [*args[:7], str(tmp_path / "run3"), *args[8:-1],
                                    str(tmp_path / "odd.json")])
    assert odd_spec.exit_code == 1 and "unknown keys ['features']" in odd_spec.output
    assert "Traceback" not in odd_spec.output


def test_crnn_trains_through_the_same_pipeline(tmp_path, lines):
    spec = {"type": "crnn", "conv": [[4, [2, 2]], [4, [2, 1]]], "units": 4, "layers": 1}
    result = train(*lines, tmp_path, tiny_config(spec=spec, epochs=1, xla=True), verbose=0)
    assert np.isfinite(result.history[0]["loss"]) and result.history[0]["loss"] > 0
    assert metadata(keras.models.load_model(tmp_path / "model.keras")).architecture[
        "type"] == "crnn"


def test_train_config_file_gives_defaults_and_names_unknown_keys(tmp_path, monkeypatch):
    seen = {}

    def fake_train(train_samples, val_samples, out, config, **options):
        seen["config"] = config
        raise SystemExit(0)

    monkeypatch.setattr(training, "train", fake_train)
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"train": "digits:train:8", "val": "digits:val:4",
                                  "learning-rate": 0.003, "augment": True, "epochs": 7}))
    runner = CliRunner()
    result = runner.invoke(main, ["train", "--config", str(config), "--out",
                                  str(tmp_path / "run"), "--epochs", "3"])
    assert result.exit_code == 0, result.output
    assert (seen["config"].learning_rate, seen["config"].augment) == (0.003, True)
    assert seen["config"].epochs == 3  # the command line wins
    config.write_text(json.dumps({"lerning_rate": 0.1}))
    result = runner.invoke(main, ["train", "--config", str(config), "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "unknown key 'lerning_rate'; did you mean 'learning_rate'?" in result.output


def test_config_from_an_older_checkpoint():
    from mdrnn.pipelines.preprocess_config import PreprocessConfig

    stored = dataclasses.asdict(TrainConfig(spec="graves2009_x9", dropout=0.2))
    assert stored["preprocessing"]["height"] == 64  # stored as plain values
    assert TrainConfig.from_dict(stored) == TrainConfig(spec="graves2009_x9", dropout=0.2)
    older = {**stored, "preprocessing": {"height": 48}, "initial_dropout": 0.1}
    del older["dropout"]
    config = TrainConfig.from_dict(older)
    assert config.preprocessing == PreprocessConfig(height=48) and config.dropout == 0.1
    with pytest.raises(ValueError, match="dropout"):
        TrainConfig(dropout=1.0)


def test_a_failed_checkpoint_write_names_the_folder_and_keeps_the_last(tmp_path, monkeypatch):
    import keras

    from mdrnn.pipelines import checkpoint

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    optimizer = keras.optimizers.Adam()
    optimizer.build(model.trainable_variables)
    folder = tmp_path / "checkpoint"
    checkpoint.save_checkpoint(folder, model, optimizer, {"epoch": 1})

    def full_disk(path, variables):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint, "_save_variables", full_disk)
    with pytest.raises(OSError, match=r"checkpoint\.tmp: cannot write the checkpoint \(No space"):
        checkpoint.save_checkpoint(folder, model, optimizer, {"epoch": 2})
    assert checkpoint.read_state(folder) == {"epoch": 1}
    assert not (tmp_path / "checkpoint.tmp").exists()


def test_strict_refuses_unusable_lines_before_training(tmp_path, lines):

    broken = tmp_path / "broken"
    broken.mkdir()
    for sample in lines[0][:6]:
        cv2.imwrite(str(broken / f"{sample.id}.png"), sample.load())
        (broken / f"{sample.id}.gt.txt").write_text(sample.text)
    (broken / "bad.png").write_bytes(b"not a png")
    (broken / "bad.gt.txt").write_text("12")
    args = ["train", "--train", str(broken), "--val", str(broken), "--out", str(tmp_path / "run"),
            "--height", "16", "--epochs", "1", "--batch-size", "2", "--no-xla", "--spec",
            str(tmp_path / "spec.json"), "--strict"]
    (tmp_path / "spec.json").write_text(json.dumps(TINY))
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert "strict: 1 training and 1 validation lines cannot be used (first: " in result.output
    assert "bad.png" in result.output and not (tmp_path / "run" / "model.keras").exists()

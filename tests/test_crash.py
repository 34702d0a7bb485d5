"""Jobs killed (SIGKILL) at random moments: re-runs finish them with the output of a run
never interrupted, and leave no temporary or torn file."""

import csv
import functools
import json
import random
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from tiny import line_images

CLI = [sys.executable, "-c", "from mdrnn.pipelines.cli import main; main()", "-q"]


def start(args, cwd):
    return subprocess.Popen(CLI + [str(a) for a in args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def kill_when(process, progress, target: int, delay: float = 0.0) -> bool:
    """SIGKILL `process` `delay` seconds after `progress()` reaches `target`; False if
    it finished first."""
    while progress() < target:
        if process.poll() is not None:
            return False
        time.sleep(0.005)
    time.sleep(delay)
    if process.poll() is not None:
        return False
    process.send_signal(signal.SIGKILL)
    process.wait()
    return True


def finish(args, cwd) -> None:
    done = subprocess.run(CLI + [str(a) for a in args], cwd=cwd, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]


def done(out, output_format) -> int:
    """Inputs finished so far in `out`."""
    if output_format == "txt":
        return len(list(out.glob("[!.]*.txt"))) if out.is_dir() else 0
    jsonl = out / "transcriptions.jsonl"
    return jsonl.read_bytes().count(b"\n") if jsonl.exists() else 0


def hidden_files(folder):
    return sorted(p.name for p in folder.rglob(".*") if p.name != ".mdrnn.lock")


def test_transcription_killed_at_random_moments(model_file, tmp_path):
    lines = tmp_path / "lines"
    lines.mkdir()
    for i, image in enumerate(line_images(300, seed=7)):
        cv2.imwrite(str(lines / f"l{i:03d}.png"), image)
    for output_format in ("txt", "jsonl"):
        finish(["transcribe", model_file, lines, "-f", output_format, "--out",
                tmp_path / f"whole-{output_format}"], tmp_path)
    rng = random.Random(0)
    killed = 0
    for output_format in ("txt", "jsonl"):
        out = tmp_path / f"cut-{output_format}"
        args = ["transcribe", model_file, lines, "-f", output_format, "--out", out]
        for _ in range(3):
            # Killed once a random number of inputs more is done: in the middle of the
            # work, wherever the job then is (reading, decoding, writing).
            target = done(out, output_format) + rng.randint(10, 60)
            progress = functools.partial(done, out, output_format)
            killed += kill_when(start(args, tmp_path), progress, target, rng.uniform(0, 0.05))
        finish(args, tmp_path)
        whole = tmp_path / f"whole-{output_format}"
        if output_format == "txt":
            assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == \
                sorted(p.name for p in whole.iterdir() if not p.name.startswith("."))
            for path in whole.glob("*.txt"):
                assert (out / path.name).read_text("utf-8") == path.read_text("utf-8")
        else:
            def records(folder):
                rows = [json.loads(r) for r in
                        (folder / "transcriptions.jsonl").read_text("utf-8").splitlines()]
                return {r["source"]: (r["text"], r["confidence"]) for r in rows}, len(rows)

            (cut, cut_rows), (full, full_rows) = records(out), records(whole)
            assert cut == full and cut_rows == full_rows == 300  # each input once
        assert hidden_files(out) == []
    assert killed >= 3  # the test killed jobs in their work, not after it


@pytest.mark.slow
def test_training_killed_at_random_moments_resumes_to_the_uninterrupted_result(tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"type": "mdlstm", "levels": [
        {"block": [4, 3], "units": 2}, {"block": [4, 2], "tanh": 4, "units": 4}]}))
    common = ["train", "--train", "digits:train:64", "--val", "digits:val:16", "--spec", spec,
              "--height", "24", "--epochs", "6", "--batch-size", "8", "--learning-rate",
              "0.01", "--no-xla"]
    finish(common + ["--out", tmp_path / "whole"], tmp_path)
    out = tmp_path / "cut"
    rng = random.Random(1)

    def log(folder):
        if not (folder / "log.csv").exists():
            return []
        with open(folder / "log.csv") as f:
            return [(int(r["epoch"]), float(r["loss"]), float(r["val_cer"]))
                    for r in csv.DictReader(f)]

    killed = 0
    for _ in range(12):
        resume = ["--resume"] if (out / "checkpoint" / "state.json").exists() else []
        process = start(common + ["--out", out] + resume, tmp_path)
        # Killed a random time after zero to two more epochs finish: while TensorFlow
        # starts, in an epoch, during validation or while a checkpoint is written.
        if not kill_when(process, lambda: len(log(out)), len(log(out)) + rng.randint(0, 2),
                         rng.uniform(0.5, 3.0)):
            assert process.returncode == 0, process.stderr.read()[-3000:]
            break
        killed += 1
    else:
        pytest.fail("the run did not finish in 12 starts")
    assert killed >= 2

    cut, whole = log(out), log(tmp_path / "whole")
    assert [row[0] for row in cut] == [row[0] for row in whole] == list(range(1, 7))
    np.testing.assert_allclose([row[1:] for row in cut], [row[1:] for row in whole],
                               rtol=1e-4)
    assert hidden_files(out) == []
    assert not any(p.name.endswith(".tmp") for p in out.rglob("*"))
    import keras

    import mdrnn.layers  # noqa: F401

    assert keras.models.load_model(out / "model.keras").count_params() > 0

"""Training on a MultiWorkerMirroredStrategy cluster of two local worker processes."""

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

SPEC = {"type": "mdlstm", "levels": [{"block": [4, 3], "units": 2},
                                     {"block": [4, 2], "tanh": 4, "units": 4}]}
SCRIPT = textwrap.dedent(f"""
    import sys
    from mdrnn.datasets.digits import digit_lines
    from mdrnn.pipelines.train import train
    from mdrnn.pipelines.train_config import TrainConfig
    config = TrainConfig(spec={SPEC!r}, preprocessing={{"height": 16}},
                         epochs=int(sys.argv[2]), batch_size=8, xla=False)
    result = train(digit_lines("train", 32, seed=1, max_digits=4),
                   digit_lines("val", 8, seed=1, max_digits=4), sys.argv[1], config,
                   resume=sys.argv[3] == "resume", verbose=0)
    print("RESULT", *[(row["loss"], row["val_cer"]) for row in result.history])
""")


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start_workers(out, epochs: int, resume: bool = False) -> list[subprocess.Popen]:
    """Two workers on localhost ports running `train` into `out`; worker 0 is the chief."""
    workers = [f"localhost:{port}" for port in free_ports(2)]
    procs = []
    for index in range(2):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_CONFIG": json.dumps(
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})}
        procs.append(subprocess.Popen(
            [sys.executable, "-c", SCRIPT, str(out), str(epochs),
             "resume" if resume else "new"], env=env, cwd=out.parent, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True))
    return procs


def results(procs) -> list[str]:
    """Each worker's history, after checking that it finished."""
    outputs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err[-3000:]
    return [out.split("RESULT")[-1].strip() for out, _ in outputs]


def test_two_workers_train_the_same_weights_and_the_chief_alone_writes(tmp_path):
    run = tmp_path / "run"
    found = results(start_workers(run, 2))
    # Both workers applied the same updates to the same weights: the same losses and
    # validation CERs, epoch by epoch.
    assert found[0] == found[1] and found[0].count("(") == 2
    assert (run / "model.keras").is_file() and (run / "checkpoint" / "state.json").is_file()
    assert len(list((run / "tensorboard").glob("events.out.tfevents.*"))) == 1


def log(folder) -> list[tuple[int, float, float]]:
    if not (folder / "log.csv").exists():
        return []
    with open(folder / "log.csv") as f:
        return [(int(r["epoch"]), float(r["loss"]), float(r["val_cer"]))
                for r in csv.DictReader(f)]


@pytest.mark.slow
def test_a_killed_worker_and_a_resumed_cluster_end_as_an_uninterrupted_run(tmp_path):
    whole = tmp_path / "whole"
    results(start_workers(whole, 4))
    out = tmp_path / "cut"
    procs = start_workers(out, 4)
    deadline = time.monotonic() + 300
    while len(log(out)) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(log(out)) == 1, "the first epoch did not finish"
    procs[1].send_signal(signal.SIGKILL)  # a worker machine is lost in epoch 2
    # The chief notices that its peer stopped sending heartbeats and stops, saying why.
    _, err = procs[0].communicate(timeout=120)
    assert "a worker of the cluster is unreachable" in err.splitlines()[-1]
    assert "start every worker again with --resume" in err.splitlines()[-1]
    for p in procs:
        assert p.returncode != 0
    assert len(log(out)) < 4
    resumed = results(start_workers(out, 4, resume=True))
    assert resumed[0] == resumed[1]
    cut, full = log(out), log(whole)
    assert [row[0] for row in cut] == [row[0] for row in full] == [1, 2, 3, 4]
    np.testing.assert_allclose([row[1:] for row in cut], [row[1:] for row in full], rtol=1e-4)

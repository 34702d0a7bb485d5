"""Training on a MultiWorkerMirroredStrategy cluster of two local worker processes."""

import json
import os
import socket
import subprocess
import sys
import textwrap

SPEC = {"type": "mdlstm", "levels": [{"block": [4, 3], "units": 2},
                                     {"block": [4, 2], "tanh": 4, "units": 4}]}


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_train_the_same_weights_and_the_chief_alone_writes(tmp_path):
    workers = [f"localhost:{port}" for port in free_ports(2)]
    script = textwrap.dedent(f"""
        import sys
        from mdrnn.datasets.digits import digit_lines
        from mdrnn.pipelines.train import train
        from mdrnn.pipelines.train_config import TrainConfig
        config = TrainConfig(spec={SPEC!r}, preprocessing={{"height": 16}}, epochs=2,
                             batch_size=8, xla=False)
        result = train(digit_lines("train", 32, seed=1, max_digits=4),
                       digit_lines("val", 8, seed=1, max_digits=4), sys.argv[1], config,
                       verbose=0)
        print("RESULT", *[(row["loss"], row["val_cer"]) for row in result.history])
    """)
    procs = []
    for index in range(2):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_CONFIG": json.dumps(
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})}
        procs.append(subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "run")],
                                      env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    outputs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err[-3000:]
    results = [out.split("RESULT")[-1].strip() for out, _ in outputs]
    # Both workers applied the same updates to the same weights: the same losses and
    # validation CERs, epoch by epoch.
    assert results[0] == results[1] and results[0].count("(") == 2
    run = tmp_path / "run"
    assert (run / "model.keras").is_file() and (run / "checkpoint" / "state.json").is_file()
    assert len(list((run / "tensorboard").glob("events.out.tfevents.*"))) == 1

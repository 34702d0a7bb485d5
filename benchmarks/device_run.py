"""All speed benchmarks in one call, for a machine with an accelerator: one JSON file.

Runs, each in its own process so that one failure leaves the others' figures:
the MDLSTM2D layer (`mdlstm_speed.py`, small and large, with the four directions
stacked in one loop as well as in separate loops), the training step
(`train_speed.py`, graves2009_x9 and the wide preset at 64 x 1000, batch 16 and 64)
and transcription (`transcribe_speed.py` with its XLA path). The JSON holds the
device (name from `nvidia-smi` where there is one), the versions, the date, the
load average before and after, and each script's printed table and exit status,
so that the figures go into RESULTS.md with the card's name.

    python benchmarks/device_run.py --out device.json [--quick]

`--quick` runs tiny sizes only, to check the script itself on a CPU.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _device() -> str:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                              "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=30)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    return f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def _jobs(quick: bool) -> list[tuple[str, list[str]]]:
    if quick:
        return [
            ("layer", ["mdlstm_speed.py", "--sizes", "small", "--repeats", "1", "--variants",
                       "mdlstm-4dir+xla,mdlstm-4dir-stacked+xla"]),
            ("train_step", ["train_speed.py", "--batch", "2", "--width", "200", "--repeats",
                            "1", "--presets", "graves2009_x9"]),
            ("transcription", ["transcribe_speed.py", "--count", "64", "--single-count", "4"]),
        ]
    jobs = [("layer", ["mdlstm_speed.py", "--repeats", "7", "--variants",
                       "mdlstm-1dir+xla,mdlstm-1dir,mdlstm-4dir+xla,mdlstm-4dir,"
                       "mdlstm-4dir-stacked+xla,mdlstm-4dir-stacked,keras-lstm,"
                       "keras-lstm+xla,pixel-scan+xla"])]
    for batch in (16, 64):
        jobs.append((f"train_step_batch{batch}",
                     ["train_speed.py", "--batch", str(batch), "--repeats", "5",
                      "--presets", "graves2009_x9,graves2009_x9_wide"]))
    jobs.append(("transcription", ["transcribe_speed.py", "--count", "4000", "--xla"]))
    return jobs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the JSON file to write")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to test the script")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per benchmark")
    args = parser.parse_args()
    import tensorflow as tf

    report = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "device": _device(), "tensorflow": tf.__version__, "python": sys.version.split()[0],
              "gpus_seen_by_tf": [d.name for d in tf.config.list_physical_devices("GPU")],
              "load_before": os.getloadavg(), "runs": {}}
    for name, command in _jobs(args.quick):
        started = time.perf_counter()
        try:
            done = subprocess.run([sys.executable, str(HERE / command[0]), *command[1:]],
                                  capture_output=True, text=True, timeout=args.timeout,
                                  cwd=HERE.parent)
            result = {"exit": done.returncode, "output": done.stdout,
                      "errors": done.stderr[-2000:] if done.returncode else ""}
        except subprocess.TimeoutExpired as expired:
            result = {"exit": None, "output": (expired.stdout or b"").decode(errors="replace")
                      if isinstance(expired.stdout, bytes) else (expired.stdout or ""),
                      "errors": f"timed out after {args.timeout} s"}
        result["command"] = " ".join(command)
        result["seconds"] = round(time.perf_counter() - started, 1)
        report["runs"][name] = result
        print(f"{name}: exit {result['exit']} in {result['seconds']} s", file=sys.stderr,
              flush=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    report["load_after"] = os.getloadavg()
    args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

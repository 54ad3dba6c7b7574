"""Benchmarks without the simulator: a frame file stands in for the task's first frame.

`benchmarks/gpu.sh` runs on machines that have torch but no PyBullet; there the latency
and serving benchmarks read the observation and contract from a `--frame` file.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import frames  # noqa: E402
import serve_latency  # noqa: E402


def test_a_saved_frame_reads_back_as_the_simulator_gave_it(tmp_path):
    contract, obs = serve_latency.task_setup("sims/Pick-v0")
    frames.save_frame(str(tmp_path / "f"), contract, obs)
    read_contract, read_obs = serve_latency.task_setup("ignored", str(tmp_path / "f"))
    assert read_contract.hash() == contract.hash()
    assert read_obs["instruction"] == obs["instruction"]
    np.testing.assert_array_equal(read_obs["state"], obs["state"])
    assert read_obs["state"].dtype == obs["state"].dtype
    for view, image in obs["images"].items():
        np.testing.assert_array_equal(read_obs["images"][view], image)


def test_serve_latency_runs_from_a_frame_file(tmp_path):
    frame = tmp_path / "frame.msgpack"
    common = [sys.executable, str(ROOT / "benchmarks" / "serve_latency.py"), "--policy",
              "builtin:hold", "--device", "cpu", "--requests", "20", "--seconds", "0.2",
              "--clients", "1"]
    subprocess.run([*common, "--save-frame", str(frame)], check=True, capture_output=True,
                   cwd=ROOT, timeout=120)
    out = subprocess.run([*common, "--frame", str(frame), "--task", "not-a-task"], check=True,
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["throughput_obs_per_s"]["1"] > 0
    assert result["server_batches"]["errors"] == {}

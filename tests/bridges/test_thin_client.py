"""The robot side alone: a robot process in which torch, transformers, the simulator and
the server-side packages cannot be imported drives a robot from a real, model-backed
server (what `pip install ./bridges` gives a robot's computer)."""

from __future__ import annotations

import json
import subprocess
import sys

from vla.serving.policies import load_policy
from vla.serving.server import PolicyServer, ServerConfig

BLOCKED = ("torch", "transformers", "peft", "gymnasium", "pybullet", "h5py", "vla", "sims",
           "policies")

ROBOT_PROCESS = f"""
import importlib.abc, json, sys

class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {BLOCKED!r}:
            raise ImportError(f"{{name}} is not installed on this robot computer")

sys.meta_path.insert(0, Blocked())
from bridges.client import ControlLoop, LoopConfig
from bridges.mock_robot import MockRobot

robot = MockRobot(contract=json.loads(sys.argv[2]))
with robot, ControlLoop(robot, sys.argv[1], LoopConfig(connect_timeout_s=30)) as loop:
    summary = loop.run(steps=5, instruction="pick up the red block")
loaded = sorted({{m.split(".")[0] for m in sys.modules}} & set({BLOCKED!r}))
print(json.dumps({{"control": summary, "loaded": loaded}}))
"""


def test_a_robot_process_without_torch_runs_against_a_model_server(tiny_checkpoint):
    policy = load_policy(tiny_checkpoint, device="cpu")
    server = PolicyServer(policy, ServerConfig(bind="tcp://127.0.0.1:*")).start()
    try:
        done = subprocess.run([sys.executable, "-c", ROBOT_PROCESS, server.endpoint,
                               json.dumps(policy.contract.to_dict())],
                              capture_output=True, text=True, timeout=120)
    finally:
        server.stop()
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["loaded"] == []
    assert report["control"]["acted"] >= 3 and report["control"]["server_losses"] == 0

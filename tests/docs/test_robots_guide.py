"""docs/robots.md, run: its robot (a second simulator with a contract unlike the Panda's)
is written from the page into a module of its own, then taken through the page's steps
with the public CLI (smaller numbers): contract, bring-up on builtin:hold, recording,
validation, fine-tuning on the new-robot path, serving and running."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bridges.test_custom_robot import free_url

PAGE = Path(__file__).parents[2] / "docs" / "robots.md"
CLI = "import sys; from vla.cli import main; sys.exit(main())"


@pytest.fixture
def guide(tmp_path):
    """Run `vla ...` with the page's robot module importable, as the page assumes."""
    code = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.S)[0]
    assert code.startswith("# planar_pointer.py")
    (tmp_path / "planar_pointer.py").write_text(code)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.getcwd()])}

    def vla(*args, timeout=300, background=False):
        cmd = [sys.executable, "-c", CLI, *map(str, args)]
        if background:
            return subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        return subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True,
                              timeout=timeout)

    return vla


def serve(vla, *args):
    url = free_url()
    return url, vla("serve", *args, "--bind", url, "--threads", "1", background=True)


def test_the_guides_robot_goes_from_empty_file_to_a_fine_tuned_policy(guide, tiny_checkpoint,
                                                                      tmp_path):
    robot = "planar_pointer:PlanarPointer"
    printed = guide("bridge", "robot", robot, "--print-contract")
    assert printed.returncode == 0, printed.stderr
    assert json.loads(printed.stdout)["action_names"] == ["vx", "vy"]
    (tmp_path / "pointer.json").write_text(printed.stdout)

    url, server = serve(guide, "--policy", "builtin:hold", "--contract", "pointer.json")
    try:  # bring-up: it stays still, at the control rate
        held = guide("bridge", "robot", robot, "--connect", url, "--steps", "10", "--json",
                     "--connect-timeout", "60")
    finally:
        server.terminate()
        server.wait(10)
    assert held.returncode == 0, held.stderr
    assert json.loads(held.stdout)["control"]["acted"] == 10

    recorded = guide("record", robot, "--out", "data/pointer", "--task", "center",
                     "--instruction", "go to the centre", "--script",
                     "planar_pointer:go_to_center", "--episodes", "3")
    assert recorded.returncode == 0, recorded.stderr
    # The guide's reset() brings the pointer back: every attempt is kept, none is empty.
    assert "data/pointer: 3 episodes (3 recorded now, 0 attempts not kept)" in recorded.stdout
    assert guide("dataset", "validate", "data/pointer").returncode == 0

    tuned = guide("finetune", "--checkpoint", tiny_checkpoint, "--data", "data/pointer",
                  "--out", "runs/pointer", "--method", "full", "steps=2", "eval_episodes=2")
    assert tuned.returncode == 0, tuned.stderr[-2000:]
    assert "in-sim check: skipped" in tuned.stderr

    url, server = serve(guide, "--checkpoint", "runs/pointer")
    try:
        ran = guide("bridge", "robot", robot, "--connect", url, "--instruction",
                    "go to the centre", "--steps", "5", "--json", "--connect-timeout", "60")
    finally:
        server.terminate()
        server.wait(10)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["control"]["acted"] >= 3

"""docs/so101.md, run: every shell command on the page, in the page's order, against two
fake SO-101 buses (tests/bridges/fake_feetech.py) and a video file as the camera. The
page's device names are swapped for the fakes', its episode counts made small; a command
that is not run here (the install, the interactive calibration) is named with the place
it is tested instead."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bridges.test_custom_robot import free_url
from tests.bridges.test_so101_robot import _arm_on_a_fake_bus, _video

pytest.importorskip("serial")

PAGE = Path(__file__).parents[2] / "docs" / "so101.md"
CLI = "import sys; from vla.cli import main; sys.exit(main())"
# Commands not run here, and where each is tested instead.
NEEDS_A_PERSON = {
    'pip install "./bridges[so101]"':
        "an install: tests/test_layers.py holds the robot side to what "
        "bridges/pyproject.toml (with the so101 extra) installs",
    "python -m bridges.so101_calibration --port /dev/ttyACM0 --out follower.json":
        "tests/bridges/test_so101_calibration.py::test_the_calibration_command_on_the_"
        "robots_computer (sweeps scripted on the fake bus)",
}


def page_commands() -> list[str]:
    """Every command of the page's ```bash blocks, continuation lines joined, comments
    dropped."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", PAGE.read_text(), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line:
                commands.append(re.sub(r"\s+", " ", line))
    return commands


def test_every_shell_command_on_the_so101_page_runs_against_fake_buses(tmp_path):
    from bridges.so101 import START_JOINTS

    follower, follower_cal = _arm_on_a_fake_bus(tmp_path, "follower", START_JOINTS, 3500.0)
    leader, leader_cal = _arm_on_a_fake_bus(tmp_path, "leader", START_JOINTS, 3500.0)
    swaps = {"/dev/ttyACM0": follower.port, "/dev/ttyACM1": leader.port,
             "front=0": f"front={_video(tmp_path / 'front.avi', frames=900)}",
             "--episodes 50": "--episodes 2"}
    server = None
    ran = []
    try:
        for command in page_commands():
            if command in NEEDS_A_PERSON:
                continue
            for page_text, ours in swaps.items():
                command = command.replace(page_text, ours)
            args = shlex.split(command)
            if "--connect" in args and "tcp://POLICY_HOST:5555" in args:
                server, url = _serve_hold(tmp_path)
                args[args.index("tcp://POLICY_HOST:5555")] = url
                args += ["--steps", "20", "--json", "--connect-timeout", "60"]
            if args[0] == "vla" and args[1] == "record":
                args += ["--max-steps", "3"]
            result = _run(args, tmp_path, stdin="\n\n\n")
            assert result.returncode == 0, f"{command}\n{result.stderr[-3000:]}"
            ran.append((args, result))
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
        follower.close()
        leader.close()
    by_first = {" ".join(a[:3]): r for a, r in ran}
    assert any("SO101-v0" in r.stdout for a, r in ran if a[:2] == ["vla", "envs"])
    bring_up = [json.loads(r.stdout) for a, r in ran if "--connect" in a]
    assert bring_up and bring_up[0]["control"]["acted"] == 20
    assert bring_up[0]["control"]["held"] == {}  # no tick held, for any reason
    assert "2 episodes (2 recorded now, 0 attempts not kept)" in by_first[
        "vla record bridges.so101:SO101"].stdout
    assert len(ran) == len(page_commands()) - len(NEEDS_A_PERSON)


def _serve_hold(tmp_path):
    """`vla serve` of the do-nothing policy under the arm's contract (the page's
    --print-contract output, saved as the robots guide does)."""
    assert (tmp_path / "contract.json").is_file(), "the page prints the contract first"
    url = free_url()
    server = subprocess.Popen([sys.executable, "-c", CLI, "serve", "--policy", "builtin:hold",
                               "--contract", "contract.json", "--bind", url, "--threads", "1"],
                              cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return server, url


def _run(args: list[str], cwd: Path, stdin: str) -> subprocess.CompletedProcess:
    if args[0] == "vla":
        cmd = [sys.executable, "-c", CLI, *args[1:]]
    elif args[:2] == ["python", "-m"] or args[0] == "python" and args[1] == "-c":
        cmd = [sys.executable, *args[1:]]
    else:
        raise AssertionError(f"the page has a command this test cannot run: {args}")
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, input=stdin,
                            timeout=300)
    if "--print-contract" in args and result.returncode == 0:
        (cwd / "contract.json").write_text(result.stdout)
    return result


def test_the_page_holds_no_command_the_test_skips_silently():
    commands = page_commands()
    for command in NEEDS_A_PERSON:
        assert command in commands, f"{command!r} is no longer on the page"
    unknown = [c for c in commands if not re.match(r"(vla|python) ", c)]
    assert not [c for c in unknown if c not in NEEDS_A_PERSON]

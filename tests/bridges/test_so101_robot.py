"""The real SO-101 driver (bridges/so101.py) on the fake bus: it states its twin's
contract, reads the same pose its twin computes from the same joint angles, moves the
tool by an action without a jump, and holds."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest

from bridges.contract import ActionContract
from bridges.feetech import FeetechBus
from bridges.so101 import ARM, GRIPPER, MAX_STEP_PER_TICK, SO101, START_JOINTS
from bridges.so101_calibration import load_calibration, write_to_servos

pytest.importorskip("serial")

IDS = {name: i + 1 for i, name in enumerate((*ARM, GRIPPER))}
CALIBRATION = {name: {"id": i, "drive_mode": 0, "homing_offset": 0, "range_min": 0,
                      "range_max": 4095} for name, i in IDS.items()}
CALIBRATION[GRIPPER].update(range_min=2030, range_max=3500)
# Not the start pose: reset() has somewhere to go.
HOME = (0.1, -0.2, 0.4, 1.3, 0.2)


@pytest.fixture
def arm(tmp_path):
    from tests.bridges.fake_feetech import FakeBus

    path = tmp_path / "follower.json"
    path.write_text(json.dumps(CALIBRATION))
    fake = FakeBus(list(IDS.values()))
    bus = FeetechBus(fake.port, timeout_s=0.02, retries=2)
    motors = load_calibration(path)
    write_to_servos(bus, motors)
    for name, angle in zip(ARM, HOME):
        i = IDS[name]
        fake.position[i] = fake.goal[i] = float(motors[name].raw(math.degrees(angle)))
    fake.position[6] = fake.goal[6] = 3500.0  # open
    robot = SO101("unused", path, bus=bus)
    robot.fake = fake
    yield robot
    robot.close()
    fake.close()


def test_the_driver_states_its_twins_contract():
    gym = pytest.importorskip("gymnasium")
    import sims  # noqa: F401

    env = gym.make("sims/Pick-SO101-v0")
    twin = ActionContract.from_env(env.unwrapped)
    env.close()
    real = SO101("unused", _write(CALIBRATION), front=0).contract  # /dev/video0, unopened
    assert real.differences(twin) == []


def _write(data) -> str:
    import tempfile

    f = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump(data, f)
    f.close()
    return f.name


def test_the_driver_reads_the_pose_its_twin_computes_and_moves_it_by_an_action(arm):
    arm.connect()
    for i, (present, goal) in arm.fake.torque_on_at.items():
        assert present == goal, f"servo {i} would jump"
    state = arm.observe()["state"]
    expected = arm.chain.forward(np.array(HOME))[:3, 3]
    assert np.allclose(state[:3], expected, atol=2e-3)  # steps are 0.09 degrees
    assert state[5] == pytest.approx(1.0)
    before = {i: arm.fake.goal[i] for i in IDS.values()}
    arm.act(np.array([1.0, 0.0, -1.0, 0.0, 1.0], np.float32))  # 2 cm out, 2 cm down
    after = {i: arm.fake.goal[i] for i in IDS.values()}
    assert max(abs(after[i] - before[i]) for i in after) <= MAX_STEP_PER_TICK
    time.sleep(0.3)  # the fake servos reach their goals
    moved = arm.observe()["state"]
    assert 0.004 < moved[0] - state[0] <= 0.021  # out, by at most one step of 2 cm
    assert -0.021 <= moved[2] - state[2] < -0.004  # and down
    assert abs(moved[1] - state[1]) < 0.003
    pose = arm.chain.forward(arm._joints(arm.bus.read_positions(list(IDS.values()))))
    assert pose[2, 2] < -0.99  # still pointing down
    arm.hold()
    held = {i: arm.fake.goal[i] for i in IDS.values()}
    present = arm.bus.read_positions(list(IDS.values()))
    assert all(abs(held[i] - present[i]) <= 1 for i in held)
    arm.reset()  # back to the start pose, gripper open
    start = arm.chain.forward(np.array(START_JOINTS))[:3, 3]
    assert np.allclose(arm.observe()["state"][:3], start, atol=3e-3)
    assert arm.observe()["state"][5] == pytest.approx(1.0)
    arm.hold()
    held = {i: arm.fake.goal[i] for i in IDS.values()}
    present = arm.bus.read_positions(list(IDS.values()))
    assert all(abs(held[i] - present[i]) <= 1 for i in held)


def test_a_calibration_without_the_arms_joints_is_refused(tmp_path):
    partial = {k: v for k, v in CALIBRATION.items() if k != "wrist_roll"}
    with pytest.raises(ValueError, match=r"no calibration for joints \['wrist_roll'\]"):
        SO101("unused", _write(partial))


def test_vla_bridge_prints_the_drivers_contract_without_touching_the_bus(capsys):
    from vla.cli import main

    main(["bridge", "robot", "bridges.so101:SO101", "port=/dev/nonexistent",
          f"calibration={_write(CALIBRATION)}", "--print-contract"])
    printed = json.loads(capsys.readouterr().out)
    assert printed["robot"] == "so101"
    assert printed["action_scale"] == [0.02, 0.02, 0.02, 0.3, 1.0]


def _video(path, frames: int = 300) -> str:
    """A video file as a camera source: OpenCV reads it as it reads a USB camera."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (64, 48))
    for i in range(frames):
        writer.write(np.full((48, 64, 3), i % 255, np.uint8))
    writer.release()
    return str(path)


def _arm_on_a_fake_bus(tmp_path, name: str, joints, gripper: float):
    from tests.bridges.fake_feetech import FakeBus

    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(CALIBRATION))
    fake = FakeBus(list(IDS.values()))
    motors = load_calibration(path)
    bus = FeetechBus(fake.port, timeout_s=0.02, retries=2)
    write_to_servos(bus, motors)
    bus.close()
    for joint, angle in zip(ARM, joints):
        i = IDS[joint]
        fake.position[i] = fake.goal[i] = float(motors[joint].raw(math.degrees(angle)))
    fake.position[6] = fake.goal[6] = gripper
    return fake, path


def test_vla_record_with_the_leader_arm_moves_the_follower_to_it(tmp_path):
    """Two fake buses: the follower reset to its start pose, the leader 2 cm further out
    and closed. Each
    recorded action points from the follower to the leader; the episodes validate."""
    from tests.vla.test_bridges_cli import vla

    follower, follower_cal = _arm_on_a_fake_bus(tmp_path, "follower", HOME, 3500.0)
    chain = SO101("unused", follower_cal).chain
    # reset() takes the follower to its start pose before each episode.
    out_there = chain.forward(np.array(START_JOINTS))[:3, 3] + [0.02, 0.0, 0.0]
    from bridges.kinematics import top_down

    leader_joints, _ = chain.solve(top_down(out_there, 0.0), np.array(START_JOINTS))
    leader, leader_cal = _arm_on_a_fake_bus(tmp_path, "leader", leader_joints, 2030.0)
    try:
        done = vla("record", "bridges.so101:SO101", f"port={follower.port}",
                   f"calibration={follower_cal}", f"front={_video(tmp_path / 'front.avi')}",
                   "--leader", leader.port, "--leader-calibration", str(leader_cal),
                   "--out", str(tmp_path / "data"), "--task", "reach", "--instruction",
                   "reach out", "--episodes", "2", "--max-steps", "4")
        assert done.returncode == 0, done.stderr[-3000:]
        assert "2 episodes (2 recorded now, 0 attempts not kept)" in done.stdout
        assert all(leader.memory[i][40] == 0 for i in IDS.values())  # the leader: torque off
        assert vla("dataset", "validate", str(tmp_path / "data")).returncode == 0
    finally:
        follower.close()
        leader.close()
    from vla.data.store import DatasetDir

    first = DatasetDir(str(tmp_path / "data")).episode_paths()[0]
    from vla.data.episode_file import read_episode

    actions = read_episode(first, images=False).action
    assert actions[0][0] > 0.5 and abs(actions[0][1]) < 0.2  # out, towards the leader
    assert actions[0][4] == pytest.approx(-1.0)  # the leader's gripper is closed

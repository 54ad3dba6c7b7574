"""SO-101 calibration (bridges/so101_calibration.py): LeRobot's JSON read as it is,
written to the servos and checked against their memory, and made again from a person's
scripted sweeps on the fake bus."""

from __future__ import annotations

import json

import pytest

from bridges.feetech import FeetechBus
from bridges.so101_calibration import (
    MotorCalibration,
    calibrate,
    check_servos,
    load_calibration,
    save_calibration,
    write_to_servos,
)

pytest.importorskip("serial")

JOINTS = {"shoulder_pan": 1, "shoulder_lift": 2, "elbow_flex": 3, "wrist_flex": 4,
          "wrist_roll": 5, "gripper": 6}
# A follower arm's file as LeRobot writes it (values of a real arm's calibration).
LEROBOT_FILE = {
    "shoulder_pan": {"id": 1, "drive_mode": 0, "homing_offset": -1365, "range_min": 746,
                     "range_max": 3477},
    "shoulder_lift": {"id": 2, "drive_mode": 0, "homing_offset": -1200, "range_min": 822,
                      "range_max": 3211},
    "elbow_flex": {"id": 3, "drive_mode": 0, "homing_offset": -986, "range_min": 901,
                   "range_max": 3110},
    "wrist_flex": {"id": 4, "drive_mode": 0, "homing_offset": -1696, "range_min": 849,
                   "range_max": 3216},
    "wrist_roll": {"id": 5, "drive_mode": 0, "homing_offset": 1500, "range_min": 0,
                   "range_max": 4095},
    "gripper": {"id": 6, "drive_mode": 0, "homing_offset": 1000, "range_min": 2030,
                "range_max": 3500},
}


@pytest.fixture
def bus():
    from tests.bridges.fake_feetech import FakeBus

    fake = FakeBus(list(JOINTS.values()))
    real = FeetechBus(fake.port, timeout_s=0.02, retries=2)
    real.fake = fake
    yield real
    real.close()
    fake.close()


def test_a_lerobot_file_is_read_as_it_is_and_checked_against_the_servos(tmp_path, bus):
    path = tmp_path / "follower.json"
    path.write_text(json.dumps(LEROBOT_FILE))
    motors = load_calibration(path)
    assert motors["shoulder_pan"] == MotorCalibration(1, 0, -1365, 746, 3477)
    assert check_servos(bus, motors)  # the servos hold nothing yet: every field differs
    write_to_servos(bus, motors)
    assert check_servos(bus, motors) == []
    save_calibration(tmp_path / "again.json", motors)
    assert json.loads((tmp_path / "again.json").read_text()) == LEROBOT_FILE
    swapped = {**motors, "gripper": MotorCalibration(6, 0, 999, 2030, 3500)}
    assert check_servos(bus, swapped) == [
        "gripper (servo 6): homing_offset is 1000 in the servo, 999 in the file"]


def test_degrees_as_lerobot_reports_them():
    m = MotorCalibration(1, 0, 0, 1000, 3000)
    assert m.degrees(2000) == 0.0 and m.degrees(3000) == pytest.approx(1000 * 360 / 4095)
    assert MotorCalibration(1, 1, 0, 1000, 3000).degrees(3000) < 0  # drive_mode flips
    assert m.raw(m.degrees(2600)) == 2600


@pytest.mark.parametrize("field, value, message", [
    ("homing_offset", 2100, "at most \\+-2047"),
    ("range_min", 3600, "expected 0 <= range_min < range_max"),
])
def test_a_bad_file_names_the_joint_and_the_field(tmp_path, field, value, message):
    bad = json.loads(json.dumps(LEROBOT_FILE))
    bad["elbow_flex"][field] = value
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match=message):
        load_calibration(tmp_path / "bad.json")
    del bad["elbow_flex"]["drive_mode"]
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="'elbow_flex' lacks drive_mode"):
        load_calibration(tmp_path / "bad.json")


def test_calibration_from_a_persons_sweeps(bus):
    fake, middles = bus.fake, {1: 3000, 2: 1500, 3: 2200, 4: 2600, 5: 1000, 6: 2500}

    def hold_the_middle():
        for s, p in middles.items():
            fake.position[s] = fake.goal[s] = float(p)

    sweep = iter(range(6))

    def sweeping():  # each call moves every joint to the next point of its travel
        k = next(sweep, None)
        if k is None:
            return False
        for s, p in middles.items():
            fake.position[s] = fake.goal[s] = float(p + (k - 2) * 300)
        return True

    motors = calibrate(bus, JOINTS, hold_the_middle, sweeping)
    for name, s in JOINTS.items():
        m = motors[name]
        assert m.homing_offset == middles[s] - 2047
        # After the offset the middle reads 2047; the sweep went -600 .. +900 around it.
        assert (m.range_min, m.range_max) == (2047 - 600, 2047 + 900)
    assert check_servos(bus, motors) == []  # written to the servos too


def test_the_calibration_command_on_the_robots_computer(bus, tmp_path):
    """`python -m bridges.so101_calibration`: Enter at the middle pose, the sweeps, Enter;
    the file it writes matches the servos (its --check says so)."""
    import subprocess
    import sys
    import time

    fake = bus.fake
    bus.close()  # the command opens the port itself
    out = tmp_path / "follower.json"
    middles = {1: 3000, 2: 1500, 3: 2200, 4: 2600, 5: 1000, 6: 2500}
    for s, p in middles.items():
        fake.position[s] = fake.goal[s] = float(p)
    command = [sys.executable, "-m", "bridges.so101_calibration", "--port", fake.port,
               "--out", str(out)]
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    proc.stdin.write("\n")
    proc.stdin.flush()
    time.sleep(1.0)
    for k in (-2, 2):  # the person sweeps every joint 600 steps either way
        for s, p in middles.items():
            fake.position[s] = fake.goal[s] = float(p + k * 300)
        time.sleep(0.3)
    out_text, err = proc.communicate("\n", timeout=30)
    assert proc.returncode == 0, err
    motors = load_calibration(out)
    for name, s in JOINTS.items():
        assert motors[name].homing_offset == middles[s] - 2047
        assert (motors[name].range_min, motors[name].range_max) == (2047 - 600, 2047 + 600)
    check = subprocess.run([*command[:-2], "--out", str(out), "--check"],
                           capture_output=True, text=True, timeout=30)
    assert check.returncode == 0 and "the servos match the file" in check.stdout

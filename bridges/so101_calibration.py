"""SO-101 calibration in LeRobot's format, so an arm calibrated there plugs straight in.

One JSON object per arm, a motor per joint name:

    {"shoulder_pan": {"id": 1, "drive_mode": 0, "homing_offset": -1365,
                      "range_min": 746, "range_max": 3477}, ...}

`homing_offset` is written to the servo (Homing_Offset, sign-magnitude with the sign in
bit 11, so its magnitude is at most 2047) so that the middle of the joint's travel reads
2047; `range_min`/`range_max` are the raw positions at the ends of its travel, written as
the servo's position limits. Degrees are (raw - (min + max) / 2) x 360 / 4095, with the
sign flipped for `drive_mode` 1. `calibrate` makes the same file from a person moving the
arm: the middle pose first, then every joint through its range.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from bridges.feetech import (
    HOMING_OFFSET,
    FeetechBus,
    decode_sign_magnitude,
    encode_sign_magnitude,
)

MIN_POSITION_LIMIT, MAX_POSITION_LIMIT = 9, 11  # the STS3215's control table
HALF_TURN = 2047
STEPS_PER_TURN = 4095
FIELDS = ("id", "drive_mode", "homing_offset", "range_min", "range_max")


@dataclass(frozen=True)
class MotorCalibration:
    id: int
    drive_mode: int
    homing_offset: int
    range_min: int
    range_max: int

    def degrees(self, raw: int) -> float:
        middle = (self.range_min + self.range_max) / 2
        sign = -1.0 if self.drive_mode else 1.0
        return sign * (raw - middle) * 360.0 / STEPS_PER_TURN

    def raw(self, degrees: float) -> int:
        middle = (self.range_min + self.range_max) / 2
        sign = -1.0 if self.drive_mode else 1.0
        return round(middle + sign * degrees * STEPS_PER_TURN / 360.0)


def load_calibration(path: str | Path) -> dict[str, MotorCalibration]:
    """A LeRobot calibration file, as it is; errors name the joint and the field."""
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict) or not data:
        raise ValueError(f"{path}: expected a JSON object of joints, as LeRobot writes it")
    motors = {}
    for name, fields in data.items():
        missing = [f for f in FIELDS if not isinstance(fields, dict) or f not in fields]
        if missing:
            raise ValueError(f"{path}: joint {name!r} lacks {', '.join(missing)} "
                             f"(expected {', '.join(FIELDS)})")
        motor = MotorCalibration(*(int(fields[f]) for f in FIELDS))
        if not -HALF_TURN <= motor.homing_offset <= HALF_TURN:
            raise ValueError(f"{path}: {name}.homing_offset={motor.homing_offset}; the "
                             f"servo stores at most +-{HALF_TURN} (sign in bit 11)")
        if not 0 <= motor.range_min < motor.range_max <= STEPS_PER_TURN:
            raise ValueError(f"{path}: {name} range {motor.range_min}..{motor.range_max}; "
                             f"expected 0 <= range_min < range_max <= {STEPS_PER_TURN}")
        motors[name] = motor
    return motors


def save_calibration(path: str | Path, motors: dict[str, MotorCalibration]) -> None:
    Path(path).write_text(json.dumps({n: asdict(m) for n, m in motors.items()}, indent=4)
                          + "\n")


def write_to_servos(bus: FeetechBus, motors: dict[str, MotorCalibration]) -> None:
    """Each servo's homing offset and position limits, from the file."""
    for m in motors.values():
        bus.write(m.id, HOMING_OFFSET, encode_sign_magnitude(m.homing_offset, 11)
                  .to_bytes(2, "little"))
        bus.write(m.id, MIN_POSITION_LIMIT, m.range_min.to_bytes(2, "little"))
        bus.write(m.id, MAX_POSITION_LIMIT, m.range_max.to_bytes(2, "little"))


def check_servos(bus: FeetechBus, motors: dict[str, MotorCalibration]) -> list[str]:
    """Where the servos' memory differs from the file (empty: it matches): an arm
    recalibrated elsewhere, or a servo swapped, would move to wrong positions."""
    differences = []
    for name, m in motors.items():
        stored = {
            "homing_offset": decode_sign_magnitude(
                int.from_bytes(bus.read(m.id, HOMING_OFFSET, 2), "little"), 11),
            "range_min": int.from_bytes(bus.read(m.id, MIN_POSITION_LIMIT, 2), "little"),
            "range_max": int.from_bytes(bus.read(m.id, MAX_POSITION_LIMIT, 2), "little"),
        }
        for key, value in stored.items():
            if value != getattr(m, key):
                differences.append(f"{name} (servo {m.id}): {key} is {value} in the servo, "
                                   f"{getattr(m, key)} in the file")
    return differences


def calibrate(bus: FeetechBus, joints: dict[str, int], wait_for_middle: Callable[[], None],
              sweeping: Callable[[], bool], drive_modes: dict[str, int] | None = None
              ) -> dict[str, MotorCalibration]:
    """LeRobot's procedure: `wait_for_middle()` returns once a person holds every joint
    in the middle of its travel (the homing offsets then make that read 2047); positions
    are then read while `sweeping()` is true, as the person moves every joint through its
    whole range. The offsets and limits are written to the servos, and returned."""
    ids = list(joints.values())
    for servo in ids:  # measure with no offset, then centre
        bus.write(servo, HOMING_OFFSET, b"\x00\x00")
    wait_for_middle()
    middle = bus.read_positions(ids)
    offsets = {s: middle[s] - HALF_TURN for s in ids}
    for s, offset in offsets.items():
        bus.write(s, HOMING_OFFSET, encode_sign_magnitude(offset, 11).to_bytes(2, "little"))
    low, high = dict(bus.read_positions(ids)), dict(bus.read_positions(ids))
    while sweeping():
        for s, p in bus.read_positions(ids).items():
            low[s], high[s] = min(low[s], p), max(high[s], p)
    modes = drive_modes or {}
    motors = {name: MotorCalibration(s, modes.get(name, 0), offsets[s], low[s], high[s])
              for name, s in joints.items()}
    write_to_servos(bus, motors)
    return motors


SO101_JOINTS = {"shoulder_pan": 1, "shoulder_lift": 2, "elbow_flex": 3, "wrist_flex": 4,
                "wrist_roll": 5, "gripper": 6}


def main(argv: list[str] | None = None) -> int:
    """`python -m bridges.so101_calibration --port PORT --out FILE`: calibrate an SO-101
    (follower or leader) as LeRobot does, on the robot's computer (bridges alone)."""
    import argparse
    import sys
    import threading

    parser = argparse.ArgumentParser(
        prog="python -m bridges.so101_calibration",
        description="Calibrate an SO-101 arm on its Feetech bus and write LeRobot's "
                    "calibration JSON (also written to the servos).")
    parser.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyACM0")
    parser.add_argument("--out", required=True, help="calibration file to write")
    parser.add_argument("--check", action="store_true",
                        help="only compare the servos' memory with --out (exit 1 if it "
                             "differs)")
    args = parser.parse_args(argv)
    bus = FeetechBus(args.port)
    try:
        if args.check:
            wrong = check_servos(bus, load_calibration(args.out))
            for line in wrong:
                print(line)
            print("the servos match the file" if not wrong else "the servos differ")
            return 1 if wrong else 0
        done = threading.Event()

        def wait_for_middle() -> None:
            print("Move every joint to the middle of its travel, then press Enter.",
                  flush=True)
            sys.stdin.readline()
            print("Now move every joint through its whole range; press Enter when done.",
                  flush=True)
            threading.Thread(target=lambda: (sys.stdin.readline(), done.set()),
                             daemon=True).start()

        motors = calibrate(bus, SO101_JOINTS, wait_for_middle, lambda: not done.is_set())
        save_calibration(args.out, motors)
        for name, m in motors.items():
            print(f"{name}: offset {m.homing_offset}, range {m.range_min}..{m.range_max}")
        print(f"wrote {args.out}")
        return 0
    finally:
        bus.close()


if __name__ == "__main__":
    raise SystemExit(main())

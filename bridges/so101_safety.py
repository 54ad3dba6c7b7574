"""Safety of an SO-101 on its bus, from the first tick: what owners' arms taught LeRobot
(violent jumps at start-up that strip gears, grippers that burn out while gripping).

- `torque_on`: every goal is set to the servo's present position before torque comes on,
  so nothing moves when it does; then the EEPROM is locked.
- `cap_steps`: no joint's goal moves more than `max_step` steps from where the joint is
  per tick (the rest waits for the next tick).
- `limit_gripper`: the gripper's torque and current are capped, so a closed grip on a
  block holds without stalling the servo at full current.
"""

from __future__ import annotations

from bridges.feetech import LOCK, TORQUE_ENABLE, FeetechBus

TORQUE_LIMIT, PROTECTION_CURRENT = 48, 28  # the STS3215's control table
GRIPPER_TORQUE_LIMIT = 500  # of 1000
GRIPPER_CURRENT_LIMIT = 250  # of the servo's units (6.5 mA each)


def torque_on(bus: FeetechBus, servos: list[int]) -> dict[int, int]:
    """Goals to the present positions, then torque on and the EEPROM locked; returns the
    positions it holds."""
    present = bus.read_positions(servos)
    bus.write_goals(present)
    for s in servos:
        bus.write(s, TORQUE_ENABLE, b"\x01")
        bus.write(s, LOCK, b"\x01")
    return present


def torque_off(bus: FeetechBus, servos: list[int]) -> None:
    for s in servos:
        bus.write(s, TORQUE_ENABLE, b"\x00")


def cap_steps(goals: dict[int, int], present: dict[int, int],
              max_step: int) -> dict[int, int]:
    """Each goal moved at most `max_step` steps from the present position."""
    return {s: present[s] + max(-max_step, min(max_step, g - present[s]))
            for s, g in goals.items()}


def limit_gripper(bus: FeetechBus, gripper: int, torque: int = GRIPPER_TORQUE_LIMIT,
                  current: int = GRIPPER_CURRENT_LIMIT) -> None:
    bus.write(gripper, TORQUE_LIMIT, torque.to_bytes(2, "little"))
    bus.write(gripper, PROTECTION_CURRENT, current.to_bytes(2, "little"))

"""An SO-101 on its (fake) bus never jumps: goals equal the present positions when torque
comes on; per-tick goal steps are capped; the gripper's torque and current are limited."""

from __future__ import annotations

import pytest

from bridges.feetech import FeetechBus
from bridges.so101_safety import cap_steps, limit_gripper, torque_off, torque_on

pytest.importorskip("serial")

SERVOS = [1, 2, 3, 4, 5, 6]


@pytest.fixture
def bus():
    from tests.bridges.fake_feetech import FakeBus

    fake = FakeBus(SERVOS, start=1000)
    for s in SERVOS:  # an arm left anywhere, and a stale goal in each servo's memory
        fake.position[s] = fake.goal[s] = 1000.0 + 150 * s
        fake.memory[s][42:44] = (4000).to_bytes(2, "little")
    real = FeetechBus(fake.port, timeout_s=0.02, retries=2)
    real.fake = fake
    yield real
    real.close()
    fake.close()


def test_no_goal_differs_from_the_present_position_when_torque_comes_on(bus):
    held = torque_on(bus, SERVOS)
    assert held == {s: 1000 + 150 * s for s in SERVOS}
    for s in SERVOS:
        present, goal = bus.fake.torque_on_at[s]
        assert goal == present, f"servo {s} would jump from {present} to {goal}"
        assert bus.fake.memory[s][55] == 1  # EEPROM locked after
    torque_off(bus, SERVOS)
    assert all(bus.fake.memory[s][40] == 0 for s in SERVOS)


def test_goal_steps_are_capped_per_tick():
    assert cap_steps({1: 3000, 2: 900, 3: 1010}, {1: 1000, 2: 1000, 3: 1000}, 50) == {
        1: 1050, 2: 950, 3: 1010}


def test_the_gripper_is_limited(bus):
    limit_gripper(bus, 6)
    assert (6, 48, (500).to_bytes(2, "little")) in bus.fake.writes
    assert (6, 28, (250).to_bytes(2, "little")) in bus.fake.writes

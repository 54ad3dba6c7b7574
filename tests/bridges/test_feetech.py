"""The Feetech STS bus (bridges/feetech.py) against a fake 6-servo bus on a pseudo-terminal
(tests/bridges/fake_feetech.py), through pyserial as on a real USB adapter: packets,
sign-magnitude, ping, read, write, sync read and sync write, and every injected fault
either retried (and counted) or reported."""

from __future__ import annotations

import time

import pytest

from bridges.feetech import (
    GOAL_POSITION,
    TORQUE_ENABLE,
    BusError,
    FeetechBus,
    checksum,
    decode_sign_magnitude,
    encode_sign_magnitude,
    instruction_packet,
)

pytest.importorskip("serial")

SERVOS = [1, 2, 3, 4, 5, 6]


@pytest.fixture
def bus():
    from tests.bridges.fake_feetech import FakeBus

    fake = FakeBus(SERVOS)
    real = FeetechBus(fake.port, timeout_s=0.02, retries=2)
    real.fake = fake
    yield real
    real.close()
    fake.close()


def test_packets_and_sign_magnitude():
    # A ping of servo 1: FF FF 01 02 01 FB (the datasheet's example).
    assert instruction_packet(1, 0x01) == bytes.fromhex("ffff010201fb")
    assert checksum(bytes([1, 2, 1])) == 0xFB
    for value in (0, 1, 2047, -1, -2047, 4095):
        assert decode_sign_magnitude(encode_sign_magnitude(value)) == value
    assert encode_sign_magnitude(-5) == 0x8005
    assert decode_sign_magnitude(encode_sign_magnitude(-2047, 11), 11) == -2047
    with pytest.raises(ValueError, match="does not fit 11 bits"):
        encode_sign_magnitude(2048, 11)  # a homing offset's magnitude is at most 2047


def test_ping_read_write_and_the_servos_follow_their_goals(bus):
    assert all(bus.ping(s) for s in SERVOS) and not bus.ping(9)
    bus.write(1, TORQUE_ENABLE, b"\x01")
    assert bus.read(1, TORQUE_ENABLE, 1) == b"\x01"
    assert bus.read_positions(SERVOS) == dict.fromkeys(SERVOS, 2048)
    bus.write_goals({s: 2048 + 100 * s for s in SERVOS})
    time.sleep(0.3)
    assert bus.read_positions(SERVOS) == {s: 2048 + 100 * s for s in SERVOS}
    assert bus.read(3, GOAL_POSITION, 2) == (2348).to_bytes(2, "little")


def test_a_dropped_or_corrupted_reply_is_retried_and_counted(bus):
    bus.fake.faults = ["drop"]  # servo 1's part of a sync read: servo 2 answers first
    assert bus.read_positions(SERVOS) == dict.fromkeys(SERVOS, 2048)
    assert bus.stats.retries == 1 and bus.stats.corrupt == 1
    bus.fake.faults = ["drop"]  # a lone read: nothing comes
    assert bus.read(2, TORQUE_ENABLE, 1) == b"\x00"
    assert bus.stats.retries == 2 and bus.stats.timeouts == 1
    bus.fake.faults = ["corrupt"]
    assert bus.read(2, TORQUE_ENABLE, 1) == b"\x00"
    assert bus.stats.retries == 3 and bus.stats.corrupt == 2
    bus.fake.faults = ["slow"]  # later than the timeout: retried, the late bytes dropped
    assert bus.read(5, TORQUE_ENABLE, 1) == b"\x00"
    assert bus.stats.retries >= 4  # (the fake answers in turn: the retry may wait too)


def test_a_servo_error_is_reported_not_retried(bus):
    bus.fake.faults = ["overload"]
    with pytest.raises(BusError, match="servo 1 reports overload"):
        bus.read(1, TORQUE_ENABLE, 1)
    assert bus.stats.retries == 0 and bus.stats.servo_errors == {1: 1 << 5}


def test_a_bus_that_never_answers_raises_after_its_retries(bus):
    bus.fake.faults = ["drop"] * 3  # the first try and both retries
    with pytest.raises(BusError, match="after 3 tries"):
        bus.read(4, TORQUE_ENABLE, 1)
    assert bus.stats.timeouts == 3


def test_a_six_servo_sync_read_and_write_take_under_2_ms_on_the_fake_bus(bus):
    bus.read_positions(SERVOS)  # warm
    times = []
    for _ in range(50):
        start = time.perf_counter()
        bus.write_goals(bus.read_positions(SERVOS))
        times.append(time.perf_counter() - start)
    times.sort()
    assert times[len(times) // 2] < 0.002, f"median {times[len(times) // 2] * 1e3:.2f} ms"

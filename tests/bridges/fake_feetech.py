"""A fake STS3215 bus on a pseudo-terminal: servo memory, servos that move towards their
goals, and injected faults (a dropped reply, a corrupted checksum, an overload, a slow
reply). `FeetechBus` talks to it through pyserial exactly as to a USB adapter."""

from __future__ import annotations

import os
import threading
import time

from bridges.feetech import (
    BROADCAST,
    GOAL_POSITION,
    HEADER,
    HOMING_OFFSET,
    PING,
    PRESENT_POSITION,
    READ,
    SYNC_READ,
    SYNC_WRITE,
    TORQUE_ENABLE,
    WRITE,
    checksum,
    encode_sign_magnitude,
    status_packet,
)

STEP_PER_S = 3000.0  # how fast a servo follows its goal (steps per second)


class FakeBus:
    def __init__(self, servos=(1, 2, 3, 4, 5, 6), start: int = 2048) -> None:
        self.master, slave = os.openpty()
        import tty

        tty.setraw(slave)
        self.port = os.ttyname(slave)
        self._slave = slave
        self.memory = {s: bytearray(256) for s in servos}
        self.goal = {s: float(start) for s in servos}
        self.position = {s: float(start) for s in servos}
        self.faults: list[str] = []  # "drop", "corrupt", "overload", "slow": next replies
        self.received: list[tuple[int, int]] = []  # (servo, instruction)
        self.writes: list[tuple[int, int, bytes]] = []  # (servo, address, data)
        self.torque_on_at: dict[int, tuple[int, int]] = {}  # servo -> (present, goal)
        self._last = time.monotonic()
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop = True
        os.close(self.master)
        os.close(self._slave)

    # -- the servos -----------------------------------------------------------------------
    def _move(self) -> None:
        now = time.monotonic()
        step, self._last = STEP_PER_S * (now - self._last), now
        for s, goal in self.goal.items():
            p = self.position[s]
            self.position[s] = p + max(-step, min(step, goal - p))
            # A servo reports its encoder minus its homing offset (sign in bit 11).
            offset_raw = int.from_bytes(self.memory[s][HOMING_OFFSET:HOMING_OFFSET + 2],
                                        "little")
            offset = -(offset_raw & 0x7FF) if offset_raw & 0x800 else offset_raw & 0x7FF
            raw = encode_sign_magnitude(round(self.position[s]) - offset)
            self.memory[s][PRESENT_POSITION:PRESENT_POSITION + 2] = raw.to_bytes(2, "little")

    def _serve(self) -> None:
        buffer = b""
        while not self._stop:
            try:
                buffer += os.read(self.master, 256)
            except OSError:
                return
            while len(buffer) >= 6:
                start = buffer.find(HEADER)
                if start < 0:
                    buffer = b""
                    break
                buffer = buffer[start:]
                length = buffer[3]
                if len(buffer) < 4 + length:
                    break
                packet, buffer = buffer[: 4 + length], buffer[4 + length:]
                if checksum(packet[2:-1]) == packet[-1]:
                    self._answer(packet[2], packet[4], packet[5:-1])

    def _answer(self, servo: int, instruction: int, params: bytes) -> None:
        self._move()
        self.received.append((servo, instruction))
        if instruction == SYNC_WRITE:
            address, size = params[0], params[1]
            for i in range(2, len(params), size + 1):
                self._store(params[i], address, params[i + 1: i + 1 + size])
            return
        if instruction == SYNC_READ:
            address, size = params[0], params[1]
            for s in params[2:]:
                self._reply(s, bytes(self.memory[s][address:address + size]))
            return
        if servo not in self.memory or servo == BROADCAST:
            return  # nobody there: no answer
        if instruction == PING:
            self._reply(servo, b"")
        elif instruction == READ:
            self._reply(servo, bytes(self.memory[servo][params[0]:params[0] + params[1]]))
        elif instruction == WRITE:
            self._store(servo, params[0], params[1:])
            self._reply(servo, b"")

    def _store(self, servo: int, address: int, data: bytes) -> None:
        self.writes.append((servo, address, bytes(data)))
        if address == TORQUE_ENABLE and data[:1] == b"\x01":
            present = int.from_bytes(self.memory[servo][PRESENT_POSITION:PRESENT_POSITION + 2],
                                     "little")
            goal = int.from_bytes(self.memory[servo][GOAL_POSITION:GOAL_POSITION + 2],
                                  "little")
            self.torque_on_at[servo] = (present, goal)  # where the servo was, where told
        self.memory[servo][address:address + len(data)] = data
        if address == GOAL_POSITION:
            raw = int.from_bytes(data[:2], "little")
            self.goal[servo] = float(-(raw & 0x7FFF) if raw & 0x8000 else raw)

    def _reply(self, servo: int, params: bytes) -> None:
        fault = self.faults.pop(0) if self.faults else None
        if fault == "drop":
            return
        error = 1 << 5 if fault == "overload" else 0
        packet = bytearray(status_packet(servo, error, params))
        if fault == "corrupt":
            packet[-1] ^= 0xFF
        if fault == "slow":
            time.sleep(0.05)
        os.write(self.master, bytes(packet))

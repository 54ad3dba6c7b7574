"""The Feetech STS bus (the SO-101's STS3215 servos): packets, sign-magnitude values, and a
bus that pings, reads, writes, sync-reads and sync-writes with retries it counts.

Packets (Feetech's SCS/STS protocol, the Dynamixel 1.0 layout):

    instruction  FF FF  id  length  instruction  params...  checksum
    status       FF FF  id  length  error        params...  checksum
    length = len(params) + 2; checksum = ~(id + length + instruction|error + params) & FF

Sync read (0x82) and sync write (0x83) go to the broadcast id 0xFE: a sync read is
answered by one status packet per servo, in order; a sync write by none. Values are
little-endian; positions carry their sign in bit 15 and the homing offset in bit 11
(sign-magnitude, as LeRobot's driver decodes them). Needs pyserial
(`pip install "./bridges[so101]"`); nothing here imports torch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

HEADER = b"\xff\xff"
BROADCAST = 0xFE
PING, READ, WRITE, SYNC_READ, SYNC_WRITE = 0x01, 0x02, 0x03, 0x82, 0x83
# The STS3215's control table, the addresses this driver uses.
TORQUE_ENABLE, GOAL_POSITION, LOCK, PRESENT_POSITION, HOMING_OFFSET = 40, 42, 55, 56, 31
ERROR_BITS = {0: "voltage", 1: "angle limit", 2: "overheating", 3: "range", 4: "checksum",
              5: "overload", 6: "instruction"}


class BusError(IOError):
    """A servo did not answer, answered garbage after every retry, or reported an error."""


def checksum(body: bytes) -> int:
    return (~sum(body)) & 0xFF


def instruction_packet(servo: int, instruction: int, params: bytes = b"") -> bytes:
    body = bytes([servo, len(params) + 2, instruction]) + params
    return HEADER + body + bytes([checksum(body)])


def status_packet(servo: int, error: int, params: bytes = b"") -> bytes:
    """What a servo answers (for fakes and tests)."""
    body = bytes([servo, len(params) + 2, error]) + params
    return HEADER + body + bytes([checksum(body)])


def encode_sign_magnitude(value: int, sign_bit: int = 15) -> int:
    magnitude = abs(int(value))
    if magnitude >= 1 << sign_bit:
        raise ValueError(f"{value} does not fit {sign_bit} bits of magnitude (sign in bit "
                         f"{sign_bit})")
    return magnitude | ((1 << sign_bit) if value < 0 else 0)


def decode_sign_magnitude(raw: int, sign_bit: int = 15) -> int:
    magnitude = raw & ((1 << sign_bit) - 1)
    return -magnitude if raw & (1 << sign_bit) else magnitude


@dataclass
class BusStats:
    """What the bus had to do beyond the happy path; reported, never hidden."""

    requests: int = 0
    retries: int = 0
    timeouts: int = 0
    corrupt: int = 0  # bad header, length or checksum
    servo_errors: dict = field(default_factory=dict)  # servo id -> its last error bits


class FeetechBus:
    """A half-duplex STS bus on a serial port. Every request that expects an answer is
    retried `retries` times on a timeout or a corrupt reply (counted in `stats`); a servo
    reporting an error (overload, overheating, ...) raises `BusError` naming it, since
    retrying would not help."""

    def __init__(self, port: str, baudrate: int = 1_000_000, timeout_s: float = 0.02,
                 retries: int = 3, link=None) -> None:
        if link is None:
            import serial  # pyserial: `pip install "./bridges[so101]"`

            link = serial.Serial(port, baudrate, timeout=timeout_s)
        self.link, self.port, self.timeout_s, self.retries = link, port, timeout_s, retries
        self.stats = BusStats()

    def close(self) -> None:
        self.link.close()

    # -- the instructions ---------------------------------------------------------------
    def ping(self, servo: int) -> bool:
        try:
            self._request(servo, PING, b"", replies=[servo])
            return True
        except BusError:
            return False

    def read(self, servo: int, address: int, length: int) -> bytes:
        return self._request(servo, READ, bytes([address, length]), [servo])[servo]

    def write(self, servo: int, address: int, data: bytes) -> None:
        self._request(servo, WRITE, bytes([address]) + bytes(data), [servo])

    def sync_read(self, servos: list[int], address: int, length: int) -> dict[int, bytes]:
        params = bytes([address, length, *servos])
        return self._request(BROADCAST, SYNC_READ, params, list(servos))

    def sync_write(self, address: int, data: dict[int, bytes]) -> None:
        size = {len(d) for d in data.values()}
        if len(size) != 1:
            raise ValueError(f"sync_write: every servo's data must have one length; got "
                             f"{ {s: len(d) for s, d in data.items()} }")
        params = bytes([address, size.pop()]) + b"".join(bytes([s]) + bytes(d)
                                                          for s, d in data.items())
        self.stats.requests += 1
        self.link.write(instruction_packet(BROADCAST, SYNC_WRITE, params))

    # -- positions ------------------------------------------------------------------------
    def read_positions(self, servos: list[int]) -> dict[int, int]:
        """Present positions (steps, sign-magnitude decoded), one sync read."""
        raw = self.sync_read(servos, PRESENT_POSITION, 2)
        return {s: decode_sign_magnitude(int.from_bytes(d, "little")) for s, d in raw.items()}

    def write_goals(self, goals: dict[int, int]) -> None:
        """Goal positions (steps), one sync write."""
        self.sync_write(GOAL_POSITION, {s: encode_sign_magnitude(g).to_bytes(2, "little")
                                        for s, g in goals.items()})

    # -- the wire -------------------------------------------------------------------------
    def _request(self, servo: int, instruction: int, params: bytes,
                 replies: list[int]) -> dict[int, bytes]:
        self.stats.requests += 1
        problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats.retries += 1
            self.link.reset_input_buffer()
            self.link.write(instruction_packet(servo, instruction, params))
            try:
                return {s: self._status(s) for s in replies}
            except TimeoutError as err:
                self.stats.timeouts += 1
                problem = str(err)
            except ValueError as err:
                self.stats.corrupt += 1
                problem = str(err)
        raise BusError(f"{self.port}: no valid answer from servo {servo} to instruction "
                       f"0x{instruction:02x} after {self.retries + 1} tries ({problem})")

    def _status(self, servo: int) -> bytes:
        head = self._take(5)
        if head[:2] != HEADER:
            raise ValueError(f"bad header {head[:2].hex()}")
        sid, length, error = head[2], head[3], head[4]
        if sid != servo or length < 2:
            raise ValueError(f"a status from servo {sid} (length {length}) where servo "
                             f"{servo}'s was due")
        rest = self._take(length - 1)
        params, check = rest[:-1], rest[-1]
        if checksum(head[2:] + params) != check:
            raise ValueError(f"checksum mismatch in servo {servo}'s status")
        if error:
            self.stats.servo_errors[servo] = error
            names = [name for bit, name in ERROR_BITS.items() if error & (1 << bit)]
            raise BusError(f"{self.port}: servo {servo} reports {', '.join(names) or error}")
        return bytes(params)

    def _take(self, n: int) -> bytes:
        deadline = time.monotonic() + self.timeout_s
        data = b""
        while len(data) < n:
            chunk = self.link.read(n - len(data))
            data += chunk
            if not chunk and time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {len(data)} of {n} bytes")
        return data

"""How long one control tick of the real SO-101 driver takes on the fake bus: observe
(one sync read, forward kinematics, the newest camera frame) plus act (a top-down solve,
one sync read and one sync write), against the 33 ms of a 30 Hz tick.

The bus is tests/bridges/fake_feetech.py on a pseudo-terminal (the same packets and
replies as the STS3215s at 1 Mbaud, no wire time); the camera, when asked, is a video
file read in its own thread (bridges.camera.ThreadedCamera).

    python benchmarks/so101_tick.py --ticks 300 > results/so101/tick.json
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ticks", type=int, default=300)
    ap.add_argument("--camera", action="store_true", help="with a threaded video camera")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from bridges.feetech import FeetechBus
    from bridges.so101 import ARM, SO101, START_JOINTS
    from bridges.so101_calibration import load_calibration, write_to_servos
    from tests.bridges.fake_feetech import FakeBus
    from tests.bridges.test_so101_robot import CALIBRATION, IDS, _video

    work = Path(tempfile.mkdtemp(prefix="so101_tick-"))
    (work / "arm.json").write_text(json.dumps(CALIBRATION))
    fake = FakeBus(list(IDS.values()))
    bus = FeetechBus(fake.port, timeout_s=0.02, retries=2)
    motors = load_calibration(work / "arm.json")
    write_to_servos(bus, motors)
    for name, angle in zip(ARM, START_JOINTS):
        fake.position[IDS[name]] = fake.goal[IDS[name]] = float(motors[name].raw(
            math.degrees(angle)))
    front = _video(work / "front.avi", frames=3000) if args.camera else None
    robot = SO101("fake", work / "arm.json", front=front, bus=bus)
    robot.connect()
    rng = np.random.default_rng(0)
    observe, act = [], []
    try:
        for _ in range(args.ticks):
            start = time.perf_counter()
            robot.observe()
            middle = time.perf_counter()
            robot.act(rng.uniform(-0.3, 0.3, 5).astype(np.float32))
            act.append(time.perf_counter() - middle)
            observe.append(middle - start)
    finally:
        stats = bus.stats
        robot.close()
        fake.close()
    tick = np.array(observe) + np.array(act)
    ms = lambda x, q: float(np.percentile(x, q) * 1000)  # noqa: E731
    print(json.dumps({
        "benchmark": "so101_tick", "ticks": args.ticks, "camera": bool(args.camera),
        "observe_ms": {"p50": ms(observe, 50), "p99": ms(observe, 99)},
        "act_ms": {"p50": ms(act, 50), "p99": ms(act, 99)},
        "tick_ms": {"p50": ms(tick, 50), "p99": ms(tick, 99), "max": float(tick.max() * 1000)},
        "ticks_over_33ms": int((tick > 1 / 30).sum()),
        "bus": {"requests": stats.requests, "retries": stats.retries,
                "timeouts": stats.timeouts, "corrupt": stats.corrupt},
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
    }, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Soak test of serving: robots at their control rate, misbehaving clients, server faults.

On loopback, for `--minutes`:

- `vla serve` runs in its own process (the default policy, or `--policy builtin:hold`).
- `--robots` simulated robots (threads here, each the real bridge `ControlLoop` with a
  mock robot) run at the contract's rate (10 Hz) the whole time.
- `--misbehaving` clients (another process) cycle through three kinds: flooders (hello,
  then acts at `--flood-hz` without ever reading a reply; a new connection every 10 s),
  leavers (hello, one act, and gone before the reply), garbage senders (broken msgpack,
  bad fields, server-only kinds, several frames, and raw non-ZeroMQ bytes on TCP).
- Faults, every `--fault-every-s` (120 s): a quarter into each cycle the server is frozen
  (SIGSTOP, `--freeze-s` later SIGCONT); three quarters in it is killed (SIGKILL) and
  started again at once.

Prints one JSON object (timings in seconds unless named `_ms`):

- `invalid_replies`: replies a robot could not use (malformed, unknown kind or error code,
  non-finite or out-of-range actions, wrong step count); must be 0.
- `per_robot`: act round-trip p50/p99 while healthy (outside fault windows), actions,
  holds, error replies by code, and runs that gave up (`failures`).
- `longest_gap_outside_faults_s`: the longest time any robot went without executing a
  fresh action, fault windows excluded. A robot's window for a fault runs from the fault
  to its first action after the server is back. Target: <= 3 control periods.
- `faults`: per fault, held ticks (all robots), how soon each robot held (target: within
  one period, plus the half period a tick waits for its reply), and how soon the last
  robot acted again after the server was back: after SIGCONT, or after the restart was
  launched, which includes the new server's start-up (target: <= 10 s).
- `sessions_left`: sessions the server still holds after every client left (last count
  in its log); the disconnect detection should bring it to 0.

Examples (the second is the quick form, for a busy machine):

    .venv/bin/python benchmarks/serve_soak.py
    .venv/bin/python benchmarks/serve_soak.py --minutes 2 --robots 4 --misbehaving 10 \\
        --policy builtin:hold
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bridges import protocol as P  # noqa: E402
from bridges.client import ControlLoop, LoopConfig  # noqa: E402
from bridges.connection import BridgeError  # noqa: E402
from bridges.contract import ActionContract  # noqa: E402
from bridges.robot import Robot  # noqa: E402

# The robots' contract: the shipped default policy's (docs/protocol.md), as a robot states it.
PANDA = dataclasses.replace(ActionContract.from_dict(json.loads(
    (Path(__file__).resolve().parents[1] / "policies" / "checkpoints" / "default"
     / "action_contract.json").read_text())), normalization={}, chunk_length=1)
PERIOD_S = 1.0 / PANDA.control_hz
TARGET_GAP_PERIODS = 3
TARGET_RESUME_S = 10.0
log = logging.getLogger("serve_soak")


# -- the server ---------------------------------------------------------------------------
class ServerProcess:
    """`vla serve` in a child process that the soak freezes, kills and restarts."""

    def __init__(self, url: str, policy: str | None, log_path: Path):
        self.url, self.policy, self.log_path = url, policy, log_path
        self.proc: subprocess.Popen | None = None
        self._log = open(log_path, "ab")

    def start(self) -> None:
        cmd = [sys.executable, "-m", "vla.cli", "serve", "--bind", self.url,
               "--log-every-s", "5"] + (["--policy", self.policy] if self.policy else [])
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout_s: float) -> float:
        """Seconds until the server answers a ping (raises if it does not in time)."""
        from vla.serving.client import PolicyClient

        start = time.monotonic()
        while time.monotonic() - start < timeout_s:
            with PolicyClient(self.url, timeout_s=0.5) as c:
                try:
                    c.ping()
                    return time.monotonic() - start
                except TimeoutError:
                    pass
        raise RuntimeError(f"the server at {self.url} did not answer within {timeout_s} s; "
                           f"see {self.log_path}")

    def signal(self, sig: int) -> None:
        os.kill(self.proc.pid, sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def sessions_left(self) -> int | None:
        """The server's session count as its log last stated it (every open/free logs it)."""
        counts = re.findall(rb"\((\d+) clients\)", self.log_path.read_bytes())
        return int(counts[-1]) if counts else None

    def log_counts(self) -> dict:
        text = self.log_path.read_bytes()
        return {k: len(re.findall(p, text)) for k, p in (
            ("connected", rb" connected(?: with adapter \S+)? \("),
            ("freed_on_disconnect", rb"disconnected; freed"),
            ("goodbye", rb"said goodbye"), ("freed_on_silence", rb"silent for"))}


# -- the robots ---------------------------------------------------------------------------
class SoakRobot(Robot):
    """A robot that stands still and notes the time of every action and hold."""

    def __init__(self, seed: int):
        rng = np.random.default_rng(seed)
        self._obs = {"images": {"front": rng.integers(0, 256, (128, 128, 3), np.uint8)},
                     "state": np.array([0.5, 0.0, 0.2, 0.0, 1.0, 0.5], np.float32),
                     "instruction": "pick the red cube up"}
        self.acts: list[float] = []
        self.holds: list[float] = []

    @property
    def contract(self) -> ActionContract:
        return PANDA

    def connect(self) -> None:
        pass

    def observe(self) -> dict:
        return self._obs

    def act(self, action) -> None:
        self.acts.append(time.monotonic())

    def hold(self) -> None:
        self.holds.append(time.monotonic())

    def close(self) -> None:
        pass


class CheckedLoop(ControlLoop):
    """The bridge's control loop, checking every reply before the loop sees it."""

    def __init__(self, robot, url, config, record: dict):
        super().__init__(robot, url, config)
        self.record = record

    def _dispatch(self, replies: list[dict]) -> None:
        for msg in replies:
            problem = invalid_reply(msg, len(PANDA.action_names))
            if problem:
                self.record["invalid"].append(problem)
            elif msg["kind"] == "action_reply":
                self.record["rtt"].append((time.monotonic(), msg["rtt"]))
            elif msg["kind"] == "error":
                self.record["errors"][msg["code"]] += 1
        super()._dispatch(replies)


def invalid_reply(msg: dict, action_dim: int) -> str | None:
    """Why a reply to an act/reset is unusable, or None when it is fine."""
    kind = msg.get("kind")
    if kind == "error":
        ok = msg.get("code") in P.ERROR_CODES and isinstance(msg.get("message"), str)
        return None if ok else f"error reply without a known code: {msg.get('code')!r}"
    if kind == "reset_reply":
        return None
    if kind != "action_reply":
        return f"unexpected reply kind {kind!r}"
    try:
        actions = P.actions_from_message(msg, action_dim)
    except P.ProtocolError as err:
        return f"unusable actions: {err}"
    if np.abs(actions).max(initial=0) > 1 or len(actions) == 0:
        return f"actions outside [-1, 1] or empty: shape {actions.shape}"
    if len(msg.get("step_timestamps") or []) != len(actions):
        return "step_timestamps do not match the chunk"
    return None


def run_robot(i: int, url: str, stop: threading.Event, robot: SoakRobot, record: dict,
              config: LoopConfig) -> None:
    """Drive one robot until `stop`; a run that gives up is noted and started again."""
    while not stop.is_set():
        loop = CheckedLoop(robot, url, config, record)
        try:
            loop.connect()
            loop.run(stop=stop.is_set, episode_id=f"soak-{i}")
        except BridgeError as err:
            record["failures"].append(f"{time.monotonic():.1f}: {err}")
            time.sleep(PERIOD_S)
        finally:
            loop.close()


# -- the misbehaving clients (a child process) --------------------------------------------
def misbehave(url: str, n: int, seconds: float, flood_hz: float, seed: int) -> dict:
    """Run n misbehaving clients for `seconds` in one thread; returns what they sent."""
    import zmq

    rng = np.random.default_rng(seed)
    ctx = zmq.Context()
    obs = SoakRobot(seed).observe()
    act = P.pack(P.act(obs, "flood", time.time(), 1))
    hello = P.pack(P.hello(PANDA.to_dict(), "misbehaving", request_id=0))
    sent: Counter = Counter()
    host, port = url.rsplit("//", 1)[1].rsplit(":", 1)

    def dealer():
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SNDHWM, 100)
        s.connect(url)
        return s

    def garbage() -> list[bytes]:
        pick = int(rng.integers(6))
        if pick == 0:
            return [rng.bytes(int(rng.integers(1, 300)))]
        if pick == 1:
            return [act[:int(rng.integers(1, len(act)))]]
        if pick == 2:
            return [P.pack({**P.act(obs, "x", time.time(), 5), "timestamp": "soon"})]
        if pick == 3:
            return [P.pack(P.pong(3))]
        if pick == 4:
            return [P.pack({"v": 9, "kind": "act", "id": 4})]
        return [P.pack(P.ping(6)), P.pack(P.ping(7))]  # several frames in one message

    kinds = ["flooder", "leaver", "garbage"]
    clients = [{"kind": kinds[i % 3], "sock": None, "next": time.monotonic() + 0.01 * i,
                "renew": 0.0} for i in range(n)]
    end = time.monotonic() + seconds
    while (now := time.monotonic()) < end:
        for c in clients:
            if now < c["next"]:
                continue
            try:
                step(c, now, rng, dealer, act, hello, garbage, sent, flood_hz, host, port)
            except (zmq.ZMQError, OSError):  # queue full, or no server right now
                sent["send_refused"] += 1
                c["next"] = now + 0.1
        time.sleep(0.002)
    for c in clients:
        if c["sock"] is not None:
            c["sock"].close(linger=0)
    ctx.term()
    return dict(sent)


def step(c, now, rng, dealer, act, hello, garbage, sent, flood_hz, host, port) -> None:
    """One move of one misbehaving client; sets when it moves next."""
    import zmq

    if c["kind"] == "flooder":
        if c["sock"] is None or now > c["renew"]:  # a new connection, no goodbye
            if c["sock"] is not None:
                c["sock"].close(linger=0)
            c["sock"], c["renew"] = dealer(), now + 10.0
            c["sock"].send(hello, zmq.NOBLOCK)
        c["sock"].send(act, zmq.NOBLOCK)  # never reads a reply
        sent["flood_act"] += 1
        c["next"] = now + 1.0 / flood_hz
    elif c["kind"] == "leaver":
        s = dealer()
        s.send(hello)
        if s.poll(500):  # wait for the session, then leave with an act in flight
            s.recv()
            s.send(act)
            sent["leaver_act"] += 1
        s.close(linger=100)
        c["next"] = now + float(rng.uniform(0.5, 1.5))
    elif rng.random() < 0.1:  # not even ZeroMQ: raw bytes on the TCP port
        with socket.create_connection((host, int(port)), timeout=1.0) as raw:
            raw.sendall(bytes(rng.bytes(int(rng.integers(1, 200)))))
        sent["raw_tcp"] += 1
        c["next"] = now + 0.2
    else:
        if c["sock"] is None or now > c["renew"]:
            if c["sock"] is not None:
                c["sock"].close(linger=0)
            c["sock"], c["renew"] = dealer(), now + 5.0
        c["sock"].send_multipart(garbage(), zmq.NOBLOCK)
        while c["sock"].poll(0):
            c["sock"].recv()  # (reads its errors, so that its queue stays open)
        sent["garbage"] += 1
        c["next"] = now + 0.05


# -- analysis -----------------------------------------------------------------------------
def fault_windows(robot: SoakRobot, faults: list[dict]) -> list[tuple[float, float]]:
    """Per fault: (fault start, this robot's first action after the server was back)."""
    return [(f["start"], next((t for t in robot.acts if t >= f["back"]), float("inf")))
            for f in faults]


def outside(a: float, b: float, windows: list[tuple[float, float]]) -> bool:
    """Whether the interval [a, b] misses every window."""
    return all(b < lo or a > hi for lo, hi in windows)


def analyse(robots: list[SoakRobot], records: list[dict], faults: list[dict],
            started: float, ended: float) -> dict:
    """The JSON figures from the robots' timelines (time.monotonic() seconds)."""
    per_robot, gaps = [], []
    fault_rows = [{"kind": f["kind"], "at_s": round(f["start"] - started, 1),
                   "down_s": round(f["back"] - f["start"], 2),
                   "server_ready_after_restart_s": f.get("ready"),
                   "held_ticks": 0, "hold_after_s_max": 0.0, "resume_after_back_s_max": 0.0}
                  for f in faults]
    for robot, record in zip(robots, records):
        windows = fault_windows(robot, faults)
        acts = [t for t in robot.acts if started <= t <= ended]
        gaps += [b - a for a, b in zip(acts, acts[1:]) if outside(a, b, windows)]
        healthy = [rtt * 1e3 for t, rtt in record["rtt"] if outside(t - rtt, t, windows)]
        per_robot.append({
            "rtt_p50_ms": round(float(np.percentile(healthy, 50)), 2) if healthy else None,
            "rtt_p99_ms": round(float(np.percentile(healthy, 99)), 2) if healthy else None,
            "acted": len(acts), "held": len(robot.holds), "errors": dict(record["errors"]),
            "failures": record["failures"][:3]})
        for row, f, (lo, hi) in zip(fault_rows, faults, windows):
            first_hold = next((t for t in robot.holds if t >= lo), float("inf"))
            row["held_ticks"] += sum(lo <= t <= hi for t in robot.holds)
            row["hold_after_s_max"] = max(row["hold_after_s_max"], round(first_hold - lo, 3))
            row["resume_after_back_s_max"] = max(row["resume_after_back_s_max"],
                                                 round(hi - f["back"], 3))
    longest = max(gaps, default=float("inf"))
    hold_target = PERIOD_S * 1.5  # the next tick, which waits half a period for its reply
    return {
        "invalid_replies": sum(len(r["invalid"]) for r in records),
        "invalid_examples": [p for r in records for p in r["invalid"]][:5],
        "per_robot": per_robot,
        "longest_gap_outside_faults_s": round(longest, 3),
        "faults": fault_rows,
        "targets": {
            "longest_gap_s": TARGET_GAP_PERIODS * PERIOD_S, "hold_after_s": hold_target,
            "resume_after_restart_s": TARGET_RESUME_S,
            "met": {
                "invalid_replies": all(not r["invalid"] for r in records),
                "longest_gap": longest <= TARGET_GAP_PERIODS * PERIOD_S,
                "hold": all(f["hold_after_s_max"] <= hold_target for f in fault_rows),
                "resume": all(f["resume_after_back_s_max"] <= TARGET_RESUME_S
                              for f in fault_rows),
            },
        },
    }


# -- the run ------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def schedule(seconds: float, every_s: float, freeze_s: float) -> list[tuple[float, str]]:
    """(time, action) pairs: a freeze a quarter into each cycle, a kill three quarters in."""
    events, k = [], 0
    while k * every_s < seconds:
        base = k * every_s
        events += [(base + every_s / 4, "freeze"), (base + every_s / 4 + freeze_s, "thaw"),
                   (base + 3 * every_s / 4, "kill")]
        k += 1
    return [(t, a) for t, a in events if t < seconds - 1.0]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--robots", type=int, default=16)
    parser.add_argument("--misbehaving", type=int, default=50)
    parser.add_argument("--policy", default=None,
                        help="policy spec for vla serve (default: its default policy)")
    parser.add_argument("--fault-every-s", type=float, default=120.0)
    parser.add_argument("--freeze-s", type=float, default=3.0)
    parser.add_argument("--flood-hz", type=float, default=20.0,
                        help="acts per second of each flooder (default 20)")
    parser.add_argument("--deadline-periods", type=float, default=1.0,
                        help="robots' watchdog: silent this many periods while waiting = "
                             "server lost (default 1: hold within a period of a freeze)")
    parser.add_argument("--log", default=None, help="server log file (default: a temp file)")
    parser.add_argument("--misbehave", nargs=4, metavar=("URL", "N", "SECONDS", "FLOOD_HZ"),
                        help=argparse.SUPPRESS)  # the child process's role
    args = parser.parse_args(argv)
    if args.misbehave:
        url, n, seconds, hz = args.misbehave
        print(json.dumps(misbehave(url, int(n), float(seconds), float(hz), seed=1)))
        return {}
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    warnings = Counter()

    class CountWarnings(logging.Handler):  # the bridges' warnings, counted not printed
        def emit(self, record):  # "bridge: lost the policy server: why" -> its gist
            parts = re.sub(r"tcp://\S+", "URL", record.getMessage()).split(":")
            warnings[":".join(parts[:2])[:70]] += 1

    bridges_log = logging.getLogger("bridges")
    bridges_log.addHandler(CountWarnings(logging.WARNING))
    bridges_log.setLevel(logging.WARNING)
    bridges_log.propagate = False

    url = f"tcp://127.0.0.1:{free_port()}"
    log_path = Path(args.log or f"/tmp/serve_soak_{os.getpid()}.log")
    server = ServerProcess(url, args.policy, log_path)
    seconds = args.minutes * 60
    stop = threading.Event()
    robots = [SoakRobot(i) for i in range(args.robots)]
    records = [{"invalid": [], "rtt": [], "errors": Counter(), "failures": []} for _ in robots]
    # The simulated robots' frames are synthetic: the policy's presence check would
    # (rightly) refuse them, and this benchmark measures serving, not refusal.
    config = LoopConfig(deadline_s=args.deadline_periods * PERIOD_S,
                        heartbeat_s=args.deadline_periods * PERIOD_S / 2,
                        connect_timeout_s=60.0, first_reply_timeout_s=60.0,
                        min_presence=float("-inf"))
    misbehaver = threads = None
    faults: list[dict] = []
    try:
        server.start()
        ready_s = server.wait_ready(120.0)
        threads = [threading.Thread(target=run_robot, args=(i, url, stop, r, rec, config),
                                    daemon=True)
                   for i, (r, rec) in enumerate(zip(robots, records))]
        for t in threads:
            t.start()
        if args.misbehaving:
            misbehaver = subprocess.Popen(
                [sys.executable, __file__, "--misbehave", url, str(args.misbehaving),
                 str(seconds), str(args.flood_hz)], stdout=subprocess.PIPE, cwd=ROOT)
        started = time.monotonic()
        for at, action in schedule(seconds, args.fault_every_s, args.freeze_s):
            time.sleep(max(0.0, started + at - time.monotonic()))
            if action == "freeze":
                server.signal(signal.SIGSTOP)
                faults.append({"kind": "freeze", "start": time.monotonic()})
            elif action == "thaw":
                server.signal(signal.SIGCONT)
                faults[-1]["back"] = time.monotonic()
            else:
                faults.append({"kind": "kill", "start": time.monotonic()})
                server.kill()
                server.start()
                faults[-1]["back"] = time.monotonic()  # restarted (resume counts from here)
                faults[-1]["ready"] = round(server.wait_ready(120.0), 2)
        time.sleep(max(0.0, started + seconds - time.monotonic()))
        ended = time.monotonic()
        stop.set()
        for t in threads:
            t.join(30)
        sent = json.loads(misbehaver.communicate(timeout=60)[0] or "{}") if misbehaver else {}
        time.sleep(2.0)  # let the server see the last disconnects
        result = {
            "command": " ".join(["benchmarks/serve_soak.py", *(argv or sys.argv[1:])]),
            "policy": args.policy or "default", "robots": args.robots,
            "misbehaving": args.misbehaving, "minutes": args.minutes,
            "server_ready_s": round(ready_s, 2),
            **analyse(robots, records, faults, started, ended),
            "sessions_left": server.sessions_left(),
            "server_log": {**server.log_counts(), "file": str(log_path)},
            "misbehaving_sent": sent, "bridge_warnings": dict(warnings),
        }
    finally:
        stop.set()
        if misbehaver is not None and misbehaver.poll() is None:
            misbehaver.kill()
        server.stop()
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()

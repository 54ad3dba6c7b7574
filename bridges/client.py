"""The control loop: a robot, a policy server, and a fixed control rate between them.

Each tick (every 1 / control_hz seconds, scheduled on `time.monotonic`):

1. if the server went missing since the last tick, drop every buffered action;
2. observe; maybe ask for a new chunk with this observation (see below);
3. take this tick's action from the schedule (waiting up to `sync_wait` of a period when
   the chunk that covers it is still on its way), check it against the safety limits at
   the current state, and `act`; with no valid action, `hold`;
4. sleep until the next tick, handling replies as they arrive (a reply's chunk is checked
   as a whole by the safety layer, from the current state, and its stale steps dropped).

When to ask: "async" keeps one chunk and asks for the next when fewer actions remain than
the measured latency (p90, in ticks) plus a margin, so the new chunk lands before the old
runs out; "ensemble" asks every `query_every` ticks and blends overlapping chunks. At most
one `act` is in flight. A silent server (nothing heard for `deadline_s` while waiting on
it, heartbeats included, or a dropped connection) trips the watchdog: the robot holds from
the next tick on while the link reconnects; control resumes when a server answers hello.

Tick 0 starts when the first chunk has arrived, so a slow first inference (model warm-up)
does not count as lateness. If a tick overruns its period, the missed ticks are skipped
(never run in a burst) and counted.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from dataclasses import dataclass, field

import numpy as np

from bridges import protocol
from bridges.connection import BridgeError, CurveKeys, PolicyLink
from bridges.contract import as_contract
from bridges.robot import Robot
from bridges.safety import SafetyLayer, check_chunk
from bridges.schedule import make_schedule
from bridges.stats import RunStats

log = logging.getLogger(__name__)


@dataclass
class LoopConfig:
    # A field with a "help" in its metadata is also a flag of `vla bridge` and `vla command`
    # (vla/config.py's `add_flags`; "flag" names it when it is not the field's name).
    mode: str = field(default="async", metadata={  # async: re-query ahead; ensemble: blend
        "help": "chunk execution: async re-query or temporal ensembling",
        "choices": ("async", "ensemble")})
    deadline_s: float = field(default=0.5, metadata={  # silent this long: the server is gone
        "help": "seconds without a reply before the robot holds", "flag": "deadline",
        "metavar": "S"})
    heartbeat_s: float = 0.2          # ping when the server was silent this long
    # Ask for the keypoint groups' maps with every act (protocol feature "attention"; the
    # newest is `ControlLoop.attention`): for a viewer such as `vla console --robot`.
    attention: bool = False
    connect_timeout_s: float = field(default=15.0, metadata={  # first hello
        "help": "seconds to wait for a server to answer hello", "flag": "connect-timeout",
        "metavar": "S"})
    first_reply_timeout_s: float = 30.0  # first chunk of a run (the policy may warm up)
    sync_wait: float = 0.5            # fraction of a period to wait for a chunk due now
    lead_margin: int = 1              # async: extra ticks of actions kept when re-asking
    query_every: int = 1              # ensemble: ask every this many ticks
    ensemble_decay: float = 0.01      # ensemble: weight exp(-decay * i), oldest first
    jpeg_quality: int | None = field(default=None, metadata={  # for remote links
        "help": "send camera images as JPEG of this quality (default: raw)", "metavar": "Q"})
    max_consecutive_errors: int = 5   # error replies or rejected chunks in a row: give up
    curve: CurveKeys | None = None
    adapter: str | None = field(default=None, metadata={  # None: the base policy
        "help": "the server's adapter to use (`vla serve --adapters`; default: the base "
                "policy)", "metavar": "NAME"})
    # Refuse a run whose first answer's presence score is below this; None: the server's
    # calibrated threshold (if it has one); -inf: never refuse.
    min_presence: float | None = field(default=None, metadata={
        "help": "refuse to move when the presence score of the policy's first answer is "
                "below P (default: on a robot, the server's calibrated threshold, if any; in "
                "the simulator, no check, since the scene says what is there; "
                "--min-presence=-inf: never refuse)", "metavar": "P"})

    def __post_init__(self) -> None:
        make_schedule(self.mode)  # validates the name
        if not self.deadline_s > 0:
            raise ValueError(f"deadline_s={self.deadline_s}; expected a positive number of "
                             f"seconds")
        if not 0 <= self.sync_wait < 1:
            raise ValueError(f"sync_wait={self.sync_wait}; expected a fraction in [0, 1)")
        if self.query_every < 1 or self.lead_margin < 0:
            raise ValueError(f"query_every={self.query_every} must be >= 1 and "
                             f"lead_margin={self.lead_margin} >= 0")


class NotInView(BridgeError):
    """The policy does not see what the instruction names: the run refused to move."""

    def __init__(self, message: str, score: float, threshold: float) -> None:
        super().__init__(message)
        self.score, self.threshold = score, threshold


class ControlLoop:
    """Drives one robot with the policy served at `url`. Use as a context manager."""

    def __init__(self, robot: Robot, url: str, config: LoopConfig | None = None,
                 safety: SafetyLayer | None = None) -> None:
        self.robot = robot
        self.config = config or LoopConfig()
        self.instruction: str | None = None  # set per run()
        self.contract = as_contract(robot.contract)
        self.period = 1.0 / self.contract.control_hz
        self.safety = safety or SafetyLayer(robot.limits)
        c = self.config
        self.link = PolicyLink(url, self.contract, deadline_s=c.deadline_s,
                               heartbeat_s=c.heartbeat_s, curve=c.curve, adapter=c.adapter,
                               capabilities={"modes": [c.mode]})

    # -- lifecycle ----------------------------------------------------------------------
    def connect(self) -> None:
        """Say hello; raises `ContractMismatch` naming the field, or `BridgeError`."""
        self.link.open()
        self.link.wait_ready(self.config.connect_timeout_s)

    def close(self) -> None:
        self.link.close()

    def __enter__(self) -> ControlLoop:
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the loop -----------------------------------------------------------------------
    def run(self, steps: int | None = None, stop=None, episode_id: str | None = None,
            instruction: str | None = None) -> dict:
        """Run ticks until `steps` ticks have run or `stop()` is true; returns the summary
        (`RunStats.summary()`): achieved rate, latency percentiles, holds by reason.
        `instruction`, when given, is what the policy is told in place of the robot's own
        observation["instruction"] (a robot need not know what it is asked to do)."""
        c = self.config
        self.instruction = instruction
        self._slow_warned_at = -math.inf
        self.episode_id = episode_id or f"{self.contract.robot}-{uuid.uuid4().hex[:12]}"
        self.stats = RunStats(self.contract.control_hz)
        self.schedule = make_schedule(c.mode, **({"decay": c.ensemble_decay}
                                                  if c.mode == "ensemble" else {}))
        self._requests: dict[int, tuple[int, float]] = {}  # id -> (tick, obs timestamp)
        self._errors_in_a_row = 0
        self.tick = 0
        self.attention = None  # the newest attention maps (G, h, w), when asked for
        self._warned_stale = False
        losses_before = self.link.losses
        try:
            self._start_episode()
            t0 = time.monotonic()
            self.stats.started_at = t0
            while True:
                self._run_tick(t0 + self.tick * self.period)
                self.stats.ticks += 1
                if (steps is not None and self.stats.ticks >= steps) or (stop and stop()):
                    break
                self._advance(t0)
        except BaseException:
            try:
                self.robot.hold()
            except Exception:  # the robot is failing too; the first error is the one to see
                log.exception("bridge: the robot could not hold after the run failed")
            raise
        finally:
            self.stats.ended_at = time.monotonic()
            self.stats.expired_actions = self.schedule.expired
            self.stats.losses = self.link.losses - losses_before
        self.robot.hold()
        return self.stats.summary()

    def idle(self, seconds: float) -> None:
        """Keep the session alive for `seconds` without running the robot (between
        episodes, while a person resets the scene): heartbeats go on, so the server does
        not forget this robot and the next `run` starts at once. The robot holds."""
        self.robot.hold()
        end = time.monotonic() + max(0.0, seconds)
        while (left := end - time.monotonic()) > 0:
            self.link.poll(min(left, self.config.heartbeat_s))  # late replies are dropped

    def _start_episode(self) -> None:
        """Reset the policy and fetch the first chunk before the clock starts."""
        wait = self.config.first_reply_timeout_s
        if not self.link.ready:
            self.link.wait_ready(self.config.connect_timeout_s)
        self.link.send_reset(self.episode_id, deadline_s=wait)
        self._wait_for(lambda: not self.link.busy("reset"), wait)
        self._observe()
        if self.link.ready:  # (not if the server vanished meanwhile: the ticks hold)
            self._ask(deadline_s=wait)
            self._wait_for(lambda: not self.link.busy("act"), wait)
            self._check_presence()
        if self.link.take_loss() or self.schedule.remaining(0) == 0:
            log.warning("bridge: no first chunk; starting to tick anyway (the robot holds)")

    def _check_presence(self) -> None:
        """Refuse to move when the policy's first answer says it does not see what the
        instruction names: its presence score below the threshold (the server's calibrated
        one, or LoopConfig.min_presence; None and no server threshold: no check)."""
        threshold = self.config.min_presence
        if threshold is None:  # (the wire's first name for it)
            threshold = (self.link.server_capabilities or {}).get("grounding_threshold")
        score = self.stats.presence[-1] if self.stats.presence else None
        if threshold is None or score is None or score >= threshold:
            return
        self.schedule.clear()
        raise NotInView(
            f"refused to move: the policy does not find what the instruction names in its "
            f"camera view (presence {score:.3f} < threshold {threshold:.3f}). Check that "
            f"the object is in view and named as in training; to run anyway, lower the "
            f"threshold (LoopConfig.min_presence, --min-presence)", score, threshold)

    def _run_tick(self, due: float) -> None:
        c, stats = self.config, self.stats
        stats.last_tick_at = time.monotonic()
        stats.lateness_s.append(stats.last_tick_at - due)
        if self.link.take_loss():  # watchdog: the server went silent or away
            self.schedule.clear()
            self._requests.clear()
        self._observe()
        if self.link.ready and not self.link.busy("act") and self._should_ask():
            self._ask()
        if self.schedule.action_for(self.tick) is None and self.link.busy("act"):
            self._wait_for(lambda: self.schedule.action_for(self.tick) is not None
                           or not self.link.busy("act"), due + c.sync_wait * self.period
                           - time.monotonic())
        action = self.schedule.action_for(self.tick) if self.link.ready else None
        if action is None:
            reason = "no_server" if not self.link.ready else "no_action"
            self._hold(reason)
            return
        # The chunk was checked as a whole on arrival; check the one action again against
        # the state just observed (blended or late actions must obey the box as well).
        safe = check_chunk(action, self.state, self.safety.limits)
        if safe.rejected:
            self._hold("rejected")
            return
        started = time.monotonic()
        self.robot.act(safe.actions[0])
        stats.act_s.append(time.monotonic() - started)
        stats.acted += 1

    def _advance(self, t0: float) -> None:
        """Move to the next tick, skipping any whose time has passed; sleep until it."""
        self.tick += 1
        behind = math.floor((time.monotonic() - t0) / self.period)
        if behind > self.tick:  # this tick overran: never run the missed ticks in a burst
            self.stats.skipped_ticks += behind - self.tick
            self.tick = behind
            self._warn_slow_robot()
            # With no time left to wait in, replies would pile up unread: read them now.
            self._dispatch(self.link.poll(0))
        self._wait_until(t0 + self.tick * self.period)

    def _hold(self, reason: str) -> None:
        self.robot.hold()
        self.stats.held[reason] += 1

    def _observe(self) -> None:
        started = time.monotonic()
        self.obs = self.robot.observe()
        self.obs_time = time.monotonic()
        self.stats.observe_s.append(self.obs_time - started)
        if self.instruction is not None:
            self.obs = {**self.obs, "instruction": self.instruction}
        self.state = np.asarray(self.obs["state"], dtype=np.float32)

    def _warn_slow_robot(self) -> None:
        """Say, at most every 5 s, that the robot's own calls do not fit in a period."""
        now = time.monotonic()
        if now - self._slow_warned_at < 5.0:
            return
        self._slow_warned_at = now
        observe = 1e3 * float(np.median(self.stats.observe_s[-10:] or [0.0]))
        act = 1e3 * float(np.median(self.stats.act_s[-10:] or [0.0]))
        log.warning("bridge: a tick overran the %.0f ms control period (%d ticks skipped so "
                    "far): robot.observe() takes %.1f ms and robot.act() %.1f ms (median of "
                    "the last 10). Make them faster (read cameras in a thread, do not wait "
                    "for motion in act), lower control_hz, or give the server its own "
                    "cores (vla serve --threads)", 1e3 * self.period,
                    self.stats.skipped_ticks, observe, act)

    def _should_ask(self) -> bool:
        c = self.config
        if c.mode == "ensemble":
            return self.tick % c.query_every == 0 or self.schedule.remaining(self.tick) == 0
        # Ask when the buffer would run dry before a reply can land: p90 latency in ticks.
        recent = self.stats.rtt_s[-20:]
        latency = float(np.percentile(recent, 90)) if recent else self.period
        lead = math.ceil(latency / self.period) + c.lead_margin
        # The policy's own choice (hello_reply.capabilities.execute_steps): ask again once
        # that many of a chunk's actions have run, sooner if the latency needs it.
        chunk = getattr(self.link.server_contract, "chunk_length", None)
        execute = (self.link.server_capabilities or {}).get("execute_steps")
        if isinstance(execute, int) and chunk and 1 <= execute < chunk:
            lead = max(lead, chunk - execute)
        return self.schedule.remaining(self.tick) <= lead

    def _ask(self, deadline_s: float | None = None) -> None:
        # No use in an answer after the chunk's last step is due: the server may drop the
        # request instead of computing it (`expired`). Not for the first, warm-up request.
        chunk = getattr(self.link.server_contract, "chunk_length", None)
        answer_by = (self.obs_time + chunk * self.period
                     if deadline_s is None and chunk else None)
        msg_id = self.link.send_act(self.obs, self.episode_id, self.obs_time,
                                    self.config.jpeg_quality, deadline_s, answer_by=answer_by,
                                    attention=self.config.attention)
        self._requests[msg_id] = (self.tick, self.obs_time)

    # -- waiting and replies --------------------------------------------------------------
    def _wait_until(self, when: float) -> None:
        while (left := when - time.monotonic()) > 0:
            self._dispatch(self.link.poll(left))

    def _wait_for(self, done, timeout_s: float) -> None:
        end = time.monotonic() + max(0.0, timeout_s)
        while not done() and (left := end - time.monotonic()) > 0:
            self._dispatch(self.link.poll(min(left, 0.05)))

    def _dispatch(self, replies: list[dict]) -> None:
        for msg in replies:
            request = self._requests.pop(msg.get("id"), None)
            if msg["kind"] == "error":
                self._on_error(msg)
            elif msg["kind"] == "action_reply" and request is not None:
                self._on_chunk(msg, *request)

    def _on_chunk(self, msg: dict, tick: int, obs_time: float) -> None:
        stats = self.stats
        stats.rtt_s.append(msg["rtt"])
        timing = msg.get("server_timing") or {}
        if timing:
            stats.server_ms.append(float(timing.get("total_ms", max(timing.values()))))
        try:
            actions = protocol.decode_array(msg.get("actions"), dtypes=("float32",),
                                            expected_shape=(None, len(self.contract.action_names)),
                                            field="actions")
        except protocol.ProtocolError as err:
            self._on_error({"code": err.code, "message": str(err)})
            return
        stats.chunks += 1
        if msg.get("grounding") is not None:
            stats.presence.append(float(msg["grounding"]))  # the wire's first name
        if msg.get("attention") is not None:  # asked for (LoopConfig.attention): keep the last
            try:
                self.attention = protocol.decode_array(msg["attention"], dtypes=("float16",),
                                                       field="attention")
            except protocol.ProtocolError:
                self.attention = None  # maps that cannot be read are not drawn
        # Step k is due at obs_time + k / hz (the server's step_timestamps say so); those
        # before the next tick to run are stale, the rest are checked from the current state.
        first = tick + self._first_offset(msg.get("step_timestamps"), obs_time)
        stale = max(0, self.tick - first)
        too_slow = msg["rtt"] > self.config.sync_wait * self.period
        if stale >= len(actions) and too_slow and not self._warned_stale:
            self._warned_stale = True
            log.warning("bridge: a whole %d-step chunk arrived after its last step was due "
                        "(latency %.0f ms at %g Hz); the robot holds instead. Serve a policy "
                        "with longer chunks, or a faster one.", len(actions),
                        msg["rtt"] * 1000, self.contract.control_hz)
        safe = self.safety(actions[stale:], self.state)
        stats.safety_changed += bool(safe.changes)
        if safe.rejected:
            stats.safety_rejected += 1
            self.schedule.clear()  # a broken chunk discredits the plan it came from
            self._on_error({"code": "rejected_by_safety", "message": safe.changes[0]})
            return
        self._errors_in_a_row = 0
        self.schedule.expired += min(stale, len(actions))
        self.schedule.add(safe.actions, first + stale, self.tick)

    def _first_offset(self, step_timestamps, obs_time: float) -> int:
        try:
            return max(0, round((float(step_timestamps[0]) - obs_time) / self.period))
        except (TypeError, ValueError, IndexError):
            return 0

    def _on_error(self, msg: dict) -> None:
        """An error reply, or a chunk that cannot be used; enough in a row end the run.
        `expired` (the server was too busy to answer in time) and `superseded` (a newer
        request took its place) are overload, not faults: counted, and the loop asks again."""
        if msg.get("code") in ("expired", "superseded"):
            self.stats.overload_replies += 1
            return
        self._errors_in_a_row += 1
        if msg.get("code") != "rejected_by_safety":  # (the safety layer logged those)
            self.stats.server_errors += 1
            log.warning("bridge: server error %s: %s", msg.get("code"), msg.get("message"))
        if self._errors_in_a_row >= self.config.max_consecutive_errors:
            raise BridgeError(f"the policy server's last {self._errors_in_a_row} replies were "
                              f"errors or unusable chunks; the last: {msg.get('code')}: "
                              f"{msg.get('message')}")

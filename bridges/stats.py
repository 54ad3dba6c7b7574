"""What a control run achieved: rate, latency, holds. Printed by `vla bridge` and `vla command`."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np


@dataclass
class RunStats:
    control_hz: float
    ticks: int = 0
    acted: int = 0
    held: Counter = field(default_factory=Counter)  # reason -> ticks held
    skipped_ticks: int = 0     # ticks lost because a tick overran its period
    lateness_s: list[float] = field(default_factory=list)  # tick start - its due time
    rtt_s: list[float] = field(default_factory=list)       # act request -> reply
    server_ms: list[float] = field(default_factory=list)   # the server's own total time
    observe_s: list[float] = field(default_factory=list)   # robot.observe() durations
    act_s: list[float] = field(default_factory=list)       # robot.act() durations
    chunks: int = 0
    expired_actions: int = 0
    safety_changed: int = 0
    safety_rejected: int = 0
    server_errors: int = 0
    overload_replies: int = 0  # `expired` or `superseded`: the server was too busy
    presence: list[float] = field(default_factory=list)  # per chunk, when the policy says
    losses: int = 0
    started_at: float = 0.0    # when tick 0 started (time.monotonic)
    last_tick_at: float = 0.0  # when the latest tick started
    ended_at: float = 0.0

    def summary(self) -> dict:
        # Tick starts per second, from the first tick's start to the last one's.
        span = self.last_tick_at - self.started_at
        achieved = (self.ticks - 1) / span if self.ticks > 1 and span > 0 else 0.0
        return {
            "control_hz": self.control_hz,
            "achieved_hz": round(achieved, 2),
            "ticks": self.ticks,
            "acted": self.acted,
            "held": dict(self.held),
            "skipped_ticks": self.skipped_ticks,
            "tick_lateness_ms": _percentiles(self.lateness_s, 1000),
            "latency_ms": _percentiles(self.rtt_s, 1000),
            "server_ms": _percentiles(self.server_ms, 1),
            "observe_ms": _percentiles(self.observe_s, 1000),
            "act_ms": _percentiles(self.act_s, 1000),
            "chunks": self.chunks,
            "expired_actions": self.expired_actions,
            "safety_changed_chunks": self.safety_changed,
            "safety_rejected_chunks": self.safety_rejected,
            "server_errors": self.server_errors,
            "overload_replies": self.overload_replies,
            "presence": _percentiles(self.presence, 1),
            "server_losses": self.losses,
        }


def _percentiles(values, scale: float) -> dict:
    if not values:
        return {"n": 0}
    a = np.asarray(values, dtype=np.float64) * scale
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return {"n": len(a), "p50": round(float(p50), 3), "p90": round(float(p90), 3),
            "p99": round(float(p99), 3), "max": round(float(a.max()), 3)}


def format_summary(s: dict) -> str:
    """One line a person reads: rate, latency, holds."""
    lat = s["latency_ms"]
    lat_text = (f"latency p50 {lat['p50']:.1f} ms p99 {lat['p99']:.1f} ms (n={lat['n']})"
                if lat["n"] else "no replies")
    held = sum(s["held"].values())
    return (f"{s['achieved_hz']:.2f} Hz of {s['control_hz']:g} Hz over {s['ticks']} ticks, "
            f"{lat_text}, held {held} ticks {s['held'] or ''}".rstrip())

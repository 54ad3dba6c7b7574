"""Latency and batching figures of the server: what the periodic log line reports.

Keeps the last WINDOW requests' queue, inference and total times (milliseconds, server
clock) and counters since start. Read from other threads (tests, benchmarks), so every
access takes the lock.
"""

from __future__ import annotations

import threading
from collections import Counter, deque

import numpy as np

WINDOW = 10_000


class ServerStats:
    def __init__(self):
        self._lock = threading.Lock()
        self._times = {k: deque(maxlen=WINDOW) for k in ("queue_ms", "inference_ms", "total_ms")}
        self.requests = 0           # actions served
        self.batches = 0
        self.batch_sizes: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()  # by error code
        # Messages and queued acts thrown away because their client had gone, by where.
        self.dropped: Counter[str] = Counter()
        self.sessions_opened = 0
        self.sessions_freed = 0
        self.sessions = 0           # open now
        self._since_log = 0

    def record_batch(self, size: int, timings: list[dict]) -> None:
        with self._lock:
            self.batches += 1
            self.batch_sizes[size] += 1
            self.requests += len(timings)
            self._since_log += len(timings)
            for t in timings:
                for k, q in self._times.items():
                    q.append(t[k])

    def record_error(self, code: str) -> None:
        with self._lock:
            self.errors[code] += 1

    def record_dropped(self, where: str) -> None:
        with self._lock:
            self.dropped[where] += 1

    def set_sessions(self, open_now: int, opened: int = 0, freed: int = 0) -> None:
        with self._lock:
            self.sessions = open_now
            self.sessions_opened += opened
            self.sessions_freed += freed

    def summary(self) -> dict:
        with self._lock:
            out = {
                "requests": self.requests, "batches": self.batches,
                "max_batch_seen": max(self.batch_sizes, default=0),
                "batch_sizes": dict(sorted(self.batch_sizes.items())),
                "errors": dict(self.errors), "dropped": dict(self.dropped),
                "sessions": self.sessions,
                "sessions_opened": self.sessions_opened, "sessions_freed": self.sessions_freed,
            }
            for k, q in self._times.items():
                values = np.fromiter(q, float, len(q))
                name = k.removesuffix("_ms")
                out[f"{name}_p50_ms"] = float(np.percentile(values, 50)) if len(q) else None
                out[f"{name}_p99_ms"] = float(np.percentile(values, 99)) if len(q) else None
            return out

    def log_line(self) -> str | None:
        """One line for the log, or None if nothing was served since the last one."""
        with self._lock:
            if self._since_log == 0:
                return None
            self._since_log = 0
        s = self.summary()
        mean_batch = s["requests"] / max(1, s["batches"])
        return (f"served {s['requests']} requests in {s['batches']} batches (mean batch "
                f"{mean_batch:.1f}, max {s['max_batch_seen']}); last {WINDOW} p50/p99 ms: "
                f"queue {s['queue_p50_ms']:.2f}/{s['queue_p99_ms']:.2f}, inference "
                f"{s['inference_p50_ms']:.2f}/{s['inference_p99_ms']:.2f}, total "
                f"{s['total_p50_ms']:.2f}/{s['total_p99_ms']:.2f}; sessions {s['sessions']}; "
                f"errors {s['errors'] or 0}")

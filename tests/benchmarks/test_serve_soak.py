"""benchmarks/serve_soak.py's bookkeeping: fault schedule, reply checks, gap analysis.

The soak itself runs for minutes; these check, in milliseconds, that what it reports
means what its docstring says.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import serve_soak as soak  # noqa: E402

from bridges import protocol as P  # noqa: E402


def test_faults_come_every_cycle_freeze_first_and_none_at_the_very_end():
    events = soak.schedule(240.0, 120.0, 3.0)
    assert events == [(30.0, "freeze"), (33.0, "thaw"), (90.0, "kill"),
                      (150.0, "freeze"), (153.0, "thaw"), (210.0, "kill")]
    assert soak.schedule(120.0, 120.0, 3.0)[-1] == (90.0, "kill")  # the short run has both


def reply(actions, **changes) -> dict:
    msg = P.unpack(P.pack(P.action_reply(np.asarray(actions, np.float32), 10.0,
                                         [0.0] * len(actions), {}, 1)))
    return {**msg, **changes}


@pytest.mark.parametrize("msg, ok", [
    (reply([[0, 0, 0, 0, 1]]), True),
    (reply([[0, 0, 0, 0, 1.5]]), False),
    (reply([[0, 0, 0, 0, np.nan]]), False),
    (reply([[0, 0, 0, 0]]), False),
    (reply([[0, 0, 0, 0, 1]], step_timestamps=[0.0, 0.1]), False),
    (P.error("expired", "late", 1), True),
    (P.error("internal", "x", 1) | {"code": "made_up"}, False),
    (P.pong(1), False),
])
def test_replies_a_robot_cannot_use_are_invalid(msg, ok):
    assert (soak.invalid_reply(msg, 5) is None) is ok


def robot(acts, holds=()) -> soak.SoakRobot:
    r = soak.SoakRobot(0)
    r.acts, r.holds = list(acts), list(holds)
    return r


def test_gaps_inside_a_fault_window_do_not_count_and_holds_are_attributed():
    # Acts every 0.1 s; a freeze at 1.0 s, back at 3.0 s; the robot holds at 1.05..3.05 and
    # acts again from 3.1 s. A healthy 0.5 s gap later (5.0 -> 5.5) is the longest one.
    acts = [t / 10 for t in range(0, 10)] + [t / 10 for t in range(31, 51)] + [5.5, 5.6]
    holds = [1.05 + k / 10 for k in range(21)]
    faults = [{"kind": "freeze", "start": 1.0, "back": 3.0}]
    record = {"invalid": [], "rtt": [(0.5, 0.002), (2.0, 1.5)], "errors": Counter(),
              "failures": []}
    out = soak.analyse([robot(acts, holds)], [record], faults, started=0.0, ended=6.0)
    assert out["longest_gap_outside_faults_s"] == pytest.approx(0.5)
    fault = out["faults"][0]
    assert fault["held_ticks"] == 21 and fault["hold_after_s_max"] == pytest.approx(0.05)
    assert fault["resume_after_back_s_max"] == pytest.approx(0.1)
    assert out["per_robot"][0]["rtt_p99_ms"] == pytest.approx(2.0)  # the 1.5 s one was a fault's
    met = out["targets"]["met"]
    assert met["hold"] and met["resume"] and met["invalid_replies"] and not met["longest_gap"]


def test_a_robot_that_never_comes_back_fails_the_resume_target():
    faults = [{"kind": "kill", "start": 1.0, "back": 1.0, "ready": 0.3}]
    record = {"invalid": [], "rtt": [], "errors": Counter(), "failures": []}
    out = soak.analyse([robot([0.1, 0.2, 0.9])], [record], faults, started=0.0, ended=20.0)
    assert not out["targets"]["met"]["resume"]

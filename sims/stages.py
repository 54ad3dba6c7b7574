"""How far an episode got, stage by stage, read from the simulator state.

Each task has an ordered list of stages (`STAGES`); the last is always "success", judged
by the task's own `success(goal)`, so the share of episodes that reach it is the success
rate. A `StageTracker` looks at the simulator after every step and keeps the furthest
stage whose test holds at that moment (a running maximum): an episode that lifted the
target and then dropped it still counts as having reached "lift". Reaching a stage
counts as reaching every stage before it, so along the list the share of episodes
that reach each stage never rises.

| task | stages |
|---|---|
| pick | reach, grasp, lift, success |
| place | reach, grasp, lift, carry, success (let go, resting in the zone) |
| stack | reach, grasp, lift, carry, success |
| push_to, push_next | reach, contact, displace, success (arrived) |
| touch | reach, success |

- reach: the hand is within `REACH_XY_M` of the target in xy and at most
  `REACH_ABOVE_M` above its centre (push tasks: within `PUSH_REACH_M` of its centre).
- grasp: the hand touches the target while the fingers are partly closed (opening
  between `GRASP_MIN_OPENING_M` and `GRASP_MAX_OPENING_FRACTION` of the widest).
- lift: the target, still touched, is at least `LIFT_M` above where it started.
- carry: lifted, and over the goal in xy (place: within the zone grown by
  `CARRY_ZONE_MARGIN_M`; stack: within `CARRY_OVER_BASE_M` of the base's centre).
- contact: the hand touches the object, or the object has slid `CONTACT_MOVED_M` from
  where it started (contacts are read once per control step, and a pushed block
  flickers in and out of touch between readings; a block at rest moves only when the
  robot pushes it, directly or through another block).
- displace: the object is at least `DISPLACE_M` closer to its goal than at the start
  (push_to: the named board location; push_next: the neighbour, where it is now).

The lengths are the Panda's; a smaller arm's workspace scales them (sims/workspace.py).

No stage reached at all reads as `NONE` ("none").

Beside the stages, `closest_m` keeps the nearest the target came to its goal in xy (place:
the zone's centre, stack: the base, push_to: the board location, push_next: the
neighbour), so a failure says how near it got: a near miss of a few centimetres is a
precision problem, a miss by 20 cm a wrong goal. For place and stack it counts only the
steps when the hand does not touch the target, i.e. where it was set down or dropped
(carried over the goal is the "carry" stage already).
"""

from __future__ import annotations

import numpy as np

from sims.scene import object_pose

NONE = "none"
STAGES: dict[str, tuple[str, ...]] = {
    "pick": ("reach", "grasp", "lift", "success"),
    "place": ("reach", "grasp", "lift", "carry", "success"),
    "stack": ("reach", "grasp", "lift", "carry", "success"),
    "push_to": ("reach", "contact", "displace", "success"),
    "push_next": ("reach", "contact", "displace", "success"),
    "touch": ("reach", "success"),
}
# Tasks whose target has a goal position (StageTracker.closest_m), and those of them
# whose target is carried there (read only where it is let go).
GOAL_TASKS = ("place", "stack", "push_to", "push_next")
CARRY_TASKS = ("place", "stack")

# Reach: the fingertips straddle a 4 cm block when the hand is within about its half
# width of the centre; 4 cm in xy allows an approach that is still being corrected.
REACH_XY_M = 0.04
# ...and low enough to close on it within a step or two (a full step is 5 cm).
REACH_ABOVE_M = 0.06
# Push reach: a hand lining up to push waits beside the block, its radius (2 cm) plus a
# few centimetres from the centre (the scripted expert stops at 5.5 cm).
PUSH_REACH_M = 0.06
# Grasp: an open Panda hand reads 8 cm; below 90% of the widest the fingers have been
# told to close, and above 5 mm something (the 3.6-4 cm wide block) is between them,
# so a shut hand pressing on the block's top is not a grasp.
GRASP_MAX_OPENING_FRACTION = 0.9
GRASP_MIN_OPENING_M = 0.005
# Lift: 3 cm clears contact jitter and settling (millimetres) by far, and is half of the
# 6 cm that pick's success test asks for.
LIFT_M = 0.03
# Carry (place): the zone's half width plus 2 cm, so a block about to be set down on
# the zone's edge counts.
CARRY_ZONE_MARGIN_M = 0.02
# Carry (stack): the stack success test's own alignment tolerance.
CARRY_OVER_BASE_M = 0.03
# Contact, by its effect: settling moves a block by a millimetre or two, a push by more.
CONTACT_MOVED_M = 0.01
# Displace: a push that has moved the block 3 cm towards its goal is under way; less can
# be a nudge from a hand passing by.
DISPLACE_M = 0.03


class StageTracker:
    """The furthest stage reached so far in the current episode of a `sims` env.

    Call `reset()` after `env.reset()` and `update()` after every `env.step()`;
    `furthest` names the stage (or `NONE`), `index` is its place in `stages` (-1: none).
    """

    def __init__(self, env) -> None:
        self.env = env.unwrapped
        self.task_name = self.env.goal_task  # the task judged now (env.set_goal may change it)
        self.stages = STAGES[self.task_name]
        self.index = -1
        self._start = np.zeros(3)
        self._start_dist = 0.0
        self.closest_m: float | None = None  # None: the task has no goal position

    def reset(self) -> None:
        """Remember where the episode starts (heights and distances are measured from it)."""
        self.index = -1
        self._start = self._pos(self._goal.target)
        if self.task_name in ("push_to", "push_next"):
            self._start_dist = self._goal_distance()
        self.closest_m = self._goal_distance() if self.task_name in GOAL_TASKS else None

    def update(self, success: bool | None = None) -> str:
        """Look at the simulator now; `success`: the env's verdict for this step, if known
        (else the task's own test is asked). Returns the furthest stage so far."""
        if success is None:
            success = bool(self.env.task.success(self._goal))
        now = len(self.stages) - 1 if success else _LEVELS[self.task_name](self)
        self.index = max(self.index, now)
        if self.closest_m is not None and (self.task_name not in CARRY_TASKS
                                           or not self._touching()):
            self.closest_m = min(self.closest_m, self._goal_distance())
        return self.furthest

    @property
    def furthest(self) -> str:
        return self.stages[self.index] if self.index >= 0 else NONE

    def reached(self) -> list[str]:
        return list(self.stages[: self.index + 1])

    # -- simulator readings ---------------------------------------------------------
    def m(self, panda_metres: float) -> float:
        """A length of the Panda's suite at the arm's scale (sims/workspace.py)."""
        return self.env.robot.workspace.m(panda_metres)

    @property
    def _goal(self):
        return self.env.goal

    def _pos(self, obj) -> np.ndarray:
        return object_pose(self.env.p, obj)[0]

    def _hand(self) -> np.ndarray:
        return np.asarray(self.env.robot.ee_pose()[0])

    def _touching(self) -> bool:
        return bool(self.env.robot.touches(self._goal.target.body))

    def _reached_above(self) -> bool:
        hand, target = self._hand(), self._pos(self._goal.target)
        return bool(np.linalg.norm(hand[:2] - target[:2]) <= self.m(REACH_XY_M)
                    and hand[2] - target[2] <= self.m(REACH_ABOVE_M))

    def _grasped(self) -> bool:
        robot = self.env.robot
        opening = robot.gripper_opening_m()
        widest = self.env.spec_robot.max_gripper_opening_m
        closing = self.m(GRASP_MIN_OPENING_M) < opening < GRASP_MAX_OPENING_FRACTION * widest
        return closing and self._touching()

    def _lifted(self) -> bool:
        raised = self._pos(self._goal.target)[2] - self._start[2] >= self.m(LIFT_M)
        return bool(raised) and self._touching()

    def _goal_distance(self) -> float:
        """xy distance (m) from the target to where the task wants it."""
        xy = self._pos(self._goal.target)[:2]
        return float(np.linalg.norm(xy - goal_xy(self.env)))


def goal_xy(env) -> np.ndarray:
    """Where the episode's task wants its target, in xy (m), now: the base's or the
    neighbour's centre (stack, push_next), the zone's centre (place), the board location
    (push_to). `env` is the unwrapped env of a task in GOAL_TASKS."""
    goal = env.goal
    if env.goal_task in ("push_next", "stack"):
        return object_pose(env.p, goal.other)[0][:2]
    if env.goal_task == "place":
        return np.asarray(goal.zone.center)[:2]
    return np.asarray(goal.location)[:2]


# Per task: the index of the furthest stage (short of success) whose test holds now.
def _grasp_level(t: StageTracker) -> int:
    """0 reach, 1 grasp, 2 lift; -1 none."""
    if t._lifted():
        return 2
    if t._grasped():
        return 1
    return 0 if t._reached_above() else -1


def _place_level(t: StageTracker) -> int:
    level = _grasp_level(t)
    if level == 2:
        offset = np.abs(t._pos(t._goal.target)[:2] - t._goal.zone.center)
        if np.all(offset <= t._goal.zone.half + t.m(CARRY_ZONE_MARGIN_M)):
            return 3
    return level


def _stack_level(t: StageTracker) -> int:
    level = _grasp_level(t)
    if level == 2:
        top, base = t._pos(t._goal.target), t._pos(t._goal.other)
        if np.linalg.norm(top[:2] - base[:2]) <= t.m(CARRY_OVER_BASE_M):
            return 3
    return level


def _push_level(t: StageTracker) -> int:
    """0 reach, 1 contact, 2 displace; -1 none."""
    if t._start_dist - t._goal_distance() >= t.m(DISPLACE_M):
        return 2
    moved = np.linalg.norm(t._pos(t._goal.target)[:2] - t._start[:2]) >= t.m(CONTACT_MOVED_M)
    if moved or t._touching():
        return 1
    near = np.linalg.norm(t._hand() - t._pos(t._goal.target)) <= t.m(PUSH_REACH_M)
    return 0 if near else -1


def _touch_level(t: StageTracker) -> int:
    return 0 if t._reached_above() else -1


_LEVELS = {
    "pick": _grasp_level,
    "place": _place_level,
    "stack": _stack_level,
    "push_to": _push_level,
    "push_next": _push_level,
    "touch": _touch_level,
}

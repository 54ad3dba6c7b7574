"""Scripted experts: stateless feedback controllers driven by the simulator's state.

An expert reads where things are (that is what a script may know) but acts only
through the env's normal action: normalised end-effector deltas and a gripper
command, the same channel a learned policy uses.

Each expert is *stateless*: every step it infers the phase of the task from the world
(is the target gripped? over the goal? resting on it?) and returns the action for that
phase. It therefore acts sensibly from any state the simulator can be in, including
states a learned policy drove it into, which is what DAgger needs to relabel a
policy's rollouts (`vla dagger`). It also recovers from its own slips: a dropped block
is picked up again, a push that drifts is re-approached.

Noise injection ("perturbed execution, clean labels"): `perturb(action)` adds
Gaussian noise to the action that is executed, while the dataset records the clean
action the expert wanted; the data then shows recoveries from small errors.
"""

from __future__ import annotations

import math

import numpy as np

from sims.robots import wrap_gripper_yaw
from sims.scene import SceneObject, object_pose

OPEN, CLOSED, PUSH_GRIP = 1.0, -1.0, -0.25
# Lengths below are the Panda's; other arms scale them by their workspace (`Expert.m`),
# and take the hover and carry heights from it.
REACH_TOL = 0.006  # metres
SPEED = 0.8  # fraction of the robot's largest step the expert uses
# Phase tests (metres, radians). Generous enough that execution noise (0.1 of a 5 cm
# step) does not make the phase flicker, tight enough that a grasp closes centred.
ALIGNED_XY = 0.012  # hand over the object: descend
# Turn the hand to the grasp yaw only within this of the object (during the last
# centimetres of travel and the descent), not on the way there: the turn then happens
# where the cameras, the wrist one above all, show the block's edges against the
# fingers. Turned on the way, from afar, it was never learned; near the block a policy
# learns when to turn, not yet which way (docs/RESULTS.md, "The policy never learned to
# turn the hand").
ROTATE_XY = 0.04
ABOVE_XY = 0.02  # within this of the hover point: start descending
AT_GRASP = 0.01  # hand within this of the grasp point: close
YAW_TOL = 0.1
GRIP_SLACK = 0.005  # fingers closed to the object's width plus this = gripped
LIFTED = 0.02  # a gripped object this far above its resting height is carried


class Expert:
    """`act()` returns the clean action for the env's current state (no memory)."""

    def __init__(self, env, noise: float = 0.0, seed: int | None = None) -> None:
        self.env = env.unwrapped
        self.noise = float(noise)
        self.rng = np.random.default_rng(seed)

    # -- public -------------------------------------------------------------------------
    def act(self) -> np.ndarray:
        # goal_task: the scene's own task, or the one a typed command put in its place.
        return POLICIES[self.env.goal_task](self).astype(np.float32)

    def perturb(self, action: np.ndarray) -> np.ndarray:
        """The action to execute: clean action plus noise on the motion dimensions."""
        if self.noise <= 0:
            return action
        noisy = action.copy()
        noisy[:4] += self.rng.normal(0.0, self.noise, size=4)
        return np.clip(noisy, -1.0, 1.0).astype(np.float32)

    # -- reading the world --------------------------------------------------------------
    @property
    def ws(self):
        return self.env.robot.workspace

    def m(self, panda_metres: float) -> float:
        """A length of the Panda's suite at this arm's scale."""
        return self.ws.m(panda_metres)

    @property
    def goal(self):
        return self.env.goal

    def pose(self, obj: SceneObject) -> tuple[np.ndarray, float]:
        return object_pose(self.env.p, obj)

    def ee(self) -> tuple[np.ndarray, float]:
        return self.env.robot.ee_pose()

    def gripped(self, obj: SceneObject) -> bool:
        """The fingers are closed on `obj`: touching it, no wider than it plus slack."""
        robot = self.env.robot
        # The slack is a tolerance of the opening's reading, not a size in the scene: it
        # does not shrink with the arm (the SO-101's reading creeps 3 mm as a block settles).
        return robot.touches(obj.body) and robot.gripper_opening_m() < _width(obj) + GRIP_SLACK

    def carried(self, obj: SceneObject) -> bool:
        """Gripped and off the table."""
        return self.gripped(obj) and self.pose(obj)[0][2] > obj.half_height + self.m(LIFTED)

    # -- actions ------------------------------------------------------------------------
    def action_towards(self, pos: np.ndarray, yaw: float, grip: float) -> np.ndarray:
        spec = self.env.spec_robot
        ee, ee_yaw = self.ee()
        delta = (pos - ee) / spec.max_step_m
        norm = np.linalg.norm(delta)
        if norm > SPEED:
            delta *= SPEED / norm
        dyaw = wrap_gripper_yaw(yaw - ee_yaw) / spec.max_step_yaw_rad
        return np.array([*delta, np.clip(dyaw, -SPEED, SPEED), grip], dtype=np.float32)

    def stay(self, grip: float) -> np.ndarray:
        pos, yaw = self.ee()
        return self.action_towards(pos, yaw, grip)

    def rise(self, grip: float, z: float | None = None) -> np.ndarray:
        """Straight up (or stay at `z`, by default the hover height), keeping the yaw."""
        z = self.ws.hover_z if z is None else z
        pos, yaw = self.ee()
        return self.action_towards(np.array([pos[0], pos[1], max(pos[2], z)]), yaw, grip)

    def grasp_yaw(self, obj: SceneObject) -> float:
        """Yaw that closes the fingers across the object's narrow side, nearest the current yaw."""
        _, obj_yaw = self.pose(obj)
        kind, dims = obj.kind, obj.dims
        if kind != "box":
            return self.ee()[1]
        # With yaw = object yaw the fingers close along the object's y axis.
        base = obj_yaw if dims[1] <= dims[0] else obj_yaw + math.pi / 2
        if abs(dims[0] - dims[1]) < 1e-6:  # square: any quarter turn works
            current = self.ee()[1]
            base = base + round((current - base) / (math.pi / 2)) * (math.pi / 2)
        return wrap_gripper_yaw(base)

    def pick_up(self, obj: SceneObject) -> np.ndarray:
        """Hover over `obj`, descend open, close, lift straight up to the carry height."""
        ee, ee_yaw = self.ee()
        m, hover = self.m, self.ws.hover_z
        if self.gripped(obj):
            return self.rise(CLOSED, self.ws.carry_z)
        obj_xy = self.pose(obj)[0][:2]
        at = np.array([*obj_xy, max(obj.half_height, m(0.016))])
        xy_err = np.linalg.norm(ee[:2] - obj_xy)
        yaw = self.grasp_yaw(obj) if xy_err < m(ROTATE_XY) else ee_yaw
        aligned = abs(wrap_gripper_yaw(yaw - ee_yaw)) < YAW_TOL
        if np.linalg.norm(ee - at) < m(AT_GRASP) and aligned:
            if self.env.robot.gripper_opening_m() < _width(obj) - GRIP_SLACK:
                return self.rise(OPEN)  # closed on nothing: missed, try again from above
            return self.action_towards(at, yaw, CLOSED)
        if xy_err < m(ALIGNED_XY) or (xy_err < m(ABOVE_XY) and ee[2] < hover - m(0.01)):
            return self.action_towards(at, yaw, OPEN)  # over it: descend
        if ee[2] < hover - m(0.03) and xy_err < m(0.06):
            return self.rise(OPEN)  # low beside it: up first, do not sweep into it
        return self.action_towards(np.array([*obj_xy, hover]), yaw, OPEN)

    def put_down(self, obj: SceneObject, xy: np.ndarray, z: float, done: bool) -> np.ndarray:
        """Carry `obj` over `xy`, lower it to `z`, open, and back off once `done`."""
        m, carry = self.m, self.ws.carry_z
        if done:  # released where it belongs: open fully, then back off upwards
            if self.env.robot.gripper_opening_m() < _width(obj) + m(0.015):
                return self.stay(OPEN)
            return self.rise(OPEN)
        if not self.gripped(obj):
            return self.pick_up(obj)
        ee, yaw = self.ee()
        # Aim the object, not the hand, at `xy`: a block held off-centre lands right too.
        xy = xy + ee[:2] - self.pose(obj)[0][:2]
        err = np.linalg.norm(ee[:2] - xy)
        if err > m(ABOVE_XY):  # not over the goal yet: travel at the carry height
            if not self.carried(obj) or ee[2] < carry - m(0.04):
                return self.rise(CLOSED, carry)  # lift clear before moving sideways
            return self.action_towards(np.array([*xy, max(ee[2], carry)]), yaw, CLOSED)
        target = np.array([*xy, z])
        if err < m(ALIGNED_XY) and abs(ee[2] - z) < m(REACH_TOL):
            return self.action_towards(target, yaw, OPEN)  # there: let go
        return self.action_towards(target, yaw, CLOSED)  # lower it, correcting sideways

    def push(self, obj: SceneObject, goal_xy: np.ndarray, stop_dist: float) -> np.ndarray:
        """Push `obj` in a straight line to `goal_xy`: from behind it, at fingertip height;
        if the hand is not behind the object, lift and approach again."""
        kind, dims = obj.kind, obj.dims
        radius = max(dims[0], dims[1]) if kind == "box" else dims[0]
        m, hover = self.m, self.ws.hover_z
        push_z = m(0.018)
        ee, ee_yaw = self.ee()
        xy = self.pose(obj)[0][:2]
        to_goal = goal_xy - xy
        if np.linalg.norm(to_goal) < stop_dist:
            return self.rise(PUSH_GRIP)  # arrived: back off upwards
        direction = _unit(to_goal)
        yaw = wrap_gripper_yaw(math.atan2(direction[1], direction[0]))
        contact = xy - direction * (radius + m(0.012))
        offset = ee[:2] - contact
        lateral = np.linalg.norm(offset - np.dot(offset, direction) * direction)
        along = np.dot(ee[:2] - xy, direction)
        behind = lateral < m(0.025) and -(radius + m(0.06)) < along < -radius * 0.5
        if behind and ee[2] < push_z + m(0.015):
            step = min(m(0.025), np.linalg.norm(to_goal))
            return self.action_towards(np.array([*(contact + direction * step), push_z]), yaw,
                                       PUSH_GRIP)
        start = xy - direction * (radius + m(0.035))
        near_start = np.linalg.norm(ee[:2] - start)
        if near_start < m(0.015) or (behind and near_start < m(0.03)):
            return self.action_towards(np.array([*start, push_z]), yaw, PUSH_GRIP)
        if ee[2] < hover - m(0.03):
            return self.rise(PUSH_GRIP)  # up before moving round the object
        return self.action_towards(np.array([*start, hover]), yaw, PUSH_GRIP)


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v)
    return v / n if n > 1e-9 else np.array([1.0, 0.0])


def _width(obj: SceneObject) -> float:
    """The object's extent across the closed fingers (its narrow side)."""
    kind, dims = obj.kind, obj.dims
    return 2 * (min(dims[0], dims[1]) if kind == "box" else dims[0])


# -- one policy per task: world state -> action -------------------------------------------


def _pick(x: Expert) -> np.ndarray:
    return x.pick_up(x.goal.target)


def _place(x: Expert) -> np.ndarray:
    target, zone = x.goal.target, x.goal.zone
    pos = x.pose(target)[0]
    inside = bool(np.all(np.abs(pos[:2] - zone.center) < zone.half - x.m(0.01)))
    done = inside and pos[2] < target.half_height + x.m(0.01)
    return x.put_down(target, zone.center, target.half_height + x.m(0.015), done)


def _stack(x: Expert) -> np.ndarray:
    top, base = x.goal.target, x.goal.other
    base_pos = x.pose(base)[0]
    top_pos = x.pose(top)[0]
    m = x.m
    z = base_pos[2] + base.half_height + max(top.half_height, m(0.016)) + m(0.012)
    height = top_pos[2] - base_pos[2]
    done = (np.linalg.norm(top_pos[:2] - base_pos[:2]) < m(0.02)
            and abs(height - (top.half_height + base.half_height)) < m(0.01))
    return x.put_down(top, base_pos[:2], z, done)


def _push_to(x: Expert) -> np.ndarray:
    return x.push(x.goal.target, x.goal.location, stop_dist=x.m(0.02))


def _push_next(x: Expert) -> np.ndarray:
    # Aim for the side of the neighbour facing the pushed object.
    anchor = x.pose(x.goal.other)[0][:2]
    here = x.pose(x.goal.target)[0][:2]
    return x.push(x.goal.target, anchor - x.m(0.05) * _unit(anchor - here), stop_dist=x.m(0.012))


def _touch(x: Expert) -> np.ndarray:
    obj = x.goal.target
    ee, yaw = x.ee()
    pos = x.pose(obj)[0]
    m, hover = x.m, x.ws.hover_z
    if np.linalg.norm(ee[:2] - pos[:2]) > m(ABOVE_XY) and ee[2] < hover - m(0.03):
        return x.rise(CLOSED)
    if np.linalg.norm(ee[:2] - pos[:2]) > m(ABOVE_XY):
        return x.action_towards(pos * [1, 1, 0] + [0, 0, hover], yaw, CLOSED)
    return x.action_towards(pos * [1, 1, 0] + [0, 0, pos[2] + obj.half_height - m(0.01)], yaw,
                            CLOSED)


POLICIES = {
    "pick": _pick,
    "place": _place,
    "stack": _stack,
    "push_to": _push_to,
    "push_next": _push_next,
    "touch": _touch,
}


def make_expert(env, noise: float = 0.0, seed: int | None = None) -> Expert:
    return Expert(env, noise=noise, seed=seed)

"""Scripted experts: IK waypoints per task, driven by the simulator's object poses.

An expert reads where things are (that is what a script may know) but acts only
through the env's normal action: normalised end-effector deltas and a gripper
command, the same channel a learned policy uses. Each plan is a generator that
yields one action per control step and re-reads object poses every step, so it
corrects for slips, pushes that drift, and injected noise.

Noise injection ("perturbed execution, clean labels"): `perturb(action)` adds
Gaussian noise to the action that is executed, while the dataset records the clean
action the expert wanted; the data then shows recoveries from small errors.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np

from sims.robots import wrap_gripper_yaw
from sims.scene import SHAPES, SceneObject, object_pose

OPEN, CLOSED, PUSH_GRIP = 1.0, -1.0, -0.25
HOVER_Z = 0.12
CARRY_Z = 0.14
REACH_TOL = 0.006  # metres
SPEED = 0.8  # fraction of the robot's largest step the expert uses


class Expert:
    """`act()` returns the clean action for the env's current state."""

    def __init__(self, env, noise: float = 0.0, seed: int | None = None) -> None:
        self.env = env.unwrapped
        self.noise = float(noise)
        self.rng = np.random.default_rng(seed)
        self._plan: Iterator[np.ndarray] | None = None
        self._episode = None

    # -- public -------------------------------------------------------------------------
    def act(self) -> np.ndarray:
        if self._episode is not self.env.goal:  # a new episode: start a fresh plan
            self._episode = self.env.goal
            self._plan = PLANS[self.env.task_name](self)
        return next(self._plan).astype(np.float32)

    def perturb(self, action: np.ndarray) -> np.ndarray:
        """The action to execute: clean action plus noise on the motion dimensions."""
        if self.noise <= 0:
            return action
        noisy = action.copy()
        noisy[:4] += self.rng.normal(0.0, self.noise, size=4)
        return np.clip(noisy, -1.0, 1.0).astype(np.float32)

    # -- building blocks ----------------------------------------------------------------
    @property
    def goal(self):
        return self.env.goal

    def pose(self, obj: SceneObject) -> tuple[np.ndarray, float]:
        return object_pose(self.env.p, obj)

    def ee(self) -> tuple[np.ndarray, float]:
        return self.env.robot.ee_pose()

    def action_towards(self, pos: np.ndarray, yaw: float, grip: float) -> np.ndarray:
        spec = self.env.spec_robot
        ee, ee_yaw = self.ee()
        delta = (pos - ee) / spec.max_step_m
        norm = np.linalg.norm(delta)
        if norm > SPEED:
            delta *= SPEED / norm
        dyaw = wrap_gripper_yaw(yaw - ee_yaw) / spec.max_step_yaw_rad
        return np.array([*delta, np.clip(dyaw, -SPEED, SPEED), grip], dtype=np.float32)

    def goto(
        self, target: Callable[[], tuple[np.ndarray, float]], grip: float,
        tol: float = REACH_TOL, max_steps: int = 40,
    ) -> Iterator[np.ndarray]:
        """Move until the end effector is within `tol` of a (possibly moving) target."""
        for _ in range(max_steps):
            pos, yaw = target()
            ee, ee_yaw = self.ee()
            if np.linalg.norm(pos - ee) < tol and abs(wrap_gripper_yaw(yaw - ee_yaw)) < 0.05:
                return
            yield self.action_towards(pos, yaw, grip)

    def wait(self, steps: int, grip: float) -> Iterator[np.ndarray]:
        for _ in range(steps):
            pos, yaw = self.ee()
            yield self.action_towards(pos, yaw, grip)

    def hold_forever(self, grip: float) -> Iterator[np.ndarray]:
        while True:
            yield from self.wait(1, grip)

    def grasp_yaw(self, obj: SceneObject) -> float:
        """Yaw that closes the fingers across the object's narrow side, nearest the current yaw."""
        _, obj_yaw = self.pose(obj)
        kind, dims = SHAPES[obj.shape]
        if kind != "box":
            return self.ee()[1]
        # With yaw = object yaw the fingers close along the object's y axis.
        base = obj_yaw if dims[1] <= dims[0] else obj_yaw + math.pi / 2
        if abs(dims[0] - dims[1]) < 1e-6:  # square: any quarter turn works
            current = self.ee()[1]
            base = base + round((current - base) / (math.pi / 2)) * (math.pi / 2)
        return wrap_gripper_yaw(base)

    def pick_up(self, obj: SceneObject) -> Iterator[np.ndarray]:
        yaw = self.grasp_yaw(obj)

        def above():
            return self.pose(obj)[0] * [1, 1, 0] + [0, 0, HOVER_Z], yaw

        def at():
            return self.pose(obj)[0] * [1, 1, 0] + [0, 0, max(obj.half_height, 0.016)], yaw

        yield from self.goto(above, OPEN, tol=0.02)
        yield from self.goto(at, OPEN)
        yield from self.wait(3, CLOSED)
        lift = self.ee()[0] * [1, 1, 0] + [0, 0, CARRY_Z]
        yield from self.goto(lambda: (lift, yaw), CLOSED, tol=0.02)

    def release_at(self, xy: np.ndarray, z: float) -> Iterator[np.ndarray]:
        yaw = self.ee()[1]
        yield from self.goto(lambda: (np.array([xy[0], xy[1], CARRY_Z]), yaw), CLOSED, tol=0.01)
        yield from self.goto(lambda: (np.array([xy[0], xy[1], z]), yaw), CLOSED)
        yield from self.wait(3, OPEN)
        yield from self.goto(lambda: (np.array([xy[0], xy[1], HOVER_Z]), yaw), OPEN, tol=0.02)

    def push(self, obj: SceneObject, goal_xy: Callable[[], np.ndarray], stop_dist: float,
             ) -> Iterator[np.ndarray]:
        """Push `obj` along a straight line to `goal_xy()`, re-approaching if it slips away."""
        kind, dims = SHAPES[obj.shape]
        radius = max(dims[0], dims[1]) if kind == "box" else dims[0]
        push_z = 0.018
        for _attempt in range(4):
            xy = self.pose(obj)[0][:2]
            direction = _unit(goal_xy() - xy)
            yaw = wrap_gripper_yaw(math.atan2(direction[1], direction[0]))
            start = xy - direction * (radius + 0.035)
            yield from self.goto(lambda: (np.array([*start, HOVER_Z]), yaw), PUSH_GRIP, tol=0.015)
            yield from self.goto(lambda: (np.array([*start, push_z]), yaw), PUSH_GRIP, tol=0.01)
            for _ in range(60):
                xy = self.pose(obj)[0][:2]
                to_goal = goal_xy() - xy
                if np.linalg.norm(to_goal) < stop_dist:
                    yield from self.wait(1, PUSH_GRIP)
                    up = self.ee()[0] * [1, 1, 0] + [0, 0, HOVER_Z]
                    yield from self.goto(lambda: (up, yaw), PUSH_GRIP, tol=0.02)
                    return
                direction = _unit(to_goal)
                contact = xy - direction * (radius + 0.012)
                ee = self.ee()[0][:2]
                offset = ee - contact
                lateral = offset - np.dot(offset, direction) * direction
                if np.linalg.norm(lateral) > 0.025 or np.dot(ee - xy, direction) > -radius * 0.5:
                    break  # lost the object: lift and approach again
                step = min(0.025, np.linalg.norm(to_goal))
                target_xy = contact + direction * step
                yaw = wrap_gripper_yaw(math.atan2(direction[1], direction[0]))
                yield self.action_towards(np.array([*target_xy, push_z]), yaw, PUSH_GRIP)
            up = self.ee()[0] * [1, 1, 0] + [0, 0, HOVER_Z]
            yield from self.goto(lambda: (up, yaw), PUSH_GRIP, tol=0.02)


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v)
    return v / n if n > 1e-9 else np.array([1.0, 0.0])


# -- plans per task ---------------------------------------------------------------------


def _pick_plan(x: Expert):
    yield from x.pick_up(x.goal.target)
    yield from x.hold_forever(CLOSED)


def _place_plan(x: Expert):
    yield from x.pick_up(x.goal.target)
    yield from x.release_at(x.goal.zone.center, x.goal.target.half_height + 0.015)
    yield from x.hold_forever(OPEN)


def _stack_plan(x: Expert):
    top, base = x.goal.target, x.goal.other
    yield from x.pick_up(top)
    base_pos = x.pose(base)[0]
    z = base_pos[2] + base.half_height + max(top.half_height, 0.016) + 0.012
    yield from x.release_at(base_pos[:2], z)
    yield from x.hold_forever(OPEN)


def _push_to_plan(x: Expert):
    yield from x.push(x.goal.target, lambda: x.goal.location, stop_dist=0.02)
    yield from x.hold_forever(PUSH_GRIP)


def _push_next_plan(x: Expert):
    other = x.goal.other

    def beside():
        # Aim for the side of the neighbour facing the pushed object.
        anchor = x.pose(other)[0][:2]
        here = x.pose(x.goal.target)[0][:2]
        return anchor - 0.05 * _unit(anchor - here)

    yield from x.push(x.goal.target, beside, stop_dist=0.012)
    yield from x.hold_forever(PUSH_GRIP)


def _touch_plan(x: Expert):
    obj = x.goal.target
    yaw = x.ee()[1]

    def above():
        return x.pose(obj)[0] * [1, 1, 0] + [0, 0, HOVER_Z], yaw

    def on_top():
        pos = x.pose(obj)[0]
        return pos * [1, 1, 0] + [0, 0, pos[2] + obj.half_height - 0.01], yaw

    yield from x.goto(above, CLOSED, tol=0.02)
    yield from x.goto(on_top, CLOSED)
    yield from x.hold_forever(CLOSED)


PLANS = {
    "pick": _pick_plan,
    "place": _place_plan,
    "stack": _stack_plan,
    "push_to": _push_to_plan,
    "push_next": _push_next_plan,
    "touch": _touch_plan,
}


def make_expert(env, noise: float = 0.0, seed: int | None = None) -> Expert:
    return Expert(env, noise=noise, seed=seed)

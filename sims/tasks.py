"""The language-conditioned task suite: scene sampling, instructions and success tests.

A task samples a layout from the episode's generator and its split rules, spawns it,
names the goal in words, and judges success from the simulator state. Scripted
experts for each task live in `sims/experts.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sims import language
from sims.scene import (
    SceneObject,
    Zone,
    object_pose,
    spawn_object,
    spawn_zone,
)
from sims.splits import EpisodeRules
from sims.workspace import PANDA_WORKSPACE, ZONE_HALF

MIN_OBJECT_GAP = 0.085  # centre-to-centre, metres


@dataclass
class Goal:
    """What the instruction asks for; the expert and the success test both read it."""

    instruction: str
    target: SceneObject
    other: SceneObject | None = None  # stack base or push-next neighbour
    zone: Zone | None = None
    location: np.ndarray | None = None
    location_name: str = ""
    objects: list[SceneObject] = field(default_factory=list)
    zones: list[Zone] = field(default_factory=list)
    # The board's named locations (the arm's workspace); None: the Panda's board.
    locations: dict[str, np.ndarray] | None = None

    def board_location(self, name: str) -> np.ndarray:
        """A named location of this scene's board, (x, y) metres."""
        return (self.locations or PANDA_WORKSPACE.locations)[name].copy()


def _pick_distinct(rng: np.random.Generator, options: tuple[str, ...], k: int, exclude=()) -> list:
    pool = [o for o in options if o not in exclude]
    return [pool[i] for i in rng.choice(len(pool), size=k, replace=False)]


def _sample_points(rng, n, low, high, keep_out=(), gap=MIN_OBJECT_GAP):
    """n points in the box low..high at least `gap` apart and clear of `keep_out` (point,
    radius) pairs."""
    for _ in range(1000):
        points: list[np.ndarray] = []
        for _ in range(200):
            if len(points) == n:
                return points
            q = rng.uniform(low, high)
            if all(np.linalg.norm(q - o) >= gap for o in points) and all(
                np.linalg.norm(q - c) >= r for c, r in keep_out
            ):
                points.append(q)
    raise RuntimeError("could not place the objects; the board is too crowded")


def _segment_distance(q: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    ab = b - a
    t = np.clip(np.dot(q - a, ab) / max(np.dot(ab, ab), 1e-9), 0.0, 1.0)
    return float(np.linalg.norm(q - (a + t * ab)))


class Task:
    """Base: spawn the target plus distractors, then let subclasses add their goal."""

    name: str = ""
    max_steps: int = 80
    n_distractors: tuple[int, int] = (2, 4)  # inclusive range

    def __init__(self, p, robot) -> None:
        self.p, self.robot = p, robot
        self.ws = robot.workspace  # the arm's board and size of things

    def _points(self, rng, n, keep_out=(), gap=MIN_OBJECT_GAP, inset=0.0):
        """n board points at least `gap` (Panda metres) apart and clear of `keep_out`
        ((point, radius in metres) pairs), `inset` metres in from the board's edges."""
        return _sample_points(rng, n, self.ws.low + inset, self.ws.high - inset, keep_out,
                              self.ws.m(gap))

    def _clear_of_path(self, rng, n, start, goal_xy, behind):
        """n points clear of the push path from `behind` to `goal_xy` and of `start`."""
        points, gap = [], self.ws.m(MIN_OBJECT_GAP)
        while len(points) < n:
            q = self._points(rng, 1, keep_out=[(start, gap)] + [(o, gap) for o in points])[0]
            if _segment_distance(q, behind, goal_xy) > self.ws.m(0.09):
                points.append(q)
        return points

    def _on_board(self, xy: np.ndarray, margin: float) -> bool:
        """`xy` lies within `margin` (Panda metres) outside the board or inside it."""
        m = self.ws.m(margin)
        return bool(np.all(xy > self.ws.low - m) and np.all(xy < self.ws.high + m))

    def _objects(self, rng, rules: EpisodeRules, n_named: int) -> list[SceneObject]:
        """Target (first), named companions, then distractors; colours named in the
        instruction are unique in the scene unless a shape disambiguates."""
        scale = self.ws.scale
        target = SceneObject(
            str(rng.choice(rules.target_colors)), str(rng.choice(rules.target_shapes)),
            scale=scale,
        )
        named = [target]
        for color in _pick_distinct(rng, rules.other_colors, n_named - 1, exclude=(target.color,)):
            named.append(SceneObject(color, str(rng.choice(rules.other_shapes[:2])),
                                     scale=scale))
        n_extra = int(rng.integers(self.n_distractors[0], self.n_distractors[1] + 1))
        extras = []
        for _ in range(n_extra):
            color = str(rng.choice(rules.other_colors))
            shape = str(rng.choice(rules.other_shapes))
            # A distractor may share a named object's colour only with a different shape.
            clash = [o for o in named + extras if o.color == color]
            if any(o.shape == shape for o in clash) or (clash and rng.random() < 0.6):
                continue
            extras.append(SceneObject(color, shape, scale=scale))
        return named + extras

    def _one_object_goal(self, rng, rules: EpisodeRules) -> Goal:
        """A scene whose goal names one object (pick, touch): the object and distractors
        placed apart, the instruction in the task's words."""
        objects = self._objects(rng, rules, 1)
        self._spawn(rng, objects, self._points(rng, len(objects)))
        phrase = language.describe(objects[0], objects, rng)
        text = language.instruction(self.name, rng, rules.held_out_phrasing, obj=phrase)
        return Goal(text, objects[0], objects=objects)

    def _spawn(self, rng, objects: list[SceneObject], points: list[np.ndarray]) -> None:
        for obj, xy in zip(objects, points):
            spawn_object(self.p, obj, xy, float(rng.uniform(-np.pi / 4, np.pi / 4)))

    def setup(self, rng: np.random.Generator, rules: EpisodeRules) -> Goal:
        raise NotImplementedError

    def success(self, goal: Goal) -> bool:
        raise NotImplementedError

    # -- helpers shared by success tests ---------------------------------------------
    def pos(self, obj: SceneObject) -> np.ndarray:
        return object_pose(self.p, obj)[0]

    def resting(self, obj: SceneObject) -> bool:
        """On the table (not lifted, not stacked) and let go of."""
        return (self.pos(obj)[2] < obj.half_height + self.ws.m(0.01)
                and not self.robot.touches(obj.body))


class PickTask(Task):
    name = "pick"
    max_steps = 60

    def setup(self, rng, rules):
        return self._one_object_goal(rng, rules)

    def success(self, goal):
        lifted = self.pos(goal.target)[2] > goal.target.half_height + self.ws.m(0.06)
        return lifted and self.robot.touches(goal.target.body)


class PlaceTask(Task):
    name = "place"
    max_steps = 100
    n_distractors = (1, 2)

    def setup(self, rng, rules):
        objects = self._objects(rng, rules, 1)
        zone_colors = _pick_distinct(rng, rules.other_colors, 2, exclude=(objects[0].color,))
        half = self.ws.zone_half
        centers = self._points(rng, 2, gap=2.6 * ZONE_HALF, inset=half)
        zones = [Zone(c, xy, half=half) for c, xy in zip(zone_colors, centers)]
        keep_out = [(z.center, half * 1.5 + self.ws.m(0.03)) for z in zones]
        self._spawn(rng, objects, self._points(rng, len(objects), keep_out))
        for zone in zones:
            spawn_zone(self.p, zone)
        phrase = language.describe(objects[0], objects, rng)
        text = language.instruction(self.name, rng, rules.held_out_phrasing,
                                    obj=phrase, target=zones[0].color)
        return Goal(text, objects[0], zone=zones[0], objects=objects, zones=zones)

    def success(self, goal):
        offset = np.abs(self.pos(goal.target)[:2] - goal.zone.center)
        return bool(np.all(offset < goal.zone.half)) and self.resting(goal.target)


class StackTask(Task):
    name = "stack"
    max_steps = 100
    n_distractors = (1, 3)

    def setup(self, rng, rules):
        objects = self._objects(rng, rules, 2)
        self._spawn(rng, objects, self._points(rng, len(objects), gap=0.095))
        top, base = objects[0], objects[1]
        text = language.instruction(
            self.name, rng, rules.held_out_phrasing,
            obj=language.describe(top, objects, rng), target=language.describe(base, objects, rng),
        )
        return Goal(text, top, other=base, objects=objects)

    def success(self, goal):
        top, base = self.pos(goal.target), self.pos(goal.other)
        aligned = np.linalg.norm(top[:2] - base[:2]) < self.ws.m(0.03)
        height = top[2] - base[2]
        expected = goal.target.half_height + goal.other.half_height
        on_top = abs(height - expected) < self.ws.m(0.012)
        return bool(aligned and on_top and self.resting(goal.other)
                    and not self.robot.touches(goal.target.body))


class PushToTask(Task):
    name = "push_to"
    max_steps = 100
    n_distractors = (1, 3)
    tolerance = 0.05

    def setup(self, rng, rules):
        objects = self._objects(rng, rules, 1)
        locations = self.ws.locations
        names = list(locations)
        for _ in range(100):
            name = names[rng.integers(len(names))]
            goal_xy = locations[name]
            start = self._points(rng, 1, keep_out=[(goal_xy, self.ws.m(0.12))])[0]
            behind = start - self.ws.m(0.08) * (goal_xy - start) / np.linalg.norm(goal_xy - start)
            if self._on_board(behind, 0.05):
                break
        # Distractors stay clear of the push path, so the expert's line is free.
        rest = self._clear_of_path(rng, len(objects) - 1, start, goal_xy, behind)
        self._spawn(rng, objects, [start, *rest])
        text = language.instruction(
            self.name, rng, rules.held_out_phrasing,
            obj=language.describe(objects[0], objects, rng),
            loc=language.location_phrase(name, rng),
        )
        return Goal(text, objects[0], location=goal_xy, location_name=name, objects=objects)

    def success(self, goal):
        close = (np.linalg.norm(self.pos(goal.target)[:2] - goal.location)
                 < self.ws.m(self.tolerance))
        return bool(close) and self.resting(goal.target)


class PushNextTask(Task):
    name = "push_next"
    max_steps = 100
    n_distractors = (1, 2)
    near = 0.075  # centre distance counted as "next to"

    def setup(self, rng, rules):
        objects = self._objects(rng, rules, 2)
        for _ in range(100):
            start, anchor = self._points(rng, 2, gap=0.15)
            direction = (anchor - start) / np.linalg.norm(anchor - start)
            goal_xy = anchor - self.ws.m(0.055) * direction
            behind = start - self.ws.m(0.08) * direction
            if self._on_board(behind, 0.05):
                break
        rest = self._clear_of_path(rng, len(objects) - 2, start, anchor, behind)
        rest = [q for q in rest if np.linalg.norm(q - anchor) > self.ws.m(MIN_OBJECT_GAP)]
        objects = objects[: 2 + len(rest)]
        self._spawn(rng, objects, [start, anchor, *rest])
        text = language.instruction(
            self.name, rng, rules.held_out_phrasing,
            obj=language.describe(objects[0], objects, rng),
            target=language.describe(objects[1], objects, rng),
        )
        return Goal(text, objects[0], other=objects[1], location=goal_xy, objects=objects)

    def success(self, goal):
        gap = np.linalg.norm(self.pos(goal.target)[:2] - self.pos(goal.other)[:2])
        return (bool(gap < self.ws.m(self.near)) and self.resting(goal.target)
                and self.resting(goal.other))


class TouchTask(Task):
    name = "touch"
    max_steps = 60

    def setup(self, rng, rules):
        return self._one_object_goal(rng, rules)

    def success(self, goal):
        return self.robot.touches(goal.target.body)


TASKS: dict[str, type[Task]] = {
    t.name: t for t in (PickTask, PlaceTask, StackTask, PushToTask, PushNextTask, TouchTask)
}

"""Captioned synthetic scenes for the grounding pretraining (`vla pretrain`): no actions,
just pictures, sentences, and where in the picture the sentence's things are.

A scene is the task suite's table and robot (arm in a random pose) with 2-7 things of
random colours (sims/vocabulary.py: XKCD and CSS4 names), shapes and sizes, seen by the
front camera from a jittered pose, under jittered light, on a table of jittered colour.
Each scene gets CAPTIONS sentences in the task suite's *training* phrasings (never the
held-out ones, never the held-out task) or as a bare "the <thing>"; a sentence names one
or two referents:

    referent 0: the object ("pick up the <obj>", "put the <obj> in the <zone> zone")
    referent 1: the second thing (the zone, the base, a board location), or the object
                again when the sentence names one thing

A referent is a segmentation slot (an object), a pixel (a board location), or ABSENT:
about a quarter of the sentences name something the scene lacks, so the model learns to
say "not here" (flat heat maps) as well as "here". Half of those name a colour no thing
has ("the ultramarine cube"), half an everyday thing no scene contains
(sims/vocabulary.py ABSENT_NOUNS: "the cup", "the red cup" beside a red cube), so that
both the colour and the noun must match.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sims.camera import CameraConfig
from sims.language import LOCATION_SYNONYMS, TEMPLATES
from sims.scene import BOARD_HIGH, BOARD_LOCATIONS, BOARD_LOW, TABLE_RGB, build_table
from sims.splits import HELD_OUT_COMBOS, HELD_OUT_TASK
from sims.vocabulary import (
    ABSENT_NOUNS,
    GENERIC_NOUNS,
    SHAPE_KINDS,
    ShapeKind,
    color_vocabulary,
)

GENERATOR = 3  # bump when the same seed would draw other scenes (scenes.json records it)
CAPTIONS = 4  # sentences per scene
ABSENT_SHARE = 0.25  # sentences naming something the scene lacks
ABSENT_THING_SHARE = 0.5  # of those: an absent thing rather than an absent colour
# Referent codes besides a slot index (>= 0):
NONE, ABSENT, PIXEL = -1, -2, -3
ROBOT_SLOT = -2  # segmentation value of the arm (background is -1)
MIN_COLOR_GAP = 0.3  # RGB distance between any two things of a scene, and to the table
# Only training phrasings of training tasks: pretraining must not leak held-out language.
PHRASINGS: dict[str, tuple[str, ...]] = {
    task: train for task, (train, _held) in TEMPLATES.items() if task != HELD_OUT_TASK
}


@dataclass
class Thing:
    color: str
    rgb: tuple[float, float, float]
    kind: ShapeKind
    dims: tuple[float, ...]
    xy: np.ndarray
    body: int = -1


@dataclass
class Caption:
    text: str
    referents: tuple[int, int]  # slot, ABSENT or PIXEL for referent 0 and 1
    pixel: tuple[float, float]  # (u, v) in pixels for a PIXEL referent, else (nan, nan)


class SceneMaker:
    """Renders captioned scenes, one PyBullet client per maker (one per worker)."""

    def __init__(self, image_size: int = 128) -> None:
        from sims.env import QuietBulletClient
        from sims.robots import PandaArm

        self.p = QuietBulletClient()
        self.size = image_size
        self.colors = color_vocabulary()
        self.names = list(self.colors)
        self.rgb = np.array([self.colors[n] for n in self.names])  # (C, 3)
        self.p.resetSimulation()
        build_table(self.p)
        self.robot = PandaArm(self.p)
        self.robot.reset()
        self.camera = CameraConfig("front", width=image_size, height=image_size)
        self._bodies: list[int] = []

    def close(self) -> None:
        self.p.disconnect()

    def make(self, rng: np.random.Generator):
        """One scene: image (H, W, 3) uint8, segmentation (H, W) int8 (slot, -1 table,
        -2 arm), and CAPTIONS captions."""
        things = self._place_things(rng)
        self._pose_robot(rng)
        view, proj = self._camera_matrices(rng)
        image, seg = self._render(view, proj, things, rng)
        visible = [i for i in range(len(things)) if (seg == i).sum() >= 4]
        captions = [self._caption(things, visible, view, proj, rng) for _ in range(CAPTIONS)]
        return image, seg, captions

    # -- the world ----------------------------------------------------------------------------
    def _place_things(self, rng: np.random.Generator) -> list[Thing]:
        p = self.p
        for body in self._bodies:
            p.removeBody(body)
        self._bodies = []
        n_zones = int(rng.integers(0, 3))
        n_objects = int(rng.integers(2, 6))
        table = np.array(TABLE_RGB) / 255
        chosen: list[np.ndarray] = [table]
        things: list[Thing] = []
        flat = [k for k in SHAPE_KINDS if k.flat]
        solid = [k for k in SHAPE_KINDS if not k.flat]
        kinds = [flat[0]] * n_zones + [solid[int(rng.integers(len(solid)))]
                                       for _ in range(n_objects)]
        low, high = BOARD_LOW - 0.03, BOARD_HIGH + 0.03
        for kind in kinds:
            name = self._distinct_color(chosen, rng)
            if name is None:
                continue
            rgb = self.colors[name]
            gap = 0.11 if kind.flat else 0.065
            for _ in range(30):  # rejection sampling of a free spot
                xy = rng.uniform(low, high)
                if all(np.linalg.norm(xy - t.xy) >= gap for t in things):
                    break
            else:
                continue
            chosen.append(np.array(rgb))
            thing = Thing(name, rgb, kind, kind.sample_dims(rng), xy)
            thing.body = self._spawn(thing, float(rng.uniform(-np.pi, np.pi)))
            self._bodies.append(thing.body)
            things.append(thing)
        return things

    def _distinct_color(self, chosen: list[np.ndarray], rng: np.random.Generator):
        for _ in range(50):
            i = int(rng.integers(len(self.names)))
            if all(np.linalg.norm(self.rgb[i] - c) >= MIN_COLOR_GAP for c in chosen):
                return self.names[i]
        return None

    def _spawn(self, thing: Thing, yaw: float) -> int:
        p, d = self.p, thing.dims
        rgba = [*thing.rgb, 1.0]
        prim = thing.kind.primitive
        if prim == "box":
            vis = p.createVisualShape(p.GEOM_BOX, halfExtents=d, rgbaColor=rgba)
            z = d[2]
        elif prim == "sphere":
            vis = p.createVisualShape(p.GEOM_SPHERE, radius=d[0], rgbaColor=rgba)
            z = d[0]
        elif prim == "capsule":
            vis = p.createVisualShape(p.GEOM_CAPSULE, radius=d[0], length=2 * d[1],
                                      rgbaColor=rgba)
            z = d[0] + d[1]
        else:
            vis = p.createVisualShape(p.GEOM_CYLINDER, radius=d[0], length=2 * d[1],
                                      rgbaColor=rgba)
            z = d[1]
        orn = p.getQuaternionFromEuler([0, 0, yaw])
        return p.createMultiBody(0, -1, vis, basePosition=[*thing.xy, z + 1e-4],
                                 baseOrientation=orn)

    def _pose_robot(self, rng: np.random.Generator) -> None:
        """The arm somewhere over the table (it occludes and distracts, as in episodes)."""
        robot, p = self.robot, self.p
        for j, q in zip(robot.arm_joints, robot.home_joints):
            p.resetJointState(robot.body, j, q)
        target = [rng.uniform(0.3, 0.7), rng.uniform(-0.25, 0.25), rng.uniform(0.06, 0.35)]
        yaw = float(rng.uniform(-np.pi / 2, np.pi / 2))
        joints = p.calculateInverseKinematics(
            robot.body, robot.ee_link, target, p.getQuaternionFromEuler([np.pi, 0, yaw]),
            restPoses=list(robot.home_joints), maxNumIterations=20)
        for j, q in zip(robot.arm_joints, joints):
            p.resetJointState(robot.body, j, q)
        for j in robot.finger_joints:
            p.resetJointState(robot.body, j, float(rng.uniform(0.0, 0.04)))

    def _camera_matrices(self, rng: np.random.Generator):
        c = self.camera
        eye = np.array(c.eye) + rng.normal(0, 0.025, 3)
        target = np.array(c.target) + rng.normal(0, 0.015, 3)
        fov = c.fov_deg + rng.uniform(-2.0, 2.0)
        view = self.p.computeViewMatrix(eye.tolist(), target.tolist(), list(c.up))
        proj = self.p.computeProjectionMatrixFOV(fov, 1.0, c.near, c.far)
        return view, proj

    def _render(self, view, proj, things: list[Thing], rng: np.random.Generator):
        p, s = self.p, self.size
        light = {}
        if rng.random() < 0.5:  # the episodes' default light half of the time
            d = rng.normal(0, 1, 3)
            d[2] = abs(d[2]) + 1.0
            light = {"lightDirection": d.tolist(),
                     "lightAmbientCoeff": float(rng.uniform(0.5, 0.8)),
                     "lightDiffuseCoeff": float(rng.uniform(0.3, 0.6)),
                     "lightSpecularCoeff": float(rng.uniform(0.0, 0.2))}
        _, _, rgba, _, seg = p.getCameraImage(s, s, viewMatrix=view, projectionMatrix=proj,
                                              renderer=p.ER_TINY_RENDERER, shadow=0, **light)
        image = np.array(rgba, dtype=np.uint8).reshape(s, s, 4)[:, :, :3].copy()
        seg = np.asarray(seg).reshape(s, s)
        table = np.clip(np.array(TABLE_RGB) + rng.normal(0, 14, 3), 0, 255)
        image[seg < 0] = table.astype(np.uint8)
        slots = np.full((s, s), -1, dtype=np.int8)
        slots[seg == self.robot.body] = ROBOT_SLOT
        for i, t in enumerate(things):
            slots[seg == t.body] = i
        return image, slots

    # -- the words ----------------------------------------------------------------------------
    def _caption(self, things: list[Thing], visible: list[int], view, proj,
                 rng: np.random.Generator) -> Caption:
        objects = [i for i in visible if not things[i].kind.flat]
        zones = [i for i in visible if things[i].kind.flat]
        absent = rng.random() < ABSENT_SHARE
        tasks = ["bare", "pick", "touch", "push_to"]
        if zones:
            tasks.append("place")
        if len(objects) >= 2:
            tasks.append("stack")
        task = tasks[int(rng.integers(len(tasks)))] if objects else "bare_zone"
        nan = (float("nan"), float("nan"))
        if task == "bare_zone" and not zones:
            return Caption("the " + self._absent_name(things, rng) + " thing", (ABSENT, ABSENT),
                           nan)
        if task == "bare_zone":
            obj = zones[int(rng.integers(len(zones)))]
            return Caption(f"the {self._describe(things[obj], rng)}", (obj, obj), nan)
        obj = objects[int(rng.integers(len(objects)))]
        obj_words = self._describe(things[obj], rng)
        if absent:  # which referent is missing: the object, or the second thing
            missing = 0 if task in ("bare", "pick", "touch", "push_to") or rng.random() < 0.5 \
                else 1
        else:
            missing = -1
        if missing == 0:
            obj, obj_words = ABSENT, self._absent_description(things, rng)
        if HELD_OUT_COMBOS.get(task) in obj_words.split():
            task = "bare"  # split L2's held-out colour-task pairs stay out of task phrasings
        if task == "bare":
            return Caption(f"the {obj_words}", (obj, obj), nan)
        template = PHRASINGS[task][int(rng.integers(len(PHRASINGS[task])))]
        if task in ("pick", "touch"):
            return Caption(template.format(obj=obj_words), (obj, obj), nan)
        if task == "push_to":
            loc = list(BOARD_LOCATIONS)[int(rng.integers(len(BOARD_LOCATIONS)))]
            words = LOCATION_SYNONYMS[loc][int(rng.integers(len(LOCATION_SYNONYMS[loc])))]
            xyz = [*BOARD_LOCATIONS[loc], 0.0]
            return Caption(template.format(obj=obj_words, loc=words), (obj, PIXEL),
                           project_point(xyz, view, proj, self.size))
        if task == "place":
            second = zones[int(rng.integers(len(zones)))]
            target_words = things[second].color
        else:  # stack: another object
            others = [i for i in objects if i != obj]
            second = others[int(rng.integers(len(others)))]
            target_words = self._describe(things[second], rng)
        if missing == 1:
            second = ABSENT
            target_words = (self._absent_description(things, rng) if task == "stack"
                            else self._absent_name(things, rng))  # "the <colour> zone"
        return Caption(template.format(obj=obj_words, target=target_words), (obj, second), nan)

    def _describe(self, thing: Thing, rng: np.random.Generator) -> str:
        return f"{thing.color} {self._noun(thing.kind, rng)}"

    def _noun(self, kind: ShapeKind | None, rng: np.random.Generator) -> str:
        if kind is not None and kind.flat:
            return kind.words[int(rng.integers(len(kind.words)))]
        if kind is None or rng.random() < 0.3:
            return GENERIC_NOUNS[int(rng.integers(len(GENERIC_NOUNS)))]
        return kind.words[int(rng.integers(len(kind.words)))]

    def _absent_name(self, things: list[Thing], rng: np.random.Generator) -> str:
        """A colour name far from every colour in the scene."""
        present = [np.array(t.rgb) for t in things]
        return self._distinct_color(present, rng) or "ultramarine"

    def _absent_description(self, things: list[Thing], rng: np.random.Generator) -> str:
        """An object the scene lacks: a colour no thing has on a known shape word, or a
        thing no scene contains, bare or in the colour of a thing that is there."""
        if rng.random() < ABSENT_THING_SHARE:
            noun = ABSENT_NOUNS[int(rng.integers(len(ABSENT_NOUNS)))]
            if rng.random() < 0.5:
                return noun
            return f"{things[int(rng.integers(len(things)))].color} {noun}"
        solid = [k for k in SHAPE_KINDS if not k.flat]
        kind = solid[int(rng.integers(len(solid)))]
        return f"{self._absent_name(things, rng)} {self._noun(kind, rng)}"


def project_point(xyz, view, proj, size: int) -> tuple[float, float]:
    """World point -> (u, v) pixel of a size x size image (PyBullet matrices are
    column-major)."""
    v = np.array(view).reshape(4, 4).T
    pr = np.array(proj).reshape(4, 4).T
    clip = pr @ v @ np.array([*xyz, 1.0])
    ndc = clip[:3] / clip[3]
    return float((ndc[0] + 1) / 2 * size), float((1 - ndc[1]) / 2 * size)

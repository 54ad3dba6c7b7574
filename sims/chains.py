"""Chains of instructions in one scene (as CALVIN evaluates them): five steps of the five
training tasks, each carried out from the state the step before left.

A chain is a pure function of its seed: the scene is a place scene of the split (two or
three objects, two zones) at that seed of the stream, and the steps are the five training
tasks in an order where each is possible from where the last leaves things: a pick is
followed by placing or stacking the block in the hand; stack bases and pushed blocks
are on the table. Instructions use the split's own phrasings (L1 training templates, L2
held-out ones) with the suite's words for each thing (`sims/language.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sims import language
from sims.tasks import Goal
from sims.workspace import LOCATION_NAMES

TASK_ORDER = ("pick", "place", "stack", "push_to", "touch")
CHAIN_LENGTH = 5
SCENE_TASK = "place"  # the scenes with zones, and room for the other tasks
CHAIN_SEED = 7_000_000  # chains' own rng stream, apart from the scene's seed
NEXT_SCENE = 1_000_003  # a chain whose scene holds one object moves on by this many seeds


@dataclass
class Step:
    task: str
    goal: Goal  # the step's goal among the scene's objects and zones


def sample_chain(env, seed: int) -> list[Step]:
    """Reset `env` (a place env of the wanted split and stream) to scene `seed` (or, when
    that scene holds a single object, the first of `seed + k * NEXT_SCENE` that holds two)
    and draw its chain: every training task once, in an order each step can follow."""
    env.reset(seed=seed)
    scene_seed = seed
    while len(env.unwrapped.goal.objects) < 2:  # a stack needs two: the next scene
        scene_seed += NEXT_SCENE
        env.reset(seed=scene_seed)
    scene = env.unwrapped.goal
    rng = np.random.default_rng(CHAIN_SEED + seed)
    held_out = env.unwrapped.current_split == "L2"  # L2: the held-out phrasings
    while True:
        order = [str(t) for t in rng.permutation(TASK_ORDER)]
        if all(order[i + 1] in ("place", "stack") for i, t in enumerate(order[:-1])
               if t == "pick"):
            break
    steps, held = [], None  # held: the object the last step left in the hand
    for task in order:
        target = held if held is not None else scene.objects[int(rng.integers(
            len(scene.objects)))]
        steps.append(Step(task, _goal(task, target, scene, rng, held_out)))
        held = target if task == "pick" else None
    return steps


def _goal(task: str, target, scene: Goal, rng: np.random.Generator, held_out: bool) -> Goal:
    objects, zones = scene.objects, scene.zones
    phrase = language.describe(target, objects, rng)
    fields: dict = {"obj": phrase}
    other = zone = location = None
    name = ""
    if task == "stack":
        other = [o for o in objects if o is not target][int(rng.integers(len(objects) - 1))]
        fields["target"] = language.describe(other, objects, rng)
    elif task == "place":
        zone = zones[int(rng.integers(len(zones)))]
        fields["target"] = zone.color
    elif task == "push_to":
        name = str(rng.choice(list(LOCATION_NAMES)))
        location = scene.board_location(name)
        fields["loc"] = language.location_phrase(name, rng)
    text = language.instruction(task, rng, held_out, **fields)
    return Goal(text, target, other=other, zone=zone, location=location, location_name=name,
                objects=objects, zones=zones, locations=scene.locations)


def run_chain(env, steps: list[Step], act, on_step=None, on_obs=None) -> list[bool]:
    """Carry out `steps` in `env` (already at the chain's scene) with `act(obs) ->
    actions (K, A)`, each step within its task's step budget and judged by its task's own
    success test; stops at the first step not done. Returns each run step's success.
    `on_step(step, success, used)` follows each step; `on_obs(obs, position)` sees every
    observation (position 1..5), for a video."""
    from sims.tasks import TASKS

    base, done = env.unwrapped, []
    for position, step in enumerate(steps, start=1):
        obs = base.set_goal(step.task, step.goal)
        if on_obs is not None:
            on_obs(obs, position)
        success, used = False, 0
        while not success and used < TASKS[step.task].max_steps:
            for action in act(obs):
                obs, _, success, _, _ = base.step(action)
                used += 1
                if on_obs is not None:
                    on_obs(obs, position)
                if success or used >= TASKS[step.task].max_steps:
                    break
        done.append(bool(success))
        if on_step is not None:
            on_step(step, success, used)
        if not success:
            break
    return done

"""Generalisation splits (after VIMA-Bench's levels) and the seed streams behind them.

- L1: new placements of training colours, shapes and phrasings.
- L2: held-out colour-task combinations or held-out phrasings (half of the episodes each).
- L3: unseen colours (orange, purple, pink, white) and the unseen shape "bar".
- L4: the held-out task (`HELD_OUT_TASK`), never in the default training mix.

Episodes come from three random streams (modes), each seeded with (seed, split, mode),
so no stream repeats another's episodes, whatever seed numbers they use:

- "train": demonstrations (`vla collect`, DAgger).
- "val": validation, for choices made while developing (recipes, ablations, checks during
  training); a policy tuned on it is still judged on fresh episodes.
- "eval": evaluation, for the numbers reported at the end (`vla eval`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sims.scene import TRAIN_COLORS, TRAIN_SHAPES, UNSEEN_COLORS, UNSEEN_SHAPES

SPLITS = ("L1", "L2", "L3", "L4")
MODES = ("train", "eval", "val")  # append only: a mode's index seeds its stream
HELD_OUT_TASK = "push_next"
# The target colour each task never sees in training (L1); L2 uses exactly these.
HELD_OUT_COMBOS: dict[str, str] = {
    "pick": "blue",
    "place": "green",
    "stack": "red",
    "push_to": "yellow",
    "push_next": "cyan",
    "touch": "brown",
}


@dataclass(frozen=True)
class EpisodeRules:
    """What an episode may contain, drawn once per reset from the split."""

    target_colors: tuple[str, ...]
    other_colors: tuple[str, ...]  # for the second object, zones and distractors
    target_shapes: tuple[str, ...]
    other_shapes: tuple[str, ...]
    held_out_phrasing: bool


def check_split(split: str, task: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is not a split; expected one of {', '.join(SPLITS)}")
    if split == "L4" and task != HELD_OUT_TASK:
        raise ValueError(
            f"split='L4' is the held-out task {HELD_OUT_TASK!r}; task={task!r} has no L4 episodes"
        )


def episode_rng(seed: int, split: str, mode: str) -> np.random.Generator:
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} is not a mode; expected one of {', '.join(MODES)}")
    return np.random.default_rng([int(seed), SPLITS.index(split), MODES.index(mode), 20261123])


def rules_for(task: str, split: str, rng: np.random.Generator) -> EpisodeRules:
    check_split(split, task)
    held_color = HELD_OUT_COMBOS[task]
    train_targets = tuple(c for c in TRAIN_COLORS if c != held_color)
    if split in ("L1", "L4"):
        return EpisodeRules(train_targets, TRAIN_COLORS, TRAIN_SHAPES, TRAIN_SHAPES, False)
    if split == "L2":
        if rng.random() < 0.5:  # held-out colour-task combination, training phrasing
            return EpisodeRules((held_color,), TRAIN_COLORS, TRAIN_SHAPES, TRAIN_SHAPES, False)
        return EpisodeRules(train_targets, TRAIN_COLORS, TRAIN_SHAPES, TRAIN_SHAPES, True)
    # L3: the target is an unseen colour; a third of targets are also the unseen shape.
    shapes = UNSEEN_SHAPES if rng.random() < 1 / 3 else TRAIN_SHAPES
    return EpisodeRules(
        UNSEEN_COLORS, TRAIN_COLORS + UNSEEN_COLORS, shapes, TRAIN_SHAPES + UNSEEN_SHAPES, False
    )


def held_out_things(goal) -> list[str]:
    """The L3 colours and shapes a scene holds (its objects and zones): robot
    demonstrations must hold none (vla/data/worker.py checks every recorded episode)."""
    found = [o.color for o in goal.objects if o.color in UNSEEN_COLORS]
    found += [o.shape for o in goal.objects if o.shape in UNSEEN_SHAPES]
    found += [z.color for z in goal.zones if z.color in UNSEEN_COLORS]
    return sorted(set(found))

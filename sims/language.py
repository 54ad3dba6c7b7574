"""Instruction templates with synonyms, deterministic from the episode's generator.

Each task has training phrasings and held-out phrasings (used only in split L2), in the
spirit of Language-Table's synonym lists and CLIPort's task templates.
"""

from __future__ import annotations

import numpy as np

from sims.scene import SceneObject

# task -> (training templates, held-out templates). Fields: {obj}, {target}, {loc}.
TEMPLATES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "pick": (
        ("pick up the {obj}", "lift the {obj}", "grab the {obj} and lift it",
         "pick the {obj} up", "raise the {obj} off the table"),
        ("grasp the {obj} and hold it up", "take the {obj} off the table"),
    ),
    "place": (
        ("put the {obj} in the {target} zone", "place the {obj} on the {target} square",
         "move the {obj} into the {target} zone", "drop the {obj} in the {target} area",
         "set the {obj} down on the {target} zone"),
        ("transfer the {obj} to the {target} square", "carry the {obj} over to the {target} zone"),
    ),
    "stack": (
        ("stack the {obj} on the {target}", "put the {obj} on top of the {target}",
         "place the {obj} onto the {target}", "set the {obj} on the {target}",
         "stack the {obj} on top of the {target}"),
        ("build a tower with the {obj} on the {target}", "lay the {obj} on the {target}"),
    ),
    "push_to": (
        ("push the {obj} to the {loc}", "slide the {obj} to the {loc}",
         "move the {obj} to the {loc} of the board", "nudge the {obj} toward the {loc}",
         "push the {obj} into the {loc}"),
        ("shove the {obj} over to the {loc}", "drag the {obj} to the {loc} of the board"),
    ),
    "push_next": (
        ("push the {obj} next to the {target}", "slide the {obj} next to the {target}",
         "move the {obj} beside the {target}", "push the {obj} so it touches the {target}",
         "bring the {obj} close to the {target}"),
        ("shove the {obj} up against the {target}", "slide the {obj} alongside the {target}"),
    ),
    "touch": (
        ("touch the {obj}", "point at the {obj}", "tap the {obj}",
         "put your gripper on the {obj}", "reach for the {obj}"),
        ("poke the {obj}", "place your fingers on the {obj}"),
    ),
}

# Nouns for an object whose colour is unique in the scene.
GENERIC_NOUNS = ("block", "object", "piece")
# Location synonyms for the push task.
LOCATION_SYNONYMS: dict[str, tuple[str, ...]] = {
    "top left corner": ("top left corner", "far left corner"),
    "top right corner": ("top right corner", "far right corner"),
    "bottom left corner": ("bottom left corner", "near left corner"),
    "bottom right corner": ("bottom right corner", "near right corner"),
    "top edge": ("top edge", "far side"),
    "bottom edge": ("bottom edge", "near side"),
    "left edge": ("left edge", "left side"),
    "right edge": ("right edge", "right side"),
    "center": ("center", "middle"),
}


def describe(obj: SceneObject, scene: list[SceneObject], rng: np.random.Generator) -> str:
    """Name an object by colour, adding its shape only when the colour is not unique."""
    same_color = [o for o in scene if o.color == obj.color]
    if len(same_color) > 1:
        return f"{obj.color} {obj.shape}"
    return f"{obj.color} {GENERIC_NOUNS[rng.integers(len(GENERIC_NOUNS))]}"


def instruction(task: str, rng: np.random.Generator, held_out: bool, **fields: str) -> str:
    train, held = TEMPLATES[task]
    options = held if held_out else train
    return options[rng.integers(len(options))].format(**fields)


def location_phrase(location: str, rng: np.random.Generator) -> str:
    options = LOCATION_SYNONYMS[location]
    return options[rng.integers(len(options))]

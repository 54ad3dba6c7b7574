"""The broad vocabulary of the grounding pretraining (`vla pretrain`): colour names with
their RGB and shape words beyond the task suite's.

Chosen generically, not for our test: every colour of two public lists (the XKCD colour
survey, 949 names, CC0; the CSS4 named colours, 148), copied from matplotlib's
_color_data.py into sims/assets/colors.json; shapes are PyBullet's primitives in the
proportions people have words for. The lists contain the L3 colours (orange, purple,
pink, white) and the L3 shape (bar) because any broad list would: pretraining is
where a word meets its pixels; robot demonstrations still never show them
(vla/data/collect.py refuses to record split L3).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_COLORS_FILE = Path(__file__).parent / "assets" / "colors.json"
# The survey's few crude names are left out: nobody should have to type them to a robot.
# Names with other characters ("blue/purple") are left out too: a command is plain words.
_CRUDE = ("shit", "poo", "poop", "puke", "pukey", "vomit", "barf", "booger", "snot",
          "diarrhea")


@functools.lru_cache(maxsize=1)
def color_vocabulary() -> dict[str, tuple[float, float, float]]:
    """Colour name -> RGB in [0, 1]: the XKCD names, then CSS4 names XKCD lacks."""
    lists = json.loads(_COLORS_FILE.read_text())
    merged: dict[str, tuple[float, float, float]] = {}
    seen: set[str] = set()  # normalised names: "dark grey" and CSS4 "darkgray" are one
    for name, hex_rgb in [*lists["xkcd"].items(), *lists["css4"].items()]:
        plain = all(ch.isalpha() or ch in " '-" for ch in name)
        key = _normalised(name)
        if key not in seen and plain and not set(name.split()) & set(_CRUDE):
            seen.add(key)
            merged[name] = tuple(int(hex_rgb[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return merged


def _normalised(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalpha()).replace("grey", "gray")


@dataclass(frozen=True)
class ShapeKind:
    """A family of shapes: its PyBullet primitive, the words for it, and a size sampler."""

    words: tuple[str, ...]
    primitive: str  # box | cylinder | sphere | capsule
    flat: bool = False  # a zone-like patch on the table (the place task's "zone")

    def sample_dims(self, rng: np.random.Generator) -> tuple[float, ...]:
        """Half extents (box) or (radius, half height) / (radius,), in metres."""
        u = rng.uniform
        if self.flat:
            half = u(0.035, 0.06)
            return (half, half, 0.0005)
        if self.words[0] == "cube":
            h = u(0.015, 0.027)
            return (h, h, h)
        if self.words[0] == "bar":
            short = u(0.014, 0.02)
            return (short, short * u(1.6, 2.2), u(0.014, 0.02))
        if self.words[0] == "slab":
            return (u(0.022, 0.035), u(0.022, 0.035), u(0.005, 0.009))
        if self.words[0] == "pillar":
            r = u(0.013, 0.018)
            return (r, r, u(0.035, 0.05))
        if self.primitive == "sphere":
            return (u(0.015, 0.026),)
        if self.primitive == "capsule":
            return (u(0.011, 0.016), u(0.012, 0.02))
        if self.words[0] == "disc":
            return (u(0.022, 0.035), u(0.005, 0.009))
        return (u(0.015, 0.026), u(0.015, 0.03))  # cylinder


SHAPE_KINDS: tuple[ShapeKind, ...] = (
    ShapeKind(("cube", "block", "box"), "box"),
    ShapeKind(("cylinder", "can"), "cylinder"),
    ShapeKind(("bar", "beam", "rod"), "box"),
    ShapeKind(("ball", "sphere"), "sphere"),
    ShapeKind(("disc", "puck", "coin"), "cylinder"),
    ShapeKind(("slab", "plate", "tile"), "box"),
    ShapeKind(("pillar", "post", "column"), "box"),
    ShapeKind(("capsule", "pill"), "capsule"),
    ShapeKind(("zone", "square", "area", "pad"), "box", flat=True),
)
# Words for any object, whatever its shape (the task suite says "block", "object", "piece").
GENERIC_NOUNS = ("object", "piece", "thing", "item", "block")

# Everyday things the scenes never contain, for sentences that name something absent
# ("pick up the cup"): a model that only learned absent *colours* would still find some
# object for "the toy car". Chosen as common nouns of a household, a workshop, a street
# and a farm; none is a word of a colour name, a shape word or the task suite's grammar,
# and none is one of the refusal benchmark's unknown things (benchmarks/presence_score.py
# UNKNOWN_THINGS; tests check both), so that benchmark measures words never trained on.
ABSENT_NOUNS = (
    "cup", "mug", "towel", "glass", "bowl", "fork", "knife", "kettle", "pan", "jar",
    "phone", "laptop", "keyboard", "mouse", "remote", "camera", "headphones", "charger",
    "book", "notebook", "pencil", "pen", "eraser", "scissors", "stapler", "envelope",
    "hammer", "wrench", "pliers", "drill", "saw", "nail", "bolt", "tape measure",
    "shoe", "hat", "glove", "scarf", "shirt", "jacket", "belt", "wallet", "watch",
    "dog", "cat", "horse", "cow", "sheep", "bird", "rabbit", "giraffe", "lion", "bear",
    "tractor", "bicycle", "truck", "bus", "train", "boat", "airplane", "helicopter",
    "chair", "lamp", "pillow", "blanket", "candle", "clock", "vase", "mirror",
    "ladder", "toothbrush", "backpack", "suitcase", "basket", "bucket", "broom", "sponge",
    "bench", "flower", "fish", "rock", "tiger", "feather", "cloud", "moon", "star",
    "pizza", "sandwich", "cookie", "cake", "monkey", "bread", "sofa", "carrot", "potato",
    "guitar", "drum", "violin", "trumpet", "toaster", "doll", "kite", "balloon", "puzzle",
)

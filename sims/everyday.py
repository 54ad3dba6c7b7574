"""Commands as people type them: typos, politeness and filler, and words no template has.

`sims.commands.parse` tries the suite's own phrasings first (`clean` runs before them:
mild typos of known words are corrected, politeness and filler dropped). When no template
matches, `read` finds the task by meaning: what is named (a colour and a kind of object,
a zone, a place on the board), how the things named relate ("on top of", "next to",
"into the ... zone") and what is to be done (a verb of lifting, touching, pushing,
putting). Two readings that fit equally are not guessed between: `Ambiguous` names both
and asks. Text that names no thing, or no deed, is no task ("fly to the moon", "what time
is it"): `read` returns None and the caller refuses it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sims.language import GENERIC_NOUNS, LOCATION_SYNONYMS, TEMPLATES
from sims.scene import COLORS, SHAPES

NOUNS = (*GENERIC_NOUNS, *SHAPES, "one", "thing", "item", "cube")
ZONE_WORDS = ("zone", "area", "square", "region", "spot", "target", "patch", "box")
# Politeness and filler, dropped wherever they stand (longest first when matching).
FILLER = ("i would like you to", "i d like you to", "i want you to", "i need you to",
          "could you please", "can you please", "would you please", "could you", "can you",
          "would you", "will you", "go ahead and", "try to", "please", "kindly", "robot",
          "hey", "okay", "ok", "now", "just", "thanks", "thank you", "for me",
          "carefully", "gently", "quickly", "slowly", "with the gripper",
          "with your gripper", "using the gripper", "using your gripper",
          "with your fingers", "with the robot", "the robot", "then stop")
# What is to be done, by the verbs people use; a verb may point to several tasks and the
# named things decide (a zone: place; a board location: push_to; two things: stack or
# push_next).
PICK = {"pick", "lift", "grab", "raise", "take", "grasp", "hold", "get", "fetch", "collect",
        "elevate", "hoist"}
TOUCH = {"touch", "tap", "poke", "point", "press", "reach", "contact", "feel", "prod"}
PUSH = {"push", "slide", "shove", "nudge", "drag", "shift", "roll", "scoot", "move", "bring"}
PUT = {"put", "place", "set", "drop", "stack", "lay", "move", "bring", "carry", "transfer",
       "load", "rest", "deposit", "pile", "position", "release", "get"}
# Words typed joined that the grammar spells apart.
JOINED = {"pickup": "pick up", "liftup": "lift up", "ontop": "on top", "nextto": "next to"}
# Everyday words that mean nothing to the grammar but must not be "corrected" into a word
# that does ("make" is not a typo of "take").
COMMON = {"make", "me", "want", "need", "like", "hand", "give", "show", "find", "look", "see",
          "go", "come", "do", "is", "are", "be", "let", "what", "where", "how", "when", "why",
          "who", "which", "there", "here", "some", "all", "way", "so", "very", "again", "back",
          "off", "out", "once", "my", "you", "your", "i", "we", "us", "our", "its",
          "tell", "say", "ask", "time", "day", "good", "well", "yes", "no", "not",
          "done", "open", "close", "turn", "walk", "run", "jump", "sing", "call", "play",
          "clean", "cook", "wave", "read", "write", "eat", "drink", "sleep", "wake", "stop"}
ON = ("on top of", "onto", "on", "atop", "over", "upon")
NEXT = ("next to", "beside", "alongside", "close to", "near", "against", "by", "touches")
EXTRA_LOCATIONS = {"upper left": "top left corner", "upper right": "top right corner",
                   "lower left": "bottom left corner", "lower right": "bottom right corner",
                   "top left": "top left corner", "top right": "top right corner",
                   "bottom left": "bottom left corner", "bottom right": "bottom right corner",
                   "left": "left edge", "right": "right edge", "top": "top edge",
                   "bottom": "bottom edge", "far edge": "top edge", "near edge": "bottom edge",
                   "centre": "center"}


class Ambiguous(ValueError):
    """Two readings fit the command equally; the message names both and asks."""


@dataclass(frozen=True)
class Reading:
    task: str
    obj: str  # "red block": colour and noun as typed (the noun may be unknown)
    other: str | None = None
    zone: str | None = None
    location: str | None = None


def vocabulary() -> set[str]:
    words = {w for train, held in TEMPLATES.values() for t in (*train, *held)
             for w in re.findall(r"[a-z]+", t)}
    words |= set(COLORS) | set(NOUNS) | set(ZONE_WORDS) | PICK | TOUCH | PUSH | PUT
    words |= {w for phrase in (*FILLER, *ON, *NEXT, *EXTRA_LOCATIONS) for w in phrase.split()}
    words |= {w for aliases in LOCATION_SYNONYMS.values() for a in aliases for w in a.split()}
    return words | COMMON | {"up", "down", "it", "that", "this", "them", "the", "a", "an",
                             "and"}


_VOCABULARY = vocabulary()


def correct(word: str) -> str:
    """`word`, or the one known word it is a mild typo of: one edit (an insertion, a
    deletion, a substitution or two letters swapped) for words of 4 to 7 letters, two
    for longer ones, a swap for 3 letters; only when a single known word is that close."""
    if word in _VOCABULARY or len(word) < 3 or not word.isalpha():
        return word
    if len(word) == 3:  # short words: only two letters swapped ("teh"), never "cat" -> "at"
        swaps = {word[:i] + word[i + 1] + word[i] + word[i + 2:] for i in range(2)}
        known = sorted(swaps & _VOCABULARY)
        return known[0] if len(known) == 1 else word
    limit = 1 if len(word) < 8 else 2
    best = [(d, w) for w in _VOCABULARY if abs(len(w) - len(word)) <= limit
            and (d := _distance(word, w)) <= limit]
    best.sort()
    if best and (len(best) == 1 or best[0][0] < best[1][0]):
        return best[0][1]
    return word


def stem(word: str) -> str:
    """A known word's inflection as the word ("stacked" -> "stack", "placed" -> "place",
    "pushing" -> "push"); other words as they are."""
    if word in _VOCABULARY:
        return word
    for suffix in ("ing", "ed", "d", "s"):
        if word.endswith(suffix) and word[: -len(suffix)] in _VOCABULARY:
            return word[: -len(suffix)]
    return word


def clean(text: str) -> str:
    """Lower case, letters only, joined words split, inflections and typos of known words
    made the words, filler dropped."""
    raw = " ".join(JOINED.get(w, w) for w in re.sub(r"[^a-z ]+", " ", text.lower()).split())
    words = [correct(stem(w)) for w in raw.split()]
    text = " " + " ".join(words) + " "
    for phrase in sorted(FILLER, key=len, reverse=True):
        text = text.replace(f" {phrase} ", " ")
    return " ".join(text.split())


def read(text: str) -> Reading | None:
    """The task `text` asks for by meaning (see the module doc), or None for no task;
    `Ambiguous` when two tasks fit equally."""
    words = clean(text).split()
    things = _things(words)
    zone = _zone(words)
    location = _location(words) if zone is None else None
    verbs = set(words)
    named = [t for t in things if t[1] != zone]
    if not named:
        return None
    obj = named[0][1]
    if location is not None and verbs & (PUSH | PUT):
        return Reading("push_to", obj, location=location)
    if zone is not None and verbs & (PUT | PUSH):
        return Reading("place", obj, zone=zone)
    if len(named) >= 2:
        between = " ".join(words[named[0][0] + len(obj.split()):named[1][0]])
        other = named[1][1]
        if any(_has(between, r) for r in NEXT) and verbs & (PUSH | PUT):
            return Reading("push_next", obj, other=other)
        if (any(_has(between, r) for r in ON) and verbs & PUT) or "tower" in verbs \
                or "stack" in verbs:
            return Reading("stack", obj, other=other)
        return None
    tasks = [task for task, lexicon in (("pick", PICK), ("touch", TOUCH)) if verbs & lexicon]
    if len(tasks) == 2:
        raise Ambiguous(f"\"{text.strip()}\" could mean pick up the {obj} or touch the "
                        f"{obj}; say which")
    return Reading(tasks[0], obj) if tasks else None


def _things(words: list[str]) -> list[tuple[int, str]]:
    """(position, "colour noun") of every thing named: a colour and a noun, a colour
    alone ("the red one", "the red"), or a noun after a colour we do not know."""
    found, i = [], 0
    while i < len(words):
        word, nxt = words[i], words[i + 1] if i + 1 < len(words) else ""
        if word in COLORS and nxt in ZONE_WORDS:
            found.append((i, f"{word} zone"))
            i += 2
        elif word in COLORS and nxt and nxt not in _VOCABULARY and nxt.isalpha():
            found.append((i, f"{word} {nxt}"))  # "the red elephant": refused by name
            i += 2
        elif word in COLORS:
            noun = nxt if nxt in NOUNS and nxt not in ("one", "thing", "item") else "block"
            found.append((i, f"{word} {noun}"))
            i += 2 if nxt in NOUNS else 1
        elif word in SHAPES:
            found.append((i, word))
            i += 1
        elif i + 1 < len(words) and _unknown_colour(word, nxt):
            found.append((i, f"{word} {nxt}"))  # "the magenta block": refused by name
            i += 2
        else:
            i += 1
    return [(i, t) for i, t in found if not t.endswith(" zone")] + \
        [(i, t) for i, t in found if t.endswith(" zone")]


def _unknown_colour(word: str, nxt: str) -> bool:
    return nxt in NOUNS and word not in _VOCABULARY and word.isalpha()


def _zone(words: list[str]) -> str | None:
    for a, b in zip(words, words[1:]):
        if a in COLORS and b in ZONE_WORDS:
            return a
    return None


def _location(words: list[str]) -> str | None:
    text = " " + " ".join(words) + " "
    names = {alias: name for name, aliases in LOCATION_SYNONYMS.items() for alias in aliases}
    names |= EXTRA_LOCATIONS
    for phrase in sorted(names, key=len, reverse=True):
        if f" {phrase} " in text and (len(phrase.split()) > 1 or _after_to(text, phrase)):
            return names[phrase]
    return None


def _after_to(text: str, word: str) -> bool:
    """A one-word place ("left") counts only as a destination: "to the left", "toward
    the top", "to the left side"."""
    return bool(re.search(rf" (?:to|toward|towards|into) (?:the )?{word} ", text))


def _has(text: str, phrase: str) -> bool:
    return f" {phrase} " in f" {text} "


def _distance(a: str, b: str) -> int:
    """Edit distance with adjacent swaps (optimal string alignment)."""
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]

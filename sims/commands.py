"""Understand a typed command with the task suite's own grammar, and ground it in a scene.

    parse("put the red block in the green zone")
      -> Command(task="place", obj=red block, zone="green")
    ground(command, scene_goal)   # the scene's objects and zones
      -> Goal: the typed command, judged by the simulator like any task's goal

The grammar is the instruction templates of `sims/language.py` (training and held-out
phrasings, so every instruction the suite can produce parses), with the colour and shape
vocabulary of `sims/scene.py`. A command that matches no template is `NotUnderstood`; one
that names something the scene lacks (an absent colour, an unknown kind of object, an
ambiguous "red block" beside a red cube and a red cylinder) is `NotInScene`. Both say what
was understood and what is there, before anything moves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sims import everyday
from sims.language import GENERIC_NOUNS, LOCATION_SYNONYMS, TEMPLATES
from sims.scene import COLORS, SHAPES, SceneObject
from sims.tasks import Goal

# Words people type that the templates spell differently.
ALIASES = {"grey": "gray", "centre": "center", "cubes": "cube", "blocks": "block"}
# Politeness around a command, dropped before matching.
LEADING = ("please", "robot", "can you", "could you", "now")
TRAILING = ("please", "now", "thanks", "thank you")
# Which placeholder holds what, per task: a referent (colour? + noun) or a zone colour.
_ZONE_TASKS = ("place",)
TASK_WORDS = {"pick": "pick up", "place": "put in a zone", "stack": "stack on",
              "push_to": "push to a board location", "push_next": "push next to",
              "touch": "touch"}


class NotUnderstood(ValueError):
    """The command matches none of the task suite's phrasings."""


class NotInScene(ValueError):
    """The command is understood, but names something the scene does not contain."""


@dataclass(frozen=True)
class Referent:
    """A thing named in a command: an optional colour and a noun ("block", "cube", ...)."""

    color: str | None
    noun: str

    @classmethod
    def from_words(cls, words: str) -> Referent:
        parts = [("block" if w in ("one", "thing", "item") else w) for w in words.split()]
        if len(parts) == 1:
            return cls(parts[0], "block") if parts[0] in COLORS else cls(None, parts[0])
        return cls(parts[0], parts[1])

    @property
    def known(self) -> int:
        """How many of its words the vocabulary knows (0-2), to rank competing parses."""
        return int(self.color is None or self.color in COLORS) + int(self.noun in NOUNS)

    def matches(self, obj: SceneObject) -> bool:
        color_ok = self.color is None or obj.color == self.color
        return color_ok and (self.noun in GENERIC_NOUNS or self.noun == obj.shape)

    def __str__(self) -> str:
        return f"{self.color} {self.noun}" if self.color else self.noun


NOUNS = (*GENERIC_NOUNS, *SHAPES)


@dataclass(frozen=True)
class Command:
    """A parsed command: the task and what it names. Only the task's own fields are set."""

    text: str
    task: str
    obj: Referent
    other: Referent | None = None  # the stack base or the push-next neighbour
    zone: str | None = None  # the place task's zone colour
    location: str | None = None  # the push task's board location (canonical name)
    held_out_phrasing: bool = False

    def summary(self) -> str:
        """What was understood, in plain words."""
        if self.task == "place":
            return f"put the {self.obj} in the {self.zone} zone"
        if self.task == "stack":
            return f"stack the {self.obj} on the {self.other}"
        if self.task == "push_to":
            return f"push the {self.obj} to the {self.location}"
        if self.task == "push_next":
            return f"push the {self.obj} next to the {self.other}"
        return f"{TASK_WORDS[self.task]} the {self.obj}"


def normalise(text: str) -> str:
    words = re.sub(r"[^a-z ]+", " ", text.lower()).split()
    words = [ALIASES.get(w, w) for w in words]
    text = " ".join(words)
    for lead in LEADING:
        text = text.removeprefix(lead + " ")
    for trail in TRAILING:
        text = text.removesuffix(" " + trail)
    return text


def _pattern(task: str, template: str) -> re.Pattern:
    """A template as a regex over normalised text (with one trailing space); "the" is
    optional, so "pick up red block" matches "pick up the {obj}"."""
    referent = r"[a-z]+(?: [a-z]+)?"
    slots = {"obj": referent, "target": r"[a-z]+" if task in _ZONE_TASKS else referent,
             "loc": "|".join(sorted(_LOCATION_WORDS, key=len, reverse=True))}
    parts = []
    for word in template.split():
        slot = re.fullmatch(r"\{(\w+)\}", word)
        if slot:
            parts.append(f"(?P<{slot[1]}>{slots[slot[1]]}) ")
        elif word == "the":
            parts.append("(?:the )?")
        else:
            parts.append(re.escape(word) + " ")
    return re.compile("^" + "".join(parts) + "$")


_LOCATION_WORDS = {alias: name for name, aliases in LOCATION_SYNONYMS.items()
                   for alias in aliases}
# (task, template, held out?, pattern) for every phrasing the suite knows.
GRAMMAR = [(task, template, held_out, _pattern(task, template))
           for task, (train, held) in TEMPLATES.items()
           for held_out, templates in ((False, train), (True, held))
           for template in templates]


def parse(text: str) -> Command:
    """The best reading of `text`: a phrasing of the suite (as typed, or with typos fixed
    and filler dropped), else the task found by meaning (`sims/everyday.py`);
    `NotUnderstood` when there is none, or when two readings fit equally (it asks)."""
    found = match(text)
    if found is None:
        cleaned = everyday.clean(text)
        found = match(cleaned)
        if found is None:
            return _by_meaning(text, cleaned)
        text = cleaned  # the words the policy is told: typos fixed, filler dropped
    task, template, fields = found
    return _reading(text, task, template in TEMPLATES[task][1], fields)


def _by_meaning(text: str, cleaned: str) -> Command:
    try:
        reading = everyday.read(text)
    except everyday.Ambiguous as err:
        raise NotUnderstood(str(err)) from None
    if reading is None:
        raise NotUnderstood(
            f"I could not match {text.strip()!r} to a task I know. I can "
            f"{'; '.join(TASK_WORDS.values())}. For example: \"pick up the red block\", "
            f"\"put the blue cube in the green zone\", \"stack the red block on the yellow "
            f"block\", \"push the gray block to the top left corner\"")
    other = Referent.from_words(reading.other) if reading.other else None
    return Command(cleaned, reading.task, Referent.from_words(reading.obj), other=other,
                   zone=reading.zone, location=reading.location)


def match(text: str, held_out: bool | None = None) -> tuple[str, str, dict[str, str]] | None:
    """(task, template, fields) of the phrasing that reads `text` best, among the training
    (held_out=False), held-out (True) or all (None) templates; None when none matches.
    Readings whose words the vocabulary knows win ("set the block down on the green zone"
    is place, not stack with a "block down"); on a tie, the first template listed."""
    clean = normalise(text) + " "
    best: tuple[int, str, str, dict[str, str]] | None = None
    for task, template, is_held_out, pattern in GRAMMAR:
        m = None if held_out not in (None, is_held_out) else pattern.match(clean)
        if m and _names_a_zone_as_a_thing(task, m.groupdict()):
            m = None  # "place the red block onto the green zone" is no stack
        if m:
            known = _known_words(_reading(text, task, is_held_out, m.groupdict()))
            if best is None or known > best[0]:
                best = (known, task, template, m.groupdict())
    return None if best is None else best[1:]


def _names_a_zone_as_a_thing(task: str, fields: dict) -> bool:
    """Whether a reading takes a zone ("the green zone") for an object to move or build
    on: no task but place names zones."""
    return task not in _ZONE_TASKS and any(
        fields.get(key, "").split()[-1:] == [word]
        for key in ("obj", "target") for word in everyday.ZONE_WORDS)


def _reading(text: str, task: str, held_out: bool, fields: dict) -> Command:
    obj = Referent.from_words(fields["obj"])
    if task in _ZONE_TASKS:
        return Command(text, task, obj, zone=fields["target"], held_out_phrasing=held_out)
    if "loc" in fields:
        return Command(text, task, obj, location=_LOCATION_WORDS[fields["loc"]],
                       held_out_phrasing=held_out)
    other = Referent.from_words(fields["target"]) if "target" in fields else None
    return Command(text, task, obj, other=other, held_out_phrasing=held_out)


def _known_words(command: Command) -> int:
    score = command.obj.known + (command.other.known if command.other else 0)
    return score + int(command.zone is None or command.zone in COLORS)


# -- grounding in a scene --------------------------------------------------------------------
def ground(command: Command, scene: Goal) -> Goal:
    """The goal `command` names among `scene`'s objects and zones (a task's Goal, judged
    by that task's success test); `NotInScene` says what is missing and what is there."""
    target = _find(command.obj, scene)
    other = zone = location = None
    if command.other is not None:
        other = _find(command.other, scene)
        if other is target:
            raise NotInScene(f"the {command.obj} and the {command.other} are the same "
                             f"object; name two different ones. {contents(scene)}")
    if command.zone is not None:
        zones = [z for z in scene.zones if z.color == command.zone]
        if not zones:
            raise NotInScene(f"there is no {command.zone} zone here. {contents(scene)}")
        zone = zones[0]
    if command.location is not None:
        location = scene.board_location(command.location)
    return Goal(command.text, target, other=other, zone=zone, location=location,
                location_name=command.location or "", objects=scene.objects,
                zones=scene.zones, locations=scene.locations)


def _find(referent: Referent, scene: Goal) -> SceneObject:
    found = [o for o in scene.objects if referent.matches(o)]
    if len(found) == 1:
        return found[0]
    if not found:
        unknown = _unknown(referent.color, referent.noun)
        why = f" (I do not know the word {unknown[0]!r})" if unknown else ""
        raise NotInScene(f"there is no {referent} here{why}. {contents(scene)}")
    names = ", ".join(f"the {o.color} {o.shape}" for o in found)
    raise NotInScene(f"\"the {referent}\" could be {names}; say which. {contents(scene)}")


def contents(scene: Goal) -> str:
    """The scene in words: 'The scene has a red cube, a blue cylinder and a green zone.'"""
    things = [f"a {o.color} {o.shape}" for o in scene.objects]
    things += [f"a {z.color} zone" for z in scene.zones]
    if len(things) > 1:
        return f"The scene has {', '.join(things[:-1])} and {things[-1]}."
    return f"The scene has {things[0]}." if things else "The scene is empty."


def same_goal(a: Goal, b: Goal) -> bool:
    """Whether two goals ask for the same thing in the same scene."""
    zones = [z.color if z is not None else None for z in (a.zone, b.zone)]
    return (a.target is b.target and a.other is b.other and zones[0] == zones[1]
            and a.location_name == b.location_name)


# -- a scene for a command -------------------------------------------------------------------
def unknown_words(command: Command) -> list[str]:
    """Words in the command's names that the vocabulary lacks ("elephant", "magenta")."""
    words = [command.obj.color, command.obj.noun, command.zone]
    if command.other is not None:
        words += [command.other.color, command.other.noun]
    return _unknown(*words)


def _unknown(*words: str | None) -> list[str]:
    """The given words (None skipped) that are neither a colour nor a noun we know."""
    return [w for w in words if w and w not in (*COLORS, *NOUNS)]


def find_scene(command: Command, seed: int = 0, mode: str = "eval",
               tries: int = 100) -> tuple[int, str]:
    """(seed, split) of a scene of the command's own task in which it can be carried
    out: preferably one whose own goal is the command (the layouts the task's sampler
    makes for exactly this goal), else one that contains everything it names."""
    from sims.env import TabletopEnv  # pybullet: only when a scene is wanted
    from sims.splits import SPLITS, check_split

    unknown = unknown_words(command)
    if unknown:
        raise NotInScene(f"I do not know the word {unknown[0]!r}: it is not a colour or a "
                         f"kind of object I know (colours: {', '.join(COLORS)}; objects: "
                         f"{', '.join(NOUNS)})")
    splits = []
    for split in SPLITS:
        try:
            check_split(split, command.task)
            splits.append(split)
        except ValueError:
            continue
    env = TabletopEnv(command.task, image_size=8, mode=mode, random_start=False)
    fallback = None
    try:
        for split in splits:  # the training distribution first
            for s in range(seed, seed + tries):
                env.reset(seed=s, options={"split": split})
                try:
                    goal = ground(command, env.goal)
                except NotInScene:
                    continue
                if same_goal(goal, env.goal):
                    return s, split
                fallback = fallback or (s, split)
    finally:
        env.close()
    if fallback is None:
        raise NotInScene(f"none of {tries} scenes of the {command.task} task from seed "
                         f"{seed} has everything \"{command.summary()}\" names")
    return fallback


def phrasings(task: str, goal: Goal) -> list[tuple[str, bool]]:
    """Every instruction the suite's templates can make for `goal` of `task`, with
    whether its phrasing is held out: the parser's coverage set (every template, every
    way `sims/language.py` names each referent and location)."""
    def names(obj: SceneObject) -> list[str]:
        if sum(o.color == obj.color for o in goal.objects) > 1:
            return [f"{obj.color} {obj.shape}"]
        return [f"{obj.color} {noun}" for noun in (*GENERIC_NOUNS, obj.shape)]

    fields = [{"obj": n} for n in names(goal.target)]
    if goal.zone is not None and task == "place":
        fields = [{**f, "target": goal.zone.color} for f in fields]
    if goal.other is not None:
        fields = [{**f, "target": n} for f in fields for n in names(goal.other)]
    if goal.location_name:
        fields = [{**f, "loc": alias} for f in fields
                  for alias in LOCATION_SYNONYMS[goal.location_name]]
    train, held = TEMPLATES[task]
    return [(template.format(**f), held_out)
            for held_out, templates in ((False, train), (True, held))
            for template in templates for f in fields]

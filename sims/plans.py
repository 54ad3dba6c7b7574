"""Several steps in one sentence: "pick up the red block and put it in the green zone,
then push the blue one to the left edge" -> a plan of commands, in order.

Steps are joined by "then", "and then", "after that", "afterwards", commas, full stops,
semicolons and "and". "It", "that one" and "the same one" refer back to the object of
the step before. A sentence that is one phrasing of the suite stays one step ("grab the
red block and lift it"). A plan is grounded in a scene as a whole: if any step names
something the scene lacks, or nothing, the whole command is refused, naming the step.
"""

from __future__ import annotations

import re

from sims.commands import Command, NotInScene, NotUnderstood, ground, match, parse
from sims.tasks import Goal

# Joiners that always end a step (the longest first), and "and", which ends one only when
# both sides read as commands.
# (Case does not matter: "... the zone. After that, push it ..." is one joiner.)
JOINERS = r"\s*(?:[.;,]?\s*\b(?:and then|then|after that,?|afterwards,?)\s+|[.;]\s+|" \
          r",\s*(?:and\s+)?)"
PRONOUNS = ("that one", "the same one", "that block", "the same block", "it", "that", "this")
# "that" and "this" are pronouns only where no noun follows ("put that in the zone"); in
# "grab that red block" they are determiners and stay.
AFTER_A_PRONOUN = ("to", "in", "into", "on", "onto", "next", "near", "toward", "towards",
                   "over", "up", "off", "with", "from", "down", "there", "please", "again")


def parse_plan(text: str) -> list[Command]:
    """The steps of `text`, each a `Command`; `NotUnderstood` names the step it cannot read
    (one step: `sims.commands.parse`'s own message)."""
    text = " ".join(text.split()).rstrip(".!?")
    if match(text) is not None:  # one phrasing of the suite, whatever words it has
        return [parse(text)]
    clauses = [c for c in re.split(JOINERS, text, flags=re.IGNORECASE) if c.strip()]
    steps: list[Command] = []
    for n, clause in enumerate(clauses, start=1):
        try:
            steps += _clause(clause, steps[-1] if steps else None)
        except NotUnderstood as err:
            if len(clauses) == 1:
                raise
            raise NotUnderstood(f"step {n}, \"{clause}\": {err}") from None
    return steps


def _clause(clause: str, before: Command | None) -> list[Command]:
    """One clause: a phrasing of the suite; else steps joined by "and" ("pick up the red
    block and put it in the green zone": two steps, "it" the red block); else one
    command read by meaning."""
    words = _resolve(clause, before)
    if match(words) is not None:
        return [parse(words)]
    parts = clause.split(" and ")
    for cut in range(1, len(parts)):
        left, right = " and ".join(parts[:cut]), " and ".join(parts[cut:])
        try:
            first = _clause(left, before)
            second = _clause(right, first[-1])
        except NotUnderstood:
            continue
        if second[0].summary() == first[-1].summary():  # "grab it and hold it": one step
            second = second[1:]
        return first + second
    _no_step_swallowed(parts, before)
    return [parse(words)]  # no way to read it: the single step's own refusal


def _no_step_swallowed(parts: list[str], before: Command | None) -> None:
    """Refuse a clause of which one side of an "and" reads as a command and another is no
    command and not mere politeness: "touch the red block and open the door" must not
    pass as a touch with "open the door" dropped as filler."""
    from sims.everyday import clean

    def reads(text: str) -> bool:
        try:
            parse(_resolve(text, before))
        except NotUnderstood:
            return False
        return True

    if len(parts) < 2:
        return
    # Filler alone is no step ("go ahead and ...": clean() drops "go ahead and").
    unread = [p for p in parts if clean(p) and clean(f"{p} and") and not reads(p)]
    if unread and len(unread) < len(parts):
        raise NotUnderstood(f"I could not match {unread[0].strip()!r} to a task I know")


def _resolve(clause: str, before: Command | None) -> str:
    """The clause with "it" (and the like) replaced by the object of the step before."""
    if before is None:
        return clause
    text = f" {clause} "
    for pronoun in PRONOUNS:
        pattern = f" {pronoun} "
        if pronoun in ("that", "this"):
            pattern = rf" {pronoun} (?=(?:{'|'.join(AFTER_A_PRONOUN)})\b)| {pronoun} $"
        text = re.sub(pattern, f" the {before.obj} ", text, count=1)
    return " ".join(text.split())


def ground_plan(plan: list[Command], scene: Goal) -> list[Goal]:
    """Every step's goal in `scene`; `NotInScene` names the first step that cannot be."""
    goals = []
    for n, command in enumerate(plan, start=1):
        try:
            goals.append(ground(command, scene))
        except NotInScene as err:
            if len(plan) == 1:
                raise
            raise NotInScene(f"step {n}, \"{command.summary()}\": {err}") from None
    return goals


def describe(plan: list[Command]) -> str:
    """The plan in words, one numbered step a line."""
    return "\n".join(f"{n}. {c.task}: {c.summary()}" for n, c in enumerate(plan, start=1))


def find_plan_scene(plan: list[Command], seed: int = 0, mode: str = "eval",
                    tries: int = 100) -> tuple[str, int, str]:
    """(task, seed, split) of a scene in which every step of `plan` names what is there:
    the scenes of each step's task are searched in turn (a place step needs zones, a
    stack step two objects), training-distribution splits first, from `seed` on."""
    from sims.commands import unknown_words
    from sims.env import TabletopEnv  # pybullet: only when a scene is wanted
    from sims.splits import SPLITS, check_split

    for n, command in enumerate(plan, start=1):
        unknown = unknown_words(command)
        if unknown:
            raise NotInScene(f"step {n}, \"{command.summary()}\": I do not know the word "
                             f"{unknown[0]!r}")
    for task in dict.fromkeys(c.task for c in plan):
        env = TabletopEnv(task, image_size=8, mode=mode, random_start=False)
        try:
            for split in SPLITS:
                try:
                    check_split(split, task)
                except ValueError:
                    continue
                for s in range(seed, seed + tries):
                    env.reset(seed=s, options={"split": split})
                    try:
                        ground_plan(plan, env.goal)
                    except NotInScene:
                        continue
                    return task, s, split
        finally:
            env.close()
    raise NotInScene(f"none of {tries} scenes of the tasks "
                     f"{', '.join(dict.fromkeys(c.task for c in plan))} from seed {seed} "
                     f"holds everything the plan names")

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
JOINERS = r"\s*(?:,?\s*and then\s+|,?\s*then\s+|,?\s*after that,?\s+|,?\s*afterwards,?\s+|" \
          r"[.;]\s+|,\s*(?:and\s+)?)"
PRONOUNS = ("that one", "the same one", "that block", "the same block", "it", "that", "this")


def parse_plan(text: str) -> list[Command]:
    """The steps of `text`, each a `Command`; `NotUnderstood` names the step it cannot read
    (one step: `sims.commands.parse`'s own message)."""
    text = " ".join(text.split()).rstrip(".!?")
    if match(text) is not None:  # one phrasing of the suite, whatever words it has
        return [parse(text)]
    clauses = [c for c in re.split(JOINERS, text) if c.strip()]
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
            return first + _clause(right, first[-1])
        except NotUnderstood:
            continue
    return [parse(words)]  # no way to read it: the single step's own refusal


def _resolve(clause: str, before: Command | None) -> str:
    """The clause with "it" (and the like) replaced by the object of the step before."""
    if before is None:
        return clause
    text = f" {clause} "
    for pronoun in PRONOUNS:
        text = re.sub(rf" {pronoun} ", f" the {before.obj} ", text, count=1)
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

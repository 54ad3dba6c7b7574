"""Several steps in one command (sims/plans.py): joiners, "it" for the step before's
object, one suite phrasing kept whole, and a plan grounded or refused as a whole."""

from __future__ import annotations

import pytest

from sims.commands import NotInScene, NotUnderstood
from sims.plans import find_plan_scene, ground_plan, parse_plan


def _steps(text: str) -> list[str]:
    return [f"{c.task}: {c.summary()}" for c in parse_plan(text)]


def test_joiners_and_it():
    assert _steps("pick up the red block and put it in the green zone, then push the blue "
                  "one to the left edge") == [
        "pick: pick up the red block", "place: put the red block in the green zone",
        "push_to: push the blue block to the left edge"]
    assert _steps("touch the red block then touch the blue block. after that pick up the "
                  "green cube") == ["touch: touch the red block", "touch: touch the blue block",
                                    "pick: pick up the green cube"]
    assert _steps("stack the red block on the blue block; then touch it") == [
        "stack: stack the red block on the blue block", "touch: touch the red block"]


def test_one_phrasing_of_the_suite_stays_one_step():
    assert _steps("grab the red block and lift it") == ["pick: pick up the red block"]


def test_a_step_that_is_no_task_refuses_the_whole_naming_it():
    with pytest.raises(NotUnderstood, match='step 2, "fly to the moon"'):
        parse_plan("pick up the red block and then fly to the moon")


def test_a_plan_is_grounded_as_a_whole():
    plan = parse_plan("pick up the red block, then put it in the green zone")
    task, seed, split = find_plan_scene(plan, 0)
    from sims.env import TabletopEnv

    env = TabletopEnv(task, image_size=8, mode="eval", random_start=False)
    try:
        env.reset(seed=seed, options={"split": split})
        goals = ground_plan(plan, env.goal)
        assert goals[0].target is goals[1].target and goals[1].zone.color == "green"
    finally:
        env.close()
    with pytest.raises(NotInScene, match="step 2"):
        find_plan_scene(parse_plan("pick up the red block, then touch the magenta block"))


def test_what_the_compound_benchmark_found():
    """benchmarks/compound_commands.py's failures, each now a rule: a capitalised joiner
    after a full stop; "that" as a determiner is not "it"; "grab X and hold it" is one
    step; a non-task joined by "and" to a step is refused, not dropped as filler."""
    steps = parse_plan("pick up the red block. After that, put it in the green zone")
    assert [s.summary() for s in steps] == ["pick up the red block",
                                            "put the red block in the green zone"]
    steps = parse_plan("touch the red block, then grab that blue block")
    assert steps[1].summary() == "pick up the blue block"
    steps = parse_plan("push the red block to the center and then put that in the green zone")
    assert steps[1].summary() == "put the red block in the green zone"
    assert len(parse_plan("grab that yellow cube and hold it, then touch the red block")) == 2
    with pytest.raises(NotUnderstood, match="'open the door'"):
        parse_plan("touch the red block and open the door")
    assert len(parse_plan("go ahead and lift the red block")) == 1  # filler, not a step

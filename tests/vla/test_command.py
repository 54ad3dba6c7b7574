"""`vla command` understands the typed words: parsing, grounding, refusal, judging."""

from __future__ import annotations

import json

import pytest

from sims.commands import (
    NotInScene,
    NotUnderstood,
    find_scene,
    ground,
    parse,
    phrasings,
    same_goal,
)
from sims.env import TabletopEnv
from sims.experts import make_expert
from sims.splits import SPLITS, check_split
from sims.tasks import TASKS
from tests.vla.test_bridges_cli import vla


@pytest.mark.parametrize("task", list(TASKS))
def test_every_phrasing_of_every_template_grounds_to_the_scenes_own_goal(task):
    env = TabletopEnv(task, image_size=8, mode="eval", random_start=False)
    checked = set()
    for split in SPLITS:
        try:
            check_split(split, task)
        except ValueError:
            continue
        for seed in range(4):
            env.reset(seed=seed, options={"split": split})
            for text, _ in [(env.goal.instruction, None), *phrasings(task, env.goal)]:
                command = parse(text)
                assert command.task == task, text
                assert same_goal(ground(command, env.goal), env.goal), text
                checked.add(text.split(" the ")[0])
    env.close()
    assert len(checked) >= 5  # many templates, not one


def test_parsing_prefers_the_reading_the_vocabulary_knows_and_tolerates_typing():
    assert parse("set the block down on the green zone").task == "place"
    command = parse("Please, stack the red cube on top of the grey block!")
    assert (command.task, str(command.obj), str(command.other)) == ("stack", "red cube",
                                                                     "gray block")
    assert parse("pick up blue block").summary() == "pick up the blue block"
    assert parse("nudge the red block toward the near left corner").location == \
        "bottom left corner"
    with pytest.raises(NotUnderstood, match="I can pick up"):
        parse("fly to the moon")


def test_grounding_names_what_is_missing_and_what_is_there():
    env = TabletopEnv("place", image_size=8, mode="eval", random_start=False)
    env.reset(seed=3)
    present = {o.color for o in env.goal.objects}
    absent = next(c for c in ("orange", "purple", "pink", "white") if c not in present)
    with pytest.raises(NotInScene, match=f"no {absent} block here.*The scene has a"):
        ground(parse(f"pick up the {absent} block"), env.goal)
    with pytest.raises(NotInScene, match="I do not know the word 'elephant'"):
        ground(parse("pick up the purple elephant"), env.goal)
    zone = env.goal.zone.color
    obj = env.goal.target.color
    goal = ground(parse(f"put the {obj} {env.goal.target.shape} in the {zone} zone"),
                  env.goal)
    assert same_goal(goal, env.goal)
    env.close()


def test_a_typed_command_is_judged_by_the_simulator_not_the_scenes_task():
    """In a stack scene, "touch the <base>" driven by the expert succeeds as a touch,
    while the scene's own stack goal was never attempted."""
    env = TabletopEnv("stack", image_size=16, mode="eval")
    env.reset(seed=5)
    base = env.goal.other
    command = parse(f"touch the {base.color} {base.shape}")
    obs = env.set_goal("touch", ground(command, env.goal))
    assert obs["instruction"] == command.text
    expert = make_expert(env)
    for _ in range(TASKS["touch"].max_steps):
        _, _, done, _, info = env.step(expert.act())
        if done:
            break
    assert info["success"] and info["task"] == "touch"
    assert not TASKS["stack"](env.p, env.robot).success(_stack_goal(env, base))
    env.close()


def _stack_goal(env, base):
    from sims.tasks import Goal

    top = next(o for o in env.goal.objects if o is not base)
    return Goal("", top, other=base, objects=env.goal.objects)


def test_find_scene_prefers_a_scene_made_for_the_command():
    command = parse("put the red block in the blue zone")
    seed, split = find_scene(command, seed=0)
    env = TabletopEnv("place", image_size=8, mode="eval", random_start=False)
    env.reset(seed=seed, options={"split": split})
    assert same_goal(ground(command, env.goal), env.goal)
    env.close()


def test_cli_refuses_before_moving_with_distinct_exit_statuses():
    done = vla("command", "fly to the moon", "--json")
    assert done.returncode == 3, done.stderr
    report = json.loads(done.stdout)
    assert report["refused"] and report["understood"] is None
    done = vla("command", "pick up the purple elephant")
    assert done.returncode == 4, done.stderr
    assert "understood \"pick up the purple elephant\" as pick" in done.stdout
    assert "refused, nothing moved" in done.stdout and "'elephant'" in done.stdout
    # An explicit scene that lacks what is named: the scene's contents are listed.
    done = vla("command", "pick up the orange block", "--scene", "pick", "--seed", "0",
               "--policy", "builtin:hold", "--json")
    assert done.returncode == 4, done.stderr
    assert "The scene has" in json.loads(done.stdout)["reason"]


def test_cli_auto_scene_runs_the_typed_task(tmp_path):
    done = vla("command", "pick up the red block", "--policy", "builtin:hold",
               "--max-steps", "3", "--json")
    assert done.returncode == 1, done.stderr  # ran, not done (hold never lifts)
    report = json.loads(done.stdout)
    assert report["task"] == "pick" and report["scene"] == "sims/Pick-v0"
    assert report["understood"] == "pick up the red block" and report["steps"] == 3


def test_a_compound_command_prints_its_plan_and_runs_step_by_step(capsys):
    from vla.cli import main

    code = main(["command", "pick up the red block and put it in the green zone, then touch "
                 "the blue block", "--policy", "builtin:hold", "--max-steps", "4", "--json"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 1 and out["failed_step"] == 1  # holding still picks nothing up
    assert [s["understood"] for s in out["plan"]] == ["pick up the red block"]
    assert out["plan"][0]["steps"] <= 4


def test_a_compound_command_naming_what_is_absent_is_refused_before_moving(capsys):
    from vla.cli import main

    code = main(["command", "touch the red block, then pick up the purple elephant",
                 "--policy", "builtin:hold", "--json"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 4 and out["refused"] and "step 2" in out["reason"]
    assert "touch: touch the red block" in out["understood"]

"""Stage-by-stage failure analysis in `vla eval`, and the validation stream."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest

import sims  # noqa: F401  (registers the envs)
from sims.experts import make_expert
from sims.scene import ZONE_HALF
from sims.stages import CARRY_OVER_BASE_M, GOAL_TASKS, NONE, STAGES, StageTracker
from vla.cli import main


def test_eval_reports_stages_and_groups_failure_videos(tmp_path, capsys):
    out = tmp_path / "eval"
    # builtin:hold never moves, so every episode fails before its first stage.
    assert main(["eval", "--checkpoint", "builtin:hold", "--tasks", "pick", "--splits", "L1",
                 "--episodes", "2", "--out", str(out), "--json"]) == 0
    captured = capsys.readouterr()
    assert "1 task/split cells x 2 episodes" in captured.err
    assert "evaluation stream (mode=eval)" in captured.err
    printed = json.loads(captured.out)
    saved = json.loads((out / "results.json").read_text())
    assert saved["mode"] == printed["mode"] == "eval"
    for result in (printed, saved):
        cell = result["cells"]["sims/Pick-v0/L1"]
        assert cell["stage_order"] == list(STAGES["pick"])
        fractions = [cell["stages"][s] for s in STAGES["pick"]]
        assert all(a >= b for a, b in zip(fractions, fractions[1:]))  # never rises
        assert cell["stages"]["success"] == cell["success"] == 0.0
        assert cell["stopped_at"] == {NONE: 2, "reach": 0, "grasp": 0, "lift": 0}
    # One video per (cell, stopped stage): both episodes stopped at "none".
    videos = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.mp4"))
    assert videos == ["videos/failures/none/Pick-v0_L1_s0.mp4"]
    assert [(v["stage"], v["video"]) for v in saved["videos"]] == [("none", videos[0])]
    table = (out / "stages.md").read_text()
    assert "| sims/Pick-v0 | L1 | 0% | 0% | 0% | 0% | none 2 | - |" in table


def test_failures_say_how_near_the_target_came_to_its_goal(tmp_path, capsys):
    # builtin:hold never moves: every push_to block stays where it started, at least
    # 12 cm from its board location (sims/tasks.py keeps the start that far).
    assert main(["eval", "--checkpoint", "builtin:hold", "--tasks", "push_to", "--splits",
                 "L1", "--episodes", "2", "--out", str(tmp_path), "--json"]) == 0
    cell = json.loads(capsys.readouterr().out)["cells"]["sims/PushTo-v0/L1"]
    closest = cell["failures_closest_m"]
    assert closest["n"] == 2 and 0.12 <= closest["p25"] <= closest["median"]
    assert f"| {100 * closest['median']:.1f} cm [" in (tmp_path / "stages.md").read_text()


def test_eval_on_the_validation_stream_says_so(capsys):
    assert main(["eval", "--checkpoint", "builtin:hold", "--tasks", "touch", "--splits", "L1",
                 "--episodes", "1"]) == 0
    captured = capsys.readouterr()
    assert "evaluation stream (mode=eval)" in captured.err
    assert main(["eval", "--checkpoint", "builtin:hold", "--tasks", "touch", "--splits", "L1",
                 "--episodes", "1", "--validation"]) == 0
    captured = capsys.readouterr()
    assert "validation stream (mode=val)" in captured.err
    assert captured.out.startswith("Validation stream (mode=val)")
    assert "| sims/Touch-v0 | L1 | 0% | 0% | none 1 | - |" in captured.out


# How near success puts the target to its goal: inside the zone (its corner is furthest),
# on the base, within push_to's 5 cm and push_next's 7.5 cm.
GOAL_TOLERANCE_M = {"place": ZONE_HALF * 2 ** 0.5, "stack": CARRY_OVER_BASE_M,
                    "push_to": 0.05, "push_next": 0.075}


@pytest.mark.parametrize("env_id", ["sims/Pick-v0", "sims/Place-v0", "sims/Stack-v0",
                                    "sims/PushTo-v0", "sims/PushNext-v0", "sims/Touch-v0"])
def test_the_expert_passes_through_every_stage_in_order(env_id):
    env = gym.make(env_id, mode="eval", image_size=32)
    task = env.unwrapped.task_name
    try:
        env.reset(seed=0)
        expert, tracker = make_expert(env), StageTracker(env)
        tracker.reset()
        start_distance = tracker.closest_m
        seen, done = [tracker.furthest], False
        while not done:
            _, _, terminated, truncated, info = env.step(expert.act())
            stage = tracker.update(info["success"])
            if stage != seen[-1]:
                seen.append(stage)
            done = terminated or truncated
        assert info["success"]
        # Each stage's own test held at some step (none was skipped), in order.
        assert seen == [NONE, *STAGES[task]]
        assert tracker.reached() == list(STAGES[task])
        # The closest approach ends inside the task's own tolerance, from further away.
        if task in GOAL_TASKS:
            assert tracker.closest_m <= GOAL_TOLERANCE_M[task] < start_distance
        else:
            assert tracker.closest_m is None
    finally:
        env.close()


def _episodes(mode: str, seeds: range) -> list[tuple[str, np.ndarray]]:
    env = gym.make("sims/Pick-v0", mode=mode, image_size=16, random_start=False)
    try:
        out = []
        for seed in seeds:
            env.reset(seed=seed)
            core = env.unwrapped
            out.append((core.goal.instruction,
                        np.stack([core.task.pos(o) for o in core.goal.objects])))
        return out
    finally:
        env.close()


def test_validation_episodes_differ_from_evaluation_ones():
    seeds = range(50)
    val, ev = _episodes("val", seeds), _episodes("eval", seeds)
    for (_, pos_v), (_, pos_e) in zip(val, ev):
        assert pos_v.shape != pos_e.shape or not np.allclose(pos_v, pos_e, atol=1e-3)
    assert [text for text, _ in val] != [text for text, _ in ev]
    assert _episodes("val", range(2))[1][0] == val[1][0]  # and each stream is reproducible


def test_videos_are_kept_per_stopped_stage_and_counted(tmp_path, monkeypatch):
    """Bookkeeping of `evaluate`, with the episodes' outcomes made up (no policy runs)."""
    from bridges.contract import ActionContract
    from vla.eval import run
    from vla.eval.report import write_report
    from vla.serving.policies import load_policy

    outcomes = {0: "success", 1: "grasp", 2: "grasp", 3: NONE, 4: "success", 5: "lift"}
    closest = {0: 0.0, 1: 0.02, 2: 0.04, 3: 0.06, 4: 0.0, 5: 0.08}  # m, made up too

    def fake_episode(policy, env, seed, execute_steps, record):
        stage = outcomes[seed]
        frames = [np.full((8, 8, 3), seed, np.uint8)] * 3 if record else []
        return run.Episode(stage == "success", 10, f"episode {seed}", frames, stage,
                           closest[seed])

    monkeypatch.setattr(run, "run_episode", fake_episode)
    env = gym.make("sims/Pick-v0")
    policy = load_policy("builtin:hold", contract=ActionContract.from_env(env))
    env.close()
    result = run.evaluate(policy, ["sims/Pick-v0"], ["L1"], 6, videos=1, progress=False)
    cell = result["cells"]["sims/Pick-v0/L1"]
    assert cell["stages"] == {"reach": 5 / 6, "grasp": 5 / 6, "lift": 3 / 6, "success": 2 / 6}
    assert cell["stopped_at"] == {NONE: 1, "reach": 0, "grasp": 2, "lift": 1}
    # Only the failures' closest approaches count: 2, 4, 6, 8 cm.
    assert cell["failures_closest_m"] == {"p25": 0.035, "median": 0.05, "p75": 0.065, "n": 4}
    assert [(v["seed"], v["stage"]) for v in result["videos"]] == [
        (0, "success"), (1, "grasp"), (3, NONE), (5, "lift")]
    write_report(result, tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.mp4")) == [
        "videos/failures/grasp/Pick-v0_L1_s1.mp4", "videos/failures/lift/Pick-v0_L1_s5.mp4",
        "videos/failures/none/Pick-v0_L1_s3.mp4", "videos/successes/Pick-v0_L1_s0.mp4"]
    assert ("| sims/Pick-v0 | L1 | 83% | 83% | 50% | 33% | none 1, grasp 2, lift 1 "
            "| 5.0 cm [3.5, 6.5] |") in (
        tmp_path / "stages.md").read_text()


def test_workers_give_the_serial_results(tiny_checkpoint, capsys):
    args = ["eval", "--checkpoint", tiny_checkpoint, "--tasks", "pick", "--splits", "L1",
            "--episodes", "3", "--json"]
    assert main(args) == 0
    serial = json.loads(capsys.readouterr().out)
    assert main([*args, "--workers", "2"]) == 0
    captured = capsys.readouterr()
    assert "2 workers" in captured.err
    parallel = json.loads(captured.out)
    assert parallel["cells"] == serial["cells"]


def test_eval_reports_success_per_phrasing(tmp_path, capsys):
    from sims.language import TEMPLATES

    assert main(["eval", "--checkpoint", "builtin:hold", "--tasks", "touch", "--splits", "L2",
                 "--episodes", "6", "--out", str(tmp_path), "--json"]) == 0
    phrasings = json.loads(capsys.readouterr().out)["cells"]["sims/Touch-v0/L2"]["phrasings"]
    # L2: half held-out colour combinations (training phrasings), half held-out phrasings;
    # every episode is counted under the template that made its instruction
    train, held = TEMPLATES["touch"]
    assert set(phrasings) <= {*train, *held} and set(phrasings) & set(held)
    assert sum(c["episodes"] for c in phrasings.values()) == 6
    assert all(c["successes"] == 0 for c in phrasings.values())  # hold never touches
    table = (tmp_path / "phrasings.md").read_text()
    for template, count in phrasings.items():
        assert f"| sims/Touch-v0 | L2 | {template} | 0/{count['episodes']} |" in table


def test_vla_eval_chains_reports_calvins_metric(capsys):
    import json

    from vla.cli import main

    assert main(["eval", "--checkpoint", "builtin:hold", "--chains", "2", "--splits",
                 "L1,L4", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    l1 = result["splits"]["L1"]
    assert list(result["splits"]) == ["L1"]  # the held-out task has no chains
    assert l1["average_length"] == 0.0 and l1["chains"] == 2  # holding still does nothing
    assert set(l1["completed_at_least"]) == {"1", "2", "3", "4", "5"}
    assert l1["completed_at_least"]["1"]["success"] == 0.0
    assert main(["eval", "--chains", "-1"]) == 2


def test_vla_eval_chains_films_the_first_chains_with_each_steps_words(tmp_path, capsys):
    import cv2

    from sims.tasks import TASKS
    from vla.cli import main

    assert main(["eval", "--checkpoint", "builtin:hold", "--chains", "2", "--splits", "L1",
                 "--videos", "1", "--out", str(tmp_path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    films = sorted((tmp_path / "videos" / "chains" / "L1").glob("*.mp4"))
    assert [f.name for f in films] == ["chain_0000_0of5.mp4"]  # the first chain only
    video = cv2.VideoCapture(str(films[0]))
    frames = int(video.get(cv2.CAP_PROP_FRAME_COUNT))
    video.release()
    # Holding still: step 1 runs its whole budget, one frame each, after the first.
    budgets = {task.max_steps + 1 for task in TASKS.values()}
    assert frames in budgets
    assert result["splits"]["L1"]["chains"] == 2
    assert (tmp_path / "chains.json").is_file()

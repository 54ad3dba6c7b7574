"""Chains of five instructions in one scene (sims/chains.py): drawn from their seed, each
step possible from where the last leaves things, carried out by the scripted experts."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import sims  # noqa: F401  (registers the envs)
from sims.chains import TASK_ORDER, run_chain, sample_chain
from sims.experts import make_expert


@pytest.fixture(scope="module")
def env():
    e = gym.make("sims/Place-v0", split="L1", mode="eval", image_size=32)
    yield e
    e.close()


def test_a_chain_is_every_training_task_once_in_an_order_each_can_follow(env):
    for seed in range(20):
        steps = sample_chain(env, seed)
        tasks = [s.task for s in steps]
        assert sorted(tasks) == sorted(TASK_ORDER)
        for before, after in zip(steps, steps[1:]):
            if before.task == "pick":  # the block in the hand is put down next
                assert after.task in ("place", "stack") and after.goal.target is before.goal.target
        for step in steps:
            if step.task == "stack":
                assert step.goal.other is not step.goal.target


def test_a_chain_is_a_pure_function_of_its_seed(env):
    first = [(s.task, s.goal.instruction) for s in sample_chain(env, 3)]
    sample_chain(env, 4)
    assert [(s.task, s.goal.instruction) for s in sample_chain(env, 3)] == first


def test_the_experts_carry_out_chains_from_where_each_step_leaves_things(env):
    lengths = []
    for seed in range(8):
        steps = sample_chain(env, seed)
        expert = make_expert(env)
        lengths.append(sum(run_chain(env, steps, lambda obs: [expert.act()])))
    assert np.mean(lengths) >= 4.0, lengths


def test_a_chain_step_env_starts_where_the_steps_before_left_things(env, tmp_path):
    """sims/ChainStep-v0: seed 5c + k is step k + 1 of chain c, its scene as the expert
    left it after steps 1..k (a fresh scene for k = 0), its words and task the step's."""
    steps = sample_chain(env, 1)
    chain = gym.make("sims/ChainStep-v0", split="L1", mode="eval", image_size=32)
    first, _ = chain.reset(seed=5)
    assert first["instruction"] == steps[0].goal.instruction
    start = chain.unwrapped.robot.ee_pose()[0]
    for k in range(1, 5):
        obs, info = chain.reset(seed=5 + k)
        base = chain.unwrapped
        assert obs["instruction"] == steps[k].goal.instruction
        assert info["task"] == steps[k].task == base.episode_metadata()["task"]
        assert base.episode_metadata()["chain_position"] == k + 1
        assert obs["images"]["front"].shape == (32, 32, 3)  # the step itself is seen
    moved = np.linalg.norm(base.robot.ee_pose()[0] - start)
    assert moved > 0.05  # four steps in, the hand is not where a fresh scene puts it
    budget = sims.tasks.TASKS[steps[4].task].max_steps
    ran = 0
    for _ in range(budget):
        _, _, done, truncated, _ = chain.step(np.zeros(5, np.float32))
        ran += 1
        if done or truncated:
            break
    assert truncated and ran == budget  # the step's own task's budget
    chain.close()


def test_vla_collect_gathers_chained_demonstrations(tmp_path):
    from vla.cli import main
    from vla.data.store import DatasetDir

    assert main(["collect", "--task", "chain_step", "--episodes", "3", "--out",
                 str(tmp_path / "chains"), "--workers", "1", "--image-size", "32"]) == 0
    episodes = DatasetDir.open(tmp_path / "chains").episode_paths()
    assert len(episodes) == 3

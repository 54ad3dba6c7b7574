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

"""The grasping expert turns the hand only near the block, where a camera can see why."""

import gymnasium as gym
import numpy as np

import sims  # noqa: F401  (registers the envs)
from sims.experts import ROTATE_XY, YAW_TOL, make_expert
from sims.robots import wrap_gripper_yaw
from sims.scene import SHAPES, object_pose


def _misaligned_cube_seed(env, expert) -> int:
    """A seed whose target is a box turned well away from the hand's yaw."""
    for seed in range(60):
        env.reset(seed=seed)
        target = env.unwrapped.goal.target
        if SHAPES[target.shape][0] != "box":
            continue
        error = wrap_gripper_yaw(expert.grasp_yaw(target) - expert.ee()[1])
        if abs(error) > 0.3:
            return seed
    raise AssertionError("no seed in 0..59 has a box target turned > 0.3 rad from the hand")


def test_turning_starts_within_a_few_centimetres():
    # Near enough that the block is large in the views, far enough to finish the turn
    # during the descent (docs/RESULTS.md, "The policy never learned to turn the hand").
    assert 0.015 <= ROTATE_XY <= 0.05


def test_pick_expert_turns_only_near_the_block_and_grasps_aligned():
    env = gym.make("sims/Pick-v0", mode="eval")
    expert = make_expert(env)
    seed = _misaligned_cube_seed(env, expert)
    env.reset(seed=seed)
    target = env.unwrapped.goal.target
    far_turns, near_turns, done, info = [], [], False, {}
    closed_yaw_error = None
    while not done:
        action = expert.act()
        ee, ee_yaw = expert.ee()
        xy_err = float(np.linalg.norm(ee[:2] - object_pose(env.unwrapped.p, target)[0][:2]))
        (far_turns if xy_err >= ROTATE_XY else near_turns).append(abs(float(action[3])))
        if action[4] < 0 and closed_yaw_error is None:  # the first close
            closed_yaw_error = abs(wrap_gripper_yaw(expert.grasp_yaw(target) - ee_yaw))
        _, _, terminated, truncated, info = env.step(action)
        done = terminated or truncated
    env.close()
    assert info["success"]
    assert far_turns and near_turns, "the episode never had the hand both far and near"
    assert max(far_turns) == 0.0, "the hand turned on the way to the block"
    assert max(near_turns) > 0.1, "the hand never turned to the block's yaw"
    assert closed_yaw_error is not None and closed_yaw_error < YAW_TOL

"""The SO-101 twin: its numpy kinematics agree with PyBullet, it tracks a top-down pose,
its tasks live on its own board, and its scripted experts solve them."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pybullet
import pytest

import sims  # noqa: F401  (registers the envs)
from bridges.kinematics import Chain, top_down
from sims.experts import make_expert
from sims.so101 import SO101_WORKSPACE, URDF, SO101Arm


def test_forward_kinematics_matches_pybullet_on_the_vendored_urdf():
    client = pybullet.connect(pybullet.DIRECT)
    try:
        body = pybullet.loadURDF(str(URDF), useFixedBase=True, physicsClientId=client)
        chain = Chain(URDF, "gripper_frame_link")
        assert chain.names == ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex",
                               "wrist_roll")
        rng = np.random.default_rng(0)
        for _ in range(5):
            q = rng.uniform(chain.lower, chain.upper)
            for j, angle in enumerate(q):
                pybullet.resetJointState(body, j, angle, physicsClientId=client)
            link = pybullet.getLinkState(body, 5, computeForwardKinematics=True,
                                         physicsClientId=client)
            pose = chain.forward(q)
            rotation = np.array(pybullet.getMatrixFromQuaternion(link[5])).reshape(3, 3)
            assert np.allclose(pose[:3, 3], link[4], atol=1e-6)
            assert np.allclose(pose[:3, :3], rotation, atol=1e-6)
    finally:
        pybullet.disconnect(client)


def test_top_down_solve_reaches_the_board_pointing_down_at_the_asked_yaw():
    chain = SO101Arm.chain
    q = np.array([0.0, -0.26, 0.47, 1.36, 0.0])
    for x, y, z, yaw in [(0.15, -0.08, 0.01, 0.3), (0.25, 0.08, 0.03, -0.5),
                         (0.2, 0.0, 0.05, 1.2)]:
        q, err = chain.solve(top_down([x, y, z], yaw), q)
        pose = chain.forward(q)
        assert err < 1e-4
        assert pose[2, 2] < -0.999  # the approach axis points down
        assert math.isclose(math.atan2(pose[1, 0], pose[0, 0]), yaw, abs_tol=1e-3)
        assert np.all(q >= chain.lower) and np.all(q <= chain.upper)


def test_a_chain_names_what_it_cannot_follow():
    with pytest.raises(ValueError, match="no joint leads to link 'hand'"):
        Chain(URDF, "hand")
    with pytest.raises(ValueError, match=r"shape \(3,\); expected \(5,\)"):
        SO101Arm.chain.forward(np.zeros(3))


def test_twin_scene_lies_on_its_own_board_with_its_own_sizes():
    env = gym.make("sims/Pick-SO101-v0")
    obs, info = env.reset(seed=4)
    base = env.unwrapped
    assert info["robot"] == "so101" and obs["state"].shape == (6,)
    low, high = SO101_WORKSPACE.low, SO101_WORKSPACE.high
    for obj in base.goal.objects:
        xy = np.array(pybullet.getBasePositionAndOrientation(obj.body,
                                                            physicsClientId=base.p._client)[0][:2])
        assert np.all(xy >= low - 1e-9) and np.all(xy <= high + 1e-9)
        assert obj.half_height <= 0.0101  # 2 cm blocks, not the Panda's 4 cm
    assert base.goal.locations["center"] == pytest.approx(SO101_WORKSPACE.center)
    assert base.contract_fields()["robot"] == "so101"
    env.close()


@pytest.mark.parametrize("task", ["Pick", "Touch", "PushTo"])
def test_twin_experts_solve_its_tasks_on_held_out_seeds(task):
    env = gym.make(f"sims/{task}-SO101-v0", mode="eval")
    solved = 0
    for seed in range(4):
        env.reset(seed=seed)
        expert = make_expert(env)
        done = truncated = False
        while not (done or truncated):
            _, _, done, truncated, info = env.step(expert.act())
        solved += info["success"]
    env.close()
    assert solved >= 3, f"{task}: {solved}/4"

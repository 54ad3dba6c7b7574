"""The task suite through its public entry point: `gymnasium.make("sims/...")`."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import sims
from sims.experts import make_expert
from sims.language import TEMPLATES
from sims.scene import SHAPES, TRAIN_COLORS, UNSEEN_COLORS
from sims.splits import HELD_OUT_COMBOS, HELD_OUT_TASK
from sims.tasks import TASKS


def rollout_digest(env_id: str, seed: int, steps: int = 6) -> str:
    """Hash of the images and states of a short expert rollout."""
    env = gym.make(env_id)
    obs, _ = env.reset(seed=seed)
    expert = make_expert(env)
    digest = hashlib.sha256()
    for _ in range(steps):
        digest.update(obs["images"]["front"].tobytes())
        digest.update(obs["state"].tobytes())
        obs, *_ = env.step(expert.act())
    env.close()
    return digest.hexdigest()


@pytest.mark.parametrize("env_id", sims.ENV_IDS)
def test_every_registered_env_passes_the_gymnasium_checker(env_id):
    env = gym.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)
    obs, info = env.reset(seed=1)
    assert obs["images"]["front"].shape == (128, 128, 3)
    assert obs["images"]["front"].dtype == np.uint8
    assert obs["state"].shape == (6,)
    assert isinstance(obs["instruction"], str) and obs["instruction"]
    assert info["success"] is False
    env.close()


@pytest.mark.parametrize("env_id", sims.ENV_IDS)
def test_scripted_expert_solves_each_task(env_id):
    env = gym.make(env_id, mode="eval")
    successes = 0
    for seed in range(3):
        env.reset(seed=seed)
        expert = make_expert(env)
        terminated = truncated = False
        while not (terminated or truncated):
            _, reward, terminated, truncated, info = env.step(expert.act())
        successes += info["success"]
        assert reward == float(info["success"])
    assert successes >= 2, f"{env_id}: expert solved {successes}/3"
    env.close()


def test_episode_ends_by_truncation_at_max_episode_steps():
    env = gym.make("sims/Touch-v0")
    env.reset(seed=0)
    limit = env.spec.max_episode_steps
    steps = 0
    truncated = False
    while not truncated and steps <= limit:
        _, _, terminated, truncated, _ = env.step(np.array([0, 0, 1, 0, 1], np.float32))
        steps += 1
        assert not terminated
    assert truncated and steps == limit


def test_same_seed_same_episode_in_one_process_and_across_processes():
    first = rollout_digest("sims/Stack-v0", seed=11)
    assert rollout_digest("sims/Stack-v0", seed=11) == first
    assert rollout_digest("sims/Stack-v0", seed=12) != first
    code = (
        "import sys; sys.path.insert(0, 'tests/sims'); from test_envs import rollout_digest; "
        "print(rollout_digest('sims/Stack-v0', seed=11))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == first


def test_reset_after_other_episodes_reproduces_the_episode():
    env = gym.make("sims/PushTo-v0")
    obs_a, _ = env.reset(seed=5)
    env.reset(seed=6)
    env.step(env.action_space.sample())
    obs_b, _ = env.reset(seed=5)
    assert np.array_equal(obs_a["images"]["front"], obs_b["images"]["front"])
    assert obs_a["instruction"] == obs_b["instruction"]


def _sim_snapshot(env) -> list:
    u = env.unwrapped
    return [u.p.getBasePositionAndOrientation(o.body) for o in u.goal.objects] + [
        u.robot.state().tolist(), u.steps,
    ]


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.array([0, 0, np.nan, 0, 0]), "not finite in ['dz']"),
        (np.zeros(4), "shape (4,)"),
        (np.zeros((1, 5)), "shape (1, 5)"),
        ("left", "float array"),
    ],
)
def test_bad_actions_raise_and_leave_the_sim_untouched(bad, message):
    env = gym.make("sims/Pick-v0")
    env.reset(seed=0)
    before = _sim_snapshot(env)
    with pytest.raises(ValueError) as err:
        env.step(bad)
    assert message in str(err.value)
    assert _sim_snapshot(env) == before


def test_out_of_range_actions_are_clipped():
    results = []
    for scale in (1.0, 7.0):
        env = gym.make("sims/Pick-v0")
        env.reset(seed=2)
        obs, *_ = env.step(np.array([scale, -scale, 0, 0, scale], np.float32))
        results.append(obs["state"])
    np.testing.assert_array_equal(results[0], results[1])


def test_episodes_start_from_random_hand_poses_unless_turned_off():
    env = gym.make("sims/Pick-v0")
    starts = [env.reset(seed=s)[0]["state"] for s in range(4)]
    assert len({tuple(np.round(x[:3], 3)) for x in starts}) == 4  # four different poses
    np.testing.assert_array_equal(env.reset(seed=2)[0]["state"], starts[2])
    for x in starts:  # above the board, gripper open
        assert 0.38 <= x[0] <= 0.62 and abs(x[1]) <= 0.17 and x[2] > 0.25 and x[5] > 0.9
    fixed = gym.make("sims/Pick-v0", random_start=False)
    homes = [fixed.reset(seed=s)[0]["state"] for s in range(2)]
    np.testing.assert_allclose(homes[0], homes[1], atol=1e-4)
    layout = [o["images"]["front"] for o in (env.reset(seed=5)[0], fixed.reset(seed=5)[0])]
    assert env.unwrapped.goal.instruction == fixed.unwrapped.goal.instruction
    assert not np.array_equal(*layout)  # same objects, the arm elsewhere


def test_image_size_and_wrist_camera_are_configurable():
    env = gym.make("sims/Pick-v0", image_size=(64, 96), wrist_camera=True)
    obs, _ = env.reset(seed=0)
    assert obs["images"]["front"].shape == (64, 96, 3)
    assert obs["images"]["wrist"].shape == (64, 96, 3)
    assert env.observation_space["images"]["wrist"].shape == (64, 96, 3)


def _instructions(env_id: str, split: str, n: int, mode: str = "eval") -> list[str]:
    env = gym.make(env_id, split=split, mode=mode)
    return [env.reset(seed=s)[0]["instruction"] for s in range(n)]


def _target_colour(env) -> str:
    return env.unwrapped.goal.target.color


def test_l1_never_shows_a_held_out_colour_task_combination():
    env = gym.make("sims/Pick-v0")
    colours = {(env.reset(seed=s), _target_colour(env))[1] for s in range(40)}
    assert HELD_OUT_COMBOS["pick"] not in colours
    assert colours <= set(TRAIN_COLORS)


def test_l2_uses_held_out_combinations_or_held_out_phrasings():
    env = gym.make("sims/Touch-v0", split="L2", mode="eval")
    held_phrasings = [t.split("{")[0] for t in TEMPLATES["touch"][1]]
    for seed in range(20):
        obs, _ = env.reset(seed=seed)
        combo = _target_colour(env) == HELD_OUT_COMBOS["touch"]
        phrasing = any(obs["instruction"].startswith(p) for p in held_phrasings)
        assert combo or phrasing, obs["instruction"]


def test_l3_targets_unseen_colours_and_sometimes_the_unseen_shape():
    env = gym.make("sims/Pick-v0", split="L3", mode="eval")
    shapes = set()
    for seed in range(30):
        obs, _ = env.reset(seed=seed)
        assert _target_colour(env) in UNSEEN_COLORS
        assert _target_colour(env) in obs["instruction"]
        shapes.add(env.unwrapped.goal.target.shape)
    assert "bar" in shapes and shapes <= set(SHAPES)


def test_l4_is_only_the_held_out_task():
    with pytest.raises(ValueError, match="held-out task"):
        gym.make("sims/Pick-v0", split="L4")
    env = gym.make("sims/PushNext-v0", split="L4", mode="eval")
    assert env.unwrapped.task_name == HELD_OUT_TASK
    env.reset(seed=0)


def test_training_and_evaluation_streams_differ_for_the_same_seed():
    train = _instructions("sims/Stack-v0", "L1", 8, mode="train")
    evaluation = _instructions("sims/Stack-v0", "L1", 8, mode="eval")
    assert train != evaluation


def test_objects_are_named_by_colour_and_by_shape_only_when_needed():
    env = gym.make("sims/Pick-v0")
    for seed in range(40):
        obs, _ = env.reset(seed=seed)
        goal = env.unwrapped.goal
        shared = [o for o in goal.objects if o.color == goal.target.color]
        shape_named = f"{goal.target.color} {goal.target.shape}" in obs["instruction"]
        assert shape_named == (len(shared) > 1), obs["instruction"]


def test_unknown_names_get_clear_errors():
    with pytest.raises(ValueError, match="task='lift' is unknown"):
        gym.make("sims/Pick-v0", task="lift")
    with pytest.raises(ValueError, match="split='L9'"):
        gym.make("sims/Pick-v0").reset(seed=0, options={"split": "L9"})
    with pytest.raises(ValueError, match="mode='test'"):
        gym.make("sims/Pick-v0", mode="test")


def _layout(env) -> tuple:
    """What makes an episode the same episode: instruction, objects, zones, positions."""
    goal = env.goal
    objects = tuple((o.color, o.shape, *np.round(env.task.pos(o)[:2], 3)) for o in goal.objects)
    zones = tuple((z.color, *np.round(z.center, 3)) for z in goal.zones)
    return goal.instruction, objects, zones


@pytest.mark.parametrize("task", list(TASKS))
def test_no_evaluation_or_validation_episode_is_a_training_episode(task):
    """Over many seeds, the streams share no episode (same layout and instruction), and
    the seeds that drive them never repeat a stream's first draws either."""
    from sims.env import TabletopEnv
    from sims.splits import MODES, episode_rng

    split = "L4" if task == HELD_OUT_TASK else "L1"
    layouts = {}
    for mode in MODES:
        env = TabletopEnv(task, image_size=8, mode=mode, random_start=False)
        layouts[mode] = {_layout(env.unwrapped) for s in range(60)
                         if env.reset(seed=s, options={"split": split})}
        env.close()
        assert len(layouts[mode]) == 60  # different seeds, different episodes
    assert not layouts["train"] & layouts["eval"] and not layouts["train"] & layouts["val"]
    draws = {mode: {tuple(episode_rng(s, split, mode).random(2)) for s in range(20_000)}
             for mode in MODES}
    assert not draws["train"] & draws["eval"] and not draws["train"] & draws["val"]

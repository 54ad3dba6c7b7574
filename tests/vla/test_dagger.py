"""`vla dagger` through the CLI, and the stateless experts it relies on."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import h5py
import numpy as np
import pytest

import sims  # noqa: F401  (registers the envs)
from sims.experts import make_expert
from vla.cli import main
from vla.data.episode_file import read_attrs
from vla.data.store import DatasetDir
from vla.envs import resolve_env_id

TINY = str(Path(__file__).parents[2] / "configs" / "tiny_finetune.yaml")


def _attrs(dataset: Path) -> list[dict]:
    out = []
    for path in DatasetDir.open(dataset).episode_paths():
        with h5py.File(path, "r") as f:
            out.append({**read_attrs(f), "action": f["action"][()],
                        "executed": f["executed_action"][()]})
    return out


def _dagger(args: list[str]) -> int:
    return main(["dagger", "--config", TINY, *args, "episodes=2", "workers=1", "steps=2",
                 "eval_episodes=0", "tasks=['sims/Pick-v0']", "checkpoint_every=1"])


def test_dagger_rounds_relabel_rollouts_and_retrain(tiny_checkpoint, tiny_datasets,
                                                    tmp_path, capsys):
    out = tmp_path / "dagger"
    assert _dagger(["--checkpoint", tiny_checkpoint, "--data", *tiny_datasets, "--out",
                    str(out), "rounds=2", "beta=0.0"]) == 0
    printed = json.loads(capsys.readouterr().out)
    record = json.loads((out / "dagger.json").read_text())
    assert [r["round"] for r in record["rounds"]] == [1, 2]
    assert printed["final_checkpoint"] == str(out / "round_2" / "run" / "checkpoint")
    # Round 2 rolls out round 1's policy, and trains on the demonstrations plus both rounds.
    assert record["rounds"][0]["policy"] == str(Path(tiny_checkpoint))
    assert record["rounds"][1]["policy"] == str(out / "round_1" / "run" / "checkpoint")
    trained_on = (out / "round_2" / "run" / "train_config.yaml").read_text()
    for data in (*tiny_datasets, str(out / "round_1" / "data"), str(out / "round_2" / "data")):
        assert data in trained_on
    for r in (1, 2):
        episodes = _attrs(out / f"round_{r}" / "data")
        assert len(episodes) == 2
        cell = record["rounds"][r - 1]["rollouts"]["sims/Pick-v0"]
        assert cell["episodes"] == 2 and cell["frames"] == sum(e["n_frames"] for e in episodes)
        for e in episodes:
            assert e["relabelled"] and e["dagger_round"] == r and e["dagger_beta"] == 0.0
            assert e["seed"] >= r * 1_000_000  # never a demonstration's scene
            # beta = 0: the policy drove every step, the expert only labelled.
            assert e["policy_steps"] == e["n_frames"]
            assert not np.allclose(e["action"], e["executed"])
    assert (out / "round_2" / "run" / "checkpoint" / "model.safetensors").is_file()


def test_dagger_resumes_and_refuses_to_overwrite(tiny_checkpoint, tiny_datasets, tmp_path):
    out = tmp_path / "dagger"
    common = ["--checkpoint", tiny_checkpoint, "--data", *tiny_datasets, "--out", str(out)]
    assert _dagger([*common, "rounds=1"]) == 0
    first = {p.name: p.stat().st_mtime_ns
             for p in (out / "round_1" / "data" / "episodes").iterdir()}
    assert _dagger([*common, "rounds=2"]) == 2  # exists: needs --resume
    assert _dagger([*common, "--resume", "rounds=2"]) == 0
    again = {p.name: p.stat().st_mtime_ns
             for p in (out / "round_1" / "data" / "episodes").iterdir()}
    assert again == first  # round 1 was not redone
    record = json.loads((out / "dagger.json").read_text())
    assert [r["round"] for r in record["rounds"]] == [1, 2]


def test_dagger_config_errors_name_the_field(tmp_path):
    assert _dagger(["--out", str(tmp_path / "x"), "--data", "nowhere", "beta=1.5"]) == 2


@pytest.mark.parametrize("task", ["pick", "place", "stack", "push_to"])
def test_expert_recovers_from_states_a_bad_policy_leaves(task):
    """The stateless expert takes over after random actions (a policy gone wrong) and
    still succeeds: what DAgger needs to label any visited state."""
    env = gym.make(resolve_env_id(task), mode="eval")
    successes = 0
    for seed in range(3):
        env.reset(seed=seed)
        rng = np.random.default_rng(seed)
        for _ in range(8):  # a burst of random motion and gripper commands
            env.step(rng.uniform(-1, 1, 5).astype(np.float32))
        expert = make_expert(env)
        info = {"success": False}
        for _ in range(90):
            _, _, terminated, truncated, info = env.step(expert.act())
            if terminated or truncated:
                break
        successes += info["success"]
    env.close()
    assert successes >= 2


def test_expert_action_depends_on_the_state_only():
    env = gym.make("sims/Place-v0", mode="eval")
    env.reset(seed=4)
    first = make_expert(env)
    for _ in range(12):
        env.step(first.act())
    # A fresh expert, which has seen nothing of the episode, acts exactly as the old one.
    np.testing.assert_array_equal(make_expert(env).act(), first.act())
    env.close()

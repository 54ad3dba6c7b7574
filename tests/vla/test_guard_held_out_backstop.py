"""The collection worker's per-episode L3 backstop (`_check_held_out`, vla/data/worker.py):
no episode showing an L3 colour or shape is ever written, whoever asked for it.

`vla collect --split L3` is refused up front (test_collect.py); these call the worker
itself on an L3 scene, as a caller that skipped that check would."""

from __future__ import annotations

import numpy as np
import pytest

from vla.data import worker
from vla.envs import resolve_env_id

ENV_ID = resolve_env_id("pick")


def l3_job(tmp_path, **kw) -> worker.Job:
    (tmp_path / "tmp").mkdir(exist_ok=True)
    # Seed 0 of pick's L3 stream holds a purple bar (checked below through the message).
    return worker.Job(ENV_ID, "L3", 0, 0.0, 32, tmp_path / "tmp" / "pick_L3_s0.h5.partial",
                      **kw)


def test_the_worker_refuses_an_expert_episode_on_a_held_out_scene(tmp_path):
    """Guards `_check_held_out` on the expert path: an L3 scene raises before any frame
    is recorded and nothing is written. Breaks if the check is removed or made a no-op
    (the expert then records the scene and writes the episode)."""
    job = l3_job(tmp_path)
    with pytest.raises(RuntimeError, match=r"seed 0 \(L3\) shows the held-out .*purple"):
        worker.run_episode(job)
    assert not job.partial.exists()
    assert list(tmp_path.rglob("*")) == [tmp_path / "tmp"]  # no file at all


def test_the_worker_refuses_a_dagger_rollout_on_a_held_out_scene(tmp_path, monkeypatch):
    """Guards `_check_held_out` on the DAgger path (a `Driver`): the relabelled rollout of
    an L3 scene is refused, not written. The policy rollout is replaced by two expert
    frames of the same scene (no checkpoint needed). Breaks if the check is removed or
    made a no-op (the episode is then written to `job.partial`)."""
    import vla.dagger.rollout as rollout
    from vla.data.recorder import Recorder

    def two_frames(env, driver, seed):
        obs, _ = env.reset(seed=seed)
        recorder = Recorder()
        for _ in range(2):
            action = np.zeros(env.action_space.shape, np.float32)
            recorder.add(obs, action, action)
            obs, *_ = env.step(action)
        return recorder.episode(env, noise=0.0, success=True)

    monkeypatch.setattr(rollout, "relabelled_rollout", two_frames)
    job = l3_job(tmp_path, driver=worker.Driver(checkpoint="unused", beta=0.5, round=1))
    with pytest.raises(RuntimeError, match=r"seed 0 \(L3\) shows the held-out .*purple"):
        worker.run_episode(job)
    assert not job.partial.exists()
    assert list(tmp_path.rglob("*")) == [tmp_path / "tmp"]

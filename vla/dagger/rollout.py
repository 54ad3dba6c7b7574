"""One DAgger rollout in a collection worker: the policy drives, the expert relabels.

At every step the stateless expert (sims/experts.py) says what it would do from the
state the rollout is in; that clean action is the label. What is executed comes from
the mixture pi = beta * expert + (1 - beta) * policy, drawn once per policy chunk: with
probability `beta` the expert drives for the next chunk's steps, else the policy's chunk
runs. beta = 0 is pure DAgger (the states are the policy's own); beta = 1 collects
ordinary demonstrations.

The policy is loaded once per worker process (one torch thread each: the workers
already use every core) and kept for later jobs of the same checkpoint.
"""

from __future__ import annotations

import numpy as np

from vla.data.episode_file import Episode
from vla.data.recorder import Recorder

_POLICIES: dict[str, object] = {}  # checkpoint -> policy, in this worker process


def _policy(checkpoint: str):
    if checkpoint not in _POLICIES:
        import torch

        from policies.registry import load_policy

        torch.set_num_threads(1)
        _POLICIES.clear()  # a new round's checkpoint replaces the last one
        _POLICIES[checkpoint] = load_policy(checkpoint, device="cpu")
    return _POLICIES[checkpoint]


def relabelled_rollout(env, driver, seed: int) -> Episode:
    """Roll out the mixed policy from episode `seed`; every frame labelled by the expert."""
    from sims.experts import make_expert

    policy = _policy(driver.checkpoint)
    obs, info = env.reset(seed=seed)
    policy.reset()
    expert = make_expert(env, seed=seed)
    rng = np.random.default_rng([seed, driver.round, 7])  # the mixing coin, reproducible
    recorder = Recorder()
    queued: list[np.ndarray | None] = []  # the chunk being executed; None = expert's turn
    policy_steps = 0
    while True:
        label = expert.act()
        if not queued:
            if rng.random() < driver.beta:
                queued = [None] * policy.contract.chunk_length
            else:
                chunk = policy.infer(obs).actions
                queued = list(chunk[: driver.execute_steps or len(chunk)])
        planned = queued.pop(0)
        action = label if planned is None else np.asarray(planned, dtype=np.float32)
        policy_steps += planned is not None
        recorder.add(obs, label, action)
        obs, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            break
    return recorder.episode(env, noise=0.0, success=bool(info["success"]), relabelled=True,
                            dagger_round=driver.round, dagger_beta=driver.beta,
                            policy_checkpoint=driver.checkpoint, policy_steps=policy_steps)

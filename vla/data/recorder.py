"""`Recorder`: the frames, states, labels and executed actions of one episode as it runs,
then an `Episode` with the env's metadata. Shared by expert demonstrations
(vla/data/worker.py), DAgger rollouts (vla/dagger/rollout.py) and recordings on any
robot (vla/data/writer.py)."""

from __future__ import annotations

import numpy as np

from vla.data.episode_file import Episode

# Episode metadata of the env kept in every episode file's attributes.
ENV_ATTRS = ("env_id", "task", "robot", "instruction", "seed", "split", "mode", "control_hz")


class Recorder:
    def __init__(self) -> None:
        self.frames: dict[str, list[np.ndarray]] = {}
        self.states, self.labels, self.executed = [], [], []

    def add(self, obs: dict, label: np.ndarray, executed: np.ndarray) -> None:
        """Observation t, the label for it (what we train on) and what was executed."""
        for name, image in obs["images"].items():
            self.frames.setdefault(name, []).append(image)
        self.states.append(obs["state"])
        self.labels.append(label)
        self.executed.append(executed)

    def __len__(self) -> int:
        return len(self.labels)

    def episode(self, env, **attrs) -> Episode:
        meta = env.unwrapped.episode_metadata()
        return self.to_episode({**{k: meta[k] for k in ENV_ATTRS}, **attrs})

    def to_episode(self, attrs: dict) -> Episode:
        return Episode(
            images={name: np.stack(f) for name, f in self.frames.items()},
            state=np.stack(self.states).astype(np.float32),
            action=np.stack(self.labels).astype(np.float32),
            executed_action=np.stack(self.executed).astype(np.float32),
            attrs=attrs,
        )

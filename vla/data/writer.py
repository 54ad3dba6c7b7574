"""`DatasetWriter`: demonstrations of any robot, in the same dataset format as `vla collect`.

    from vla.data.writer import DatasetWriter

    with DatasetWriter("data/my_arm", robot.contract, task="wipe") as writer:
        for _ in range(50):
            episode = writer.episode("wipe the table")
            while not done:
                obs = robot.observe()
                action = controller(obs)          # float32 (A,), normalised to [-1, 1]
                episode.add(obs, action)          # executed = action unless given
                robot.act(action)
            episode.commit(success=True)          # atomic: complete in episodes/ or absent

Every episode is written to tmp/ and renamed into episodes/ whole (vla/data/store.py), so
a crash loses at most the episode being recorded. Closing the writer records the run in
meta.json and recomputes stats.json. Episode names are `<task>_L1_s<index>`: the index
counts on from the dataset's last one, so recording more into a dataset resumes it. The
layout (robot, action and state names, units, scale, rate, cameras) comes from the
robot's action contract and must match a dataset that already exists.

No torch: h5py and numpy only.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import numpy as np

from vla.data.episode_file import episode_name, parse_name, write_episode
from vla.data.recorder import Recorder
from vla.data.stats import update_stats
from vla.data.store import DatasetDir, library_versions

SPLIT = "L1"  # recordings have no generalisation split; file names need one


class DatasetWriter:
    def __init__(self, root: str | Path, contract, task: str, env_id: str | None = None) -> None:
        """`contract`: the robot's `ActionContract` (or its dict); `task`: a short name
        for what is demonstrated (letters, digits, '_' and '-')."""
        from bridges.contract import as_contract

        if not task or not all(c.isalnum() or c in "_-" for c in task):
            raise ValueError(f"task={task!r}: expected a short name of letters, digits, '_' "
                             f"or '-' (it names the episode files)")
        self.contract = as_contract(contract)
        self.task = task
        self.env_id = env_id or f"{self.contract.robot}/{task}"
        c = self.contract
        self.layout = {"robot": c.robot, "control_hz": c.control_hz,
                       "action_names": list(c.action_names), "action_units": list(c.action_units),
                       "action_scale": list(c.action_scale), "state_names": list(c.state_names),
                       "cameras": {k: list(v) for k, v in c.cameras.items()},
                       "robot_spec": c.to_dict()}
        self.ds = DatasetDir.create_or_open(root, self.layout)
        stem = self.env_id.split("/")[-1]
        taken = [parsed[2] for p in self.ds.episode_paths()
                 if (parsed := parse_name(p.name)) and parsed[0] == stem]
        self.existing = len(taken)  # episodes of this task already in the dataset
        self._next = max(taken, default=-1) + 1
        self.committed = 0

    def episode(self, instruction: str) -> RecordedEpisode:
        """A new episode to fill frame by frame, then `commit()` (or `discard()`)."""
        if not instruction or not instruction.strip():
            raise ValueError("instruction is empty; say what the demonstration does")
        seed, self._next = self._next, self._next + 1
        return RecordedEpisode(self, instruction.strip(), seed)

    def close(self) -> dict:
        """Record the run in meta.json and recompute stats.json; returns the stats."""
        meta = self.ds.read_meta()
        meta["tasks"] = sorted(set(meta["tasks"]) | {self.task})
        meta["env_ids"] = sorted(set(meta["env_ids"]) | {self.env_id})
        meta["splits"] = sorted(set(meta["splits"]) | {SPLIT})
        meta["versions"] = library_versions()
        meta["runs"].append({"record": self.env_id, "episodes": self.committed,
                             "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                             "versions": meta["versions"]})
        self.ds.write_meta(meta)
        with contextlib.suppress(OSError):  # tmp/ only matters while episodes are written
            self.ds.tmp_dir.rmdir()
        return update_stats(self.ds) if self.ds.episode_paths() else {}

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class RecordedEpisode:
    def __init__(self, writer: DatasetWriter, instruction: str, seed: int) -> None:
        self.writer, self.instruction, self.seed = writer, instruction, seed
        self.recorder = Recorder()
        c = writer.contract
        self._cameras = {name: (*hw, 3) for name, hw in c.cameras.items()}
        self._n_state, self._n_action = len(c.state_names), len(c.action_names)

    def add(self, observation: dict, action, executed=None) -> None:
        """Observation t, the action labelled for it, and what ran (default: the same)."""
        action = np.asarray(action, dtype=np.float32)
        executed = action if executed is None else np.asarray(executed, dtype=np.float32)
        state = np.asarray(observation["state"], dtype=np.float32)
        images = {name: observation["images"].get(name) for name in self._cameras}
        checks = [("state", state, (self._n_state,)), ("action", action, (self._n_action,)),
                  ("executed action", executed, (self._n_action,))]
        checks += [(f"camera {name!r}", images[name], shape)
                   for name, shape in self._cameras.items()]
        for what, value, want in checks:
            got = None if value is None else tuple(np.shape(value))
            if got != want:
                raise ValueError(f"frame {len(self)}: {what} has shape {got}; the contract "
                                 f"says {want}")
        if not np.all(np.isfinite(action)):
            raise ValueError(f"frame {len(self)}: action {action.tolist()} is not finite")
        self.recorder.add({"images": images, "state": state}, action, executed)

    def __len__(self) -> int:
        return len(self.recorder)

    def commit(self, success: bool | None = None, **attrs) -> Path:
        """Write the episode (atomically) and return its path; an empty one is refused."""
        if not len(self):
            raise ValueError("the episode has no frames; discard() it instead")
        w = self.writer
        base = {"env_id": w.env_id, "task": w.task, "robot": w.contract.robot,
                "instruction": self.instruction, "seed": self.seed, "split": SPLIT,
                "mode": "train", "control_hz": w.contract.control_hz, "recorded": True}
        if success is not None:
            base["success"] = bool(success)
        partial = w.ds.partial_path(episode_name(w.env_id, SPLIT, self.seed))
        write_episode(partial, self.recorder.to_episode({**base, **attrs}))
        path = w.ds.commit(partial)
        w.committed += 1
        return path

    def discard(self) -> None:
        self.recorder = Recorder()

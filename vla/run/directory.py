"""`RunDirectory`: where a training run keeps its checkpoint, and how it saves one.

    RUN/checkpoint/        the latest complete checkpoint: the command's own files (a
                           policy, a LoRA adapter, a grounding checkpoint) plus the train
                           state that `--resume` continues exactly (state.py)
    RUN/<name>_config.yaml the run's configuration
    RUN/summary.json       what the run did (written by the command)

A checkpoint is written whole into a staging directory beside the last one and swapped
in with one rename (policies/checkpoint.py `swap_into_place`): a kill at any moment
leaves the previous checkpoint, resumable.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import yaml

from policies.checkpoint import fault_point, recover, swap_into_place
from vla.run.state import SCALARS as TRAIN_STATE_SCALARS
from vla.run.state import load_train_state, save_train_state


class RunDirectory:
    """A run directory opened for a fresh run (`resume=False`: it must hold no checkpoint)
    or to continue one (`resume=True`: it must hold a resumable checkpoint). `main` is
    False on DDP ranks other than 0, which neither recover nor write."""

    def __init__(self, out: str | Path, resume: bool, main: bool = True):
        self.path = Path(out)
        self.checkpoint = self.path / "checkpoint"
        self.resume, self.main = resume, main
        if main and self.path.is_dir():
            recover(self.checkpoint)  # a kill during a save may have left staging dirs
        if resume and not (self.checkpoint / TRAIN_STATE_SCALARS).is_file():
            raise FileNotFoundError(f"--resume: {self.checkpoint} holds no resumable "
                                    f"checkpoint")
        if not resume and self.checkpoint.exists():
            raise FileExistsError(f"{str(self.path)!r} already holds a checkpoint; pass "
                                  f"--resume to continue it or choose another --out")

    @property
    def resume_from(self) -> Path | None:
        """The checkpoint to continue from, or None for a fresh run."""
        return self.checkpoint if self.resume else None

    def write_config(self, name: str, cfg) -> None:
        """RUN/<name>_config.yaml: the dataclass `cfg` as the run used it."""
        if self.main:
            self.path.mkdir(parents=True, exist_ok=True)
            (self.path / f"{name}_config.yaml").write_text(
                yaml.safe_dump(dataclasses.asdict(cfg)))

    def load_state(self, optimizer, scheduler, generators: dict) -> int:
        """Restore the optimizer, scheduler and RNG states; returns the step reached."""
        return load_train_state(self.checkpoint, optimizer, scheduler, generators)["step"]

    def save(self, write: Callable[[Path], None], optimizer, scheduler, generators: dict,
             step: int, cfg) -> None:
        """`write(staging)` puts the command's files in a staging directory; the train
        state joins them and the whole swaps in for the previous checkpoint."""
        if not self.main:
            return
        staging = self.checkpoint.with_name(f".{self.checkpoint.name}.staging-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        write(staging)
        fault_point("checkpoint:weights")
        save_train_state(staging, optimizer, scheduler, generators, step,
                         {"config": dataclasses.asdict(cfg)})
        fault_point("checkpoint:state")
        swap_into_place(staging, self.checkpoint)

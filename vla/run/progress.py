"""How long work shows its progress: a bar on a terminal, plain lines in a log file.

One rule for every command: a bar when stderr is a terminal (or VLA_PROGRESS=1), never
when `progress=False`. A carriage-return bar would fill a log file with partial updates,
so when output goes to a file a training loop prints a plain line every `log_every`
steps instead (`StepReporter`): a run sent to a file is never silent for minutes.
"""

from __future__ import annotations

import os
import sys


def show_progress(progress: bool | None) -> bool:
    """`progress` when given; otherwise whether stderr is a terminal (or VLA_PROGRESS=1)."""
    if progress is not None:
        return progress
    return sys.stderr.isatty() or os.environ.get("VLA_PROGRESS") == "1"


def progress_bar(total: int, desc: str, unit: str, progress: bool | None, initial: int = 0):
    """A tqdm bar that shows only where `show_progress(progress)` says so."""
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit=unit,
                disable=not show_progress(progress), dynamic_ncols=True)


class StepReporter:
    """A step bar on a terminal; without one (and unless `progress=False`), a line like
    `train: step 40/6000 loss 1.2345 samples/s 116` on stderr every `every` steps and at
    the last. `enabled=False` (a DDP rank other than 0) reports nothing."""

    def __init__(self, name: str, total: int, initial: int, every: int,
                 progress: bool | None, enabled: bool = True):
        self.name, self.total, self.every = name, total, every
        self.bar_shown = enabled and show_progress(progress)
        self.lines = enabled and progress is None and not self.bar_shown
        self.bar = progress_bar(total, name, "step", self.bar_shown, initial)

    def update(self, step: int, scalars: dict[str, float]) -> None:
        shown = {k: (f"{v:.3f}" if k != "samples_s" else f"{v:.0f}")
                 for k, v in scalars.items()}
        self.bar.update(1)
        self.bar.set_postfix(shown)
        if self.lines and (step % self.every == 0 or step == self.total):
            words = " ".join(f"{'samples/s' if k == 'samples_s' else k} {v}"
                             for k, v in shown.items())
            print(f"{self.name}: step {step}/{self.total} {words}", file=sys.stderr,
                  flush=True)

    def close(self) -> None:
        self.bar.close()

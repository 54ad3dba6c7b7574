"""`run_steps`: the step loop every training command shares.

A command builds a `Job` (how one step trains, what a checkpoint holds, what to do
between steps) and hands it here with its `RunDirectory`; the loop counts steps, reports
progress (a bar on a terminal, step lines in a log file), logs scalars to TensorBoard,
saves checkpoints every `checkpoint_every` steps and at the last, and times the run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vla.run.directory import RunDirectory
from vla.run.progress import StepReporter

# Steps excluded from the steady-state throughput (compilation, warm-up).
STEADY_AFTER = 3


@dataclass
class Job:
    """One training run as the loop sees it."""

    name: str  # "train" | "pretrain": the bar's label and the TensorBoard prefix
    steps: int  # the run's last step
    step: Callable[[], dict[str, float]]  # one optimizer step -> scalars, "loss" first
    write: Callable[[Path], None]  # the checkpoint's own files, into a staging directory
    optimizer: object
    scheduler: object
    generators: dict  # name -> torch.Generator, saved for an exact resume
    config: object  # the run's config dataclass, saved with the train state
    log_every: int
    checkpoint_every: int
    samples_per_step: int = 0  # across every process; 0 = no samples/s reported
    # After each step and its checkpoint (e.g. an evaluation during training): (step, writer)
    after_step: Callable[[int, object], None] | None = None


@dataclass
class Outcome:
    step: int  # the step reached
    scalars: dict[str, float]  # the last step's
    seconds: float
    samples: int
    steady_samples_per_s: float | None  # after STEADY_AFTER steps of this process


def run_steps(job: Job, run: RunDirectory, start: int, stop_after: int | None = None,
              progress: bool | None = None, writer=None) -> Outcome:
    """Steps `start + 1 ..` up to `job.steps` (or `stop_after`, which ends this process
    early, after a checkpoint); `writer` is a TensorBoard writer (None on DDP ranks > 0)."""
    last = job.steps if stop_after is None else min(job.steps, stop_after)
    reporter = StepReporter(job.name, job.steps, start, job.log_every, progress, run.main)
    step, scalars, samples = start, {}, 0
    t_start, t_steady, samples_steady = time.perf_counter(), None, 0
    while step < last:
        scalars = job.step()
        step += 1
        samples += job.samples_per_step
        if step == start + STEADY_AFTER:  # compilation and warm-up are behind us
            t_steady, samples_steady = time.perf_counter(), samples
        rate = samples / (time.perf_counter() - t_start) if job.samples_per_step else None
        if run.main:
            shown = dict(scalars)
            reporter.update(step, shown if rate is None else {**shown, "samples_s": rate})
            if writer is not None and (step % job.log_every == 0 or step == job.steps):
                _log(writer, job, scalars, rate, step)
        if step % job.checkpoint_every == 0 or step == last:
            run.save(job.write, job.optimizer, job.scheduler, job.generators, step,
                     job.config)
        if job.after_step is not None:
            job.after_step(step, writer)
    reporter.close()
    steady = (None if t_steady is None or samples == samples_steady
              else (samples - samples_steady) / (time.perf_counter() - t_steady))
    return Outcome(step, scalars, time.perf_counter() - t_start, samples, steady)


def _log(writer, job: Job, scalars: dict, rate: float | None, step: int) -> None:
    for key, value in scalars.items():
        writer.add_scalar(f"{job.name}/{key}", value, step)
    writer.add_scalar(f"{job.name}/lr", job.scheduler.get_last_lr()[0], step)
    if rate is not None:
        writer.add_scalar(f"{job.name}/samples_per_s", rate, step)


def tensorboard(path: Path):
    """A TensorBoard writer for RUN/tb."""
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(path))

"""`EvalConfig`: what `vla eval` evaluates and how. Each field with a help text is a flag
of `vla eval` (vla/config.py's `add_flags`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class EvalConfig:
    checkpoint: str | None = field(default=None, metadata={
        "help": "checkpoint directory (or a run directory, or a LoRA adapter: it is loaded "
                "onto its base), or a builtin baseline: builtin:hold, builtin:random"})
    tasks: list[str] | None = field(default=None, metadata={
        "help": "env ids or task names (default: all tasks of the policy's robot)"})
    splits: str = field(default="L1,L2,L3,L4", metadata={
        "help": "comma-separated (default all)"})
    episodes: int = field(default=50, metadata={"help": "episodes per task and split"})
    seed: int = field(default=0, metadata={"help": "first evaluation seed"})
    validation: bool = field(default=False, metadata={
        "help": "run the validation stream (mode=val) instead of the evaluation stream: for "
                "choosing recipes and ablations, not for final numbers"})
    execute_steps: int | None = field(default=None, metadata={
        "help": "actions of each chunk executed before re-querying; 0 = the whole chunk "
                "(default: what the checkpoint's execution.json says, else 0)"})
    temporal_ensemble: float | None = field(default=None, metadata={
        "help": "query the policy every step and execute the weighted mean of every chunk's "
                "prediction for that step (ACT's temporal ensembling; weights "
                "exp(-COEFF * i), i = 0 the oldest; the gripper takes the newest). Try 0.01. "
                "Default: off, each chunk runs to its end", "metavar": "COEFF"})
    videos: int = field(default=1, metadata={
        "help": "videos kept per task and split: this many successes, and this many "
                "failures for each stage where failures stopped"})
    out: str | None = field(default=None, metadata={
        "help": "directory for results.json/.md, stages.md, success.png, videos/successes/, "
                "videos/failures/<stage>/ (default: none, print only)"})
    json: bool = field(default=False, metadata={"help": "print the results as JSON"})
    device: str = field(default="auto", metadata={"help": "auto | cpu | cuda"})
    workers: int = field(default=1, metadata={
        "help": "episodes run in this many processes, each with its own copy of the policy "
                "on the CPU (one thread each); 2 on a 2-core machine halves the time "
                "(default 1: in this process, on --device)"})
    executor: str = field(default="local", metadata={
        "help": "where the episodes run: this machine's processes (local, default) or a "
                "Ray cluster (ray: the ray extra; docs/scaling.md)",
        "choices": ("local", "ray")})
    address: str | None = field(default=None, metadata={
        "help": "with --executor ray: the cluster's address (default: a local cluster "
                "started for this run)"})
    chains: int = field(default=0, metadata={
        "help": "instead of single episodes: N chains of 5 instructions in one scene per "
                "split (L1-L3; CALVIN's metric: the share completing >= 1..5 steps and the "
                "average length), each step from the state the last left; 0 = off",
        "metavar": "N"})
    quantize: str = field(default="none", metadata={
        "help": "int8: evaluate the policy with int8 dynamic quantization (for the CPU)",
        "choices": ("none", "int8")})

    def validate(self) -> None:
        if self.chains < 0:
            raise ValueError(f"chains={self.chains}; expected 0 (off) or more")
        for name in ("episodes", "workers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}; expected at least 1")
        coeff = self.temporal_ensemble
        if coeff is not None and not (math.isfinite(coeff) and coeff >= 0):
            raise ValueError(f"temporal_ensemble={coeff}; expected a number >= 0 (e.g. 0.01)")
        if coeff is not None and self.execute_steps is not None:
            raise ValueError(f"temporal_ensemble={coeff} executes one action per query; "
                             f"drop execute_steps={self.execute_steps}")
        if self.execute_steps is not None and self.execute_steps < 0:
            raise ValueError(f"execute_steps={self.execute_steps}; expected 0 (the whole "
                             f"chunk) or more")

    @property
    def split_names(self) -> list[str]:
        return [s.strip() for s in self.splits.split(",") if s.strip()]

    @property
    def mode(self) -> str:
        """The episodes' stream: "val" (validation) or "eval"."""
        return "val" if self.validation else "eval"

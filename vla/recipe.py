"""Which recipe and device produced a shipped checkpoint (`recipe.json` beside it).

    python -m vla.recipe runs/default runs/dagger runs/polish/checkpoint \
        [--pretrain runs/pretrain] [--polish runs/polish_1 --polish runs/polish] \
        [--final-dagger runs/dagger_final] [--after runs/polish_prior] \
        > policies/checkpoints/default/recipe.json

Reads the runs' own records (train_config.yaml, summary.json, dagger.json, and the
pretraining, polishing fine-tune and final DAgger runs' when given) and adds the
machine, so the shipped policy says how it was made without anyone writing it by hand.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

import yaml


def describe(train_run: Path, dagger_run: Path | None = None,
             shipped: Path | None = None, pretrain_run: Path | None = None,
             polish_runs: list[Path] = (), final_dagger_run: Path | None = None,
             after_runs: list[Path] = ()) -> dict:
    import torch

    summary = json.loads((train_run / "summary.json").read_text())
    record = {
        "train": {**_training_run(train_run), "validation": summary.get("eval")},
        # Runs from before summary.json recorded it: this machine's, as the Makefile runs
        # this right after training.
        "device": summary.get("device", "cuda" if torch.cuda.is_available() else "cpu"),
        "amp": summary.get("amp"),
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "torch": torch.__version__},
    }
    if dagger_run is not None:
        record["dagger"] = _dagger_run(dagger_run)
    if pretrain_run is not None:
        record["pretrain"] = {
            "config": yaml.safe_load((pretrain_run / "pretrain_config.yaml").read_text()),
            "summary": json.loads((pretrain_run / "summary.json").read_text())}
    if polish_runs:  # `vla finetune` runs after the DAgger rounds, in order
        record["polish"] = [_training_run(run) for run in polish_runs]
    if final_dagger_run is not None:  # `vla dagger` rounds after the polishing
        record["final_dagger"] = _dagger_run(final_dagger_run)
    if after_runs:  # `vla finetune` runs after the final DAgger round, in order
        record["after_final_dagger"] = [_training_run(run) for run in after_runs]
    if shipped is not None:
        record["shipped_checkpoint"] = str(shipped)
    return record


def _dagger_run(run: Path) -> dict:
    dagger = json.loads((run / "dagger.json").read_text())
    return {"config": dagger["config"], "rounds": dagger["rounds"]}


def _training_run(run: Path) -> dict:
    """What a `vla train` / `vla finetune` run directory says of itself."""

    summary = json.loads((run / "summary.json").read_text())
    return {"config": yaml.safe_load((run / "train_config.yaml").read_text()),
            "steps": summary["steps"], "seconds": round(summary["seconds"]),
            "samples_per_s": summary.get("samples_per_s")}


def main(argv: list[str]) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m vla.recipe", description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", type=Path,
                    help="TRAIN_RUN [DAGGER_RUN [SHIPPED_CHECKPOINT]]")
    ap.add_argument("--pretrain", type=Path, help="the `vla pretrain` run")
    ap.add_argument("--polish", type=Path, action="append", default=[],
                    help="a polishing `vla finetune` run (repeat, in order)")
    ap.add_argument("--final-dagger", type=Path,
                    help="a `vla dagger` run made after the polishing fine-tunes")
    ap.add_argument("--after", type=Path, action="append", default=[],
                    help="a `vla finetune` run after the final DAgger run (repeat, in order)")
    try:
        args = ap.parse_args(argv)
    except SystemExit as stop:  # bad arguments: argparse has printed why
        return int(stop.code or 0)
    if len(args.runs) > 3:
        ap.print_usage(sys.stderr)
        print(f"expected at most 3 run paths; got {len(args.runs)}", file=sys.stderr)
        return 2
    print(json.dumps(describe(*args.runs, pretrain_run=args.pretrain,
                              polish_runs=args.polish, final_dagger_run=args.final_dagger,
                              after_runs=args.after),
                     indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

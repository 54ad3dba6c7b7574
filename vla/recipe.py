"""Which recipe and device produced a shipped checkpoint (`recipe.json` beside it).

    python -m vla.recipe runs/default runs/dagger runs/polish/checkpoint \
        [--pretrain runs/pretrain] [--polish runs/polish_1 --polish runs/polish] \
        > policies/checkpoints/default/recipe.json

Reads the runs' own records (train_config.yaml, summary.json, dagger.json, and the
pretraining and polishing fine-tune runs' when given) and adds the
machine, so the shipped policy says how it was made without anyone writing it by hand.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path


def describe(train_run: Path, dagger_run: Path | None = None,
             shipped: Path | None = None, pretrain_run: Path | None = None,
             polish_runs: list[Path] = ()) -> dict:
    import torch
    import yaml

    summary = json.loads((train_run / "summary.json").read_text())
    record = {
        "train": {"config": yaml.safe_load((train_run / "train_config.yaml").read_text()),
                  "steps": summary["steps"], "seconds": round(summary["seconds"]),
                  "samples_per_s": summary.get("samples_per_s"),
                  "validation": summary.get("eval")},
        # Runs from before summary.json recorded it: this machine's, as the Makefile runs
        # this right after training.
        "device": summary.get("device", "cuda" if torch.cuda.is_available() else "cpu"),
        "amp": summary.get("amp"),
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "torch": torch.__version__},
    }
    if dagger_run is not None:
        dagger = json.loads((dagger_run / "dagger.json").read_text())
        record["dagger"] = {"config": dagger["config"], "rounds": dagger["rounds"]}
    if pretrain_run is not None:
        record["pretrain"] = {
            "config": json.loads((pretrain_run / "pretrain_config.yaml").read_text()),
            "summary": json.loads((pretrain_run / "summary.json").read_text())}
    for run in polish_runs:  # `vla finetune` runs after the DAgger rounds, in order
        polish = json.loads((run / "summary.json").read_text())
        record.setdefault("polish", []).append({
            "config": yaml.safe_load((run / "train_config.yaml").read_text()),
            "steps": polish["steps"], "seconds": round(polish["seconds"]),
            "samples_per_s": polish.get("samples_per_s")})
    if shipped is not None:
        record["shipped_checkpoint"] = str(shipped)
    return record


def main(argv: list[str]) -> int:
    pretrain, polish = None, []
    while "--pretrain" in argv or "--polish" in argv:
        i = next(i for i, a in enumerate(argv) if a in ("--pretrain", "--polish"))
        if i + 1 >= len(argv):
            print(f"{argv[i]} needs a run directory", file=sys.stderr)
            return 2
        if argv[i] == "--pretrain":
            pretrain = Path(argv[i + 1])
        else:
            polish.append(Path(argv[i + 1]))
        argv = argv[:i] + argv[i + 2:]
    if len(argv) not in (1, 2, 3):
        print("usage: python -m vla.recipe TRAIN_RUN [DAGGER_RUN [SHIPPED_CHECKPOINT]] "
              "[--pretrain PRETRAIN_RUN] [--polish POLISH_RUN ...]", file=sys.stderr)
        return 2
    paths = [Path(a) for a in argv]
    print(json.dumps(describe(*paths, pretrain_run=pretrain, polish_runs=polish), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

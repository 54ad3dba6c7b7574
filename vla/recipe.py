"""Which recipe and device produced a shipped checkpoint (`recipe.json` beside it).

    python -m vla.recipe runs/default runs/dagger runs/dagger/round_1/run/checkpoint \
        [--pretrain runs/pretrain] > policies/checkpoints/default/recipe.json

Reads the runs' own records (train_config.yaml, summary.json, dagger.json) and adds the
machine, so the shipped policy says how it was made without anyone writing it by hand.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path


def describe(train_run: Path, dagger_run: Path | None = None,
             shipped: Path | None = None, pretrain_run: Path | None = None) -> dict:
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
    if shipped is not None:
        record["shipped_checkpoint"] = str(shipped)
    return record


def main(argv: list[str]) -> int:
    pretrain = None
    if "--pretrain" in argv:
        i = argv.index("--pretrain")
        if i + 1 >= len(argv):
            print("--pretrain needs the pretraining run directory", file=sys.stderr)
            return 2
        pretrain = Path(argv[i + 1])
        argv = argv[:i] + argv[i + 2:]
    if len(argv) not in (1, 2, 3):
        print("usage: python -m vla.recipe TRAIN_RUN [DAGGER_RUN [SHIPPED_CHECKPOINT]] "
              "[--pretrain PRETRAIN_RUN]", file=sys.stderr)
        return 2
    paths = [Path(a) for a in argv]
    print(json.dumps(describe(*paths, pretrain_run=pretrain), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

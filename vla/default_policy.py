"""`make default-policy`: the default policy's recipe, stage by stage, each resumable.

    python -m vla.default_policy [--root DIR] [--ship DIR] [--scale full|tiny]

Every stage is the `vla` command a person would type, run in `--root` (the repository by
default: data/ and runs/ there): the demonstrations (`vla collect`), the grounding
pretraining, training, one DAgger round, the fine-tune whose trunk reads the command's
sentence embedding and the referents' words, the copy into `--ship` with its
recipe.json, then the refusal threshold (presence.json) and the actions run per chunk
(execution.json). A finished stage is skipped and an interrupted one resumes
(`--resume`), so after a kill, running it again continues where it stopped.

`--scale tiny` runs every stage, in the same order and through the same commands, with
tiny numbers (two demonstrations per dataset, a tiny model, two training steps): a
renamed flag or a moved file then fails `make test` (tests/vla/test_default_policy.py)
instead of an afternoon's run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TRAINING_TASKS = ("pick", "place", "stack", "push_to", "touch")
# (task, episodes, first seed, dataset): 400 of each training task, then more of the
# harder ones from other seeds (configs/default.yaml trains on all of them).
DEMONSTRATIONS = (
    *[(t, 400, 0, f"data/default/{t}") for t in TRAINING_TASKS],
    *[(t, 800, 100_000, f"data/more/{t}") for t in ("pick", "place", "stack", "push_to")],
    *[(t, 1200, 300_000, f"data/more2/{t}") for t in ("stack", "push_to")],
    ("place", 800, 300_000, "data/more2/place"),
)
SHIPPED_FILES = ("config.json", "model.safetensors", "action_tokenizer.json",
                 "action_contract.json")
# --scale tiny: what each kind of stage is told on top of its config.
TINY = {
    "episodes": 2,
    "pretrain": ["scenes=8", "val_scenes=0", "size=tiny", "steps=2", "batch_size=4",
                 "warmup_steps=1", "checkpoint_every=1"],
    "train": ["size=tiny", "steps=2", "batch_size=4", "warmup_steps=1", "checkpoint_every=1",
              "eval_episodes=0", "grounding_batch=4"],
    "dagger": ["episodes=1", "workers=1", "steps=2", "batch_size=4", "warmup_steps=1",
               "checkpoint_every=1", "grounding_batch=4", "tasks=[sims/Pick-v0]"],
    "finetune": ["steps=2", "batch_size=4", "warmup_steps=1", "checkpoint_every=1",
                 "grounding_batch=4"],
    "presence": ["--scenes", "2", "--tasks", "pick"],
    "execution": ["--episodes", "1", "--candidates", "0,1", "--workers", "1", "--tasks",
                  "touch"],
}


def stages(root: Path, ship: Path, tiny: bool) -> list[tuple[str, list[str], Path | None]]:
    """(name, command, the file that says it is done) for every stage, in order."""
    def extra(kind: str) -> list[str]:
        return list(TINY[kind]) if tiny else []

    config = lambda name: str(REPO / "configs" / name)  # noqa: E731
    out = []
    for task, episodes, seed, data in DEMONSTRATIONS:
        n = TINY["episodes"] if tiny else episodes
        out.append((f"collect {data}", ["vla", "collect", "--task", task, "--episodes", str(n),
                                        "--seed", str(seed), "--out", data, "--workers",
                                        "1" if tiny else "2", "--resume"], None))
    out += [
        ("pretrain", ["vla", "pretrain", "--config", config("pretrain.yaml"), "--out",
                      "runs/pretrain", *extra("pretrain")], root / "runs/pretrain/summary.json"),
        ("train", ["vla", "train", "--config", config("default.yaml"), "--out", "runs/default",
                   *extra("train")], root / "runs/default/summary.json"),
        ("dagger", ["vla", "dagger", "--config", config("dagger.yaml"), "--checkpoint",
                    "runs/default", "--out", "runs/dagger", *extra("dagger")],
         root / "runs/dagger/dagger.json"),
        ("finetune", ["vla", "finetune", "--config", config("polish_referent_words.yaml"),
                      "--checkpoint", "DAGGER_FINAL", "--out", "runs/referent_words",
                      *extra("finetune")], root / "runs/referent_words/summary.json"),
        ("ship", [], None),
        ("presence", [sys.executable, str(REPO / "benchmarks/presence_score.py"),
                      "--checkpoint", str(ship), "--write", *extra("presence")],
         ship / "presence.json"),
        ("execution", [sys.executable, str(REPO / "benchmarks/execute_steps.py"),
                       "--checkpoint", str(ship), "--write", *extra("execution")],
         ship / "execution.json"),
    ]
    return out


def _run_dir(command: list[str]) -> str | None:
    return command[command.index("--out") + 1] if "--out" in command else None


def run_stage(name: str, command: list[str], root: Path) -> None:
    """One stage as a `vla` command (resumed when its run directory exists) or a script."""
    if command[0] == "vla":
        out = _run_dir(command)
        if not name.startswith("collect") and out and (root / out).exists():
            command = [*command, "--resume"]  # interrupted last time: go on from there
        command = [sys.executable, "-m", "vla.cli", *command[1:]]
    # The stages' own reports go to stderr: stdout carries this run's one JSON object.
    done = subprocess.run(command, cwd=root, stdout=sys.stderr)
    if done.returncode != 0:
        raise SystemExit(f"default-policy: stage {name!r} failed (exit {done.returncode}): "
                         f"{' '.join(command)}\nFix it, then run the same command again: "
                         f"finished stages are skipped, this one resumes.")


def ship_checkpoint(root: Path, ship: Path) -> None:
    """The fine-tuned checkpoint's files (no optimizer state) into `ship`, with the recipe
    that made it (recipe.json); presence.json and execution.json follow."""
    final = root / "runs/referent_words/checkpoint"
    staging = ship.with_name(ship.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in SHIPPED_FILES:
        shutil.copy2(final / name, staging / name)
    recipe = subprocess.run(
        [sys.executable, "-m", "vla.recipe", "runs/default", "runs/dagger", str(final),
         "--pretrain", "runs/pretrain", "--after", "runs/referent_words"],
        cwd=root, capture_output=True, text=True)
    if recipe.returncode != 0:
        raise SystemExit(f"default-policy: the recipe could not be written: {recipe.stderr}")
    (staging / "recipe.json").write_text(recipe.stdout)
    shutil.rmtree(ship, ignore_errors=True)
    staging.rename(ship)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vla.default_policy",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, default=REPO,
                    help="where data/ and runs/ go (default: the repository)")
    ap.add_argument("--ship", type=Path, default=None,
                    help="where the policy is shipped (default: "
                         "policies/checkpoints/default of the repository)")
    ap.add_argument("--scale", choices=("full", "tiny"), default="full")
    args = ap.parse_args(argv)
    root = args.root.resolve()
    ship = (args.ship or REPO / "policies/checkpoints/default").resolve()
    root.mkdir(parents=True, exist_ok=True)
    times = {}
    for name, command, done_file in stages(root, ship, args.scale == "tiny"):
        start = time.perf_counter()
        if (done_file is not None and done_file.is_file() and _finished(done_file)) or (
                name == "ship" and _shipped(root, ship)) or _collected(root, command):
            print(f"default-policy: {name}: done before, skipped", file=sys.stderr)
            continue
        print(f"default-policy: {name}", file=sys.stderr, flush=True)
        if name == "finetune":
            dagger = json.loads((root / "runs/dagger/dagger.json").read_text())
            command = [dagger["final_checkpoint"] if c == "DAGGER_FINAL" else c
                       for c in command]
        if name == "ship":
            ship_checkpoint(root, ship)
        else:
            run_stage(name, command, root)
        times[name] = round(time.perf_counter() - start, 1)
    print(json.dumps({"scale": args.scale, "root": str(root), "ship": str(ship),
                      "stage_seconds": times}, indent=1))
    return 0


def _collected(root: Path, command: list[str]) -> bool:
    """A `vla collect` stage whose dataset already holds its episodes."""
    if command[:2] != ["vla", "collect"]:
        return False
    from vla.data.store import DatasetDir

    folder = root / command[command.index("--out") + 1]
    wanted = int(command[command.index("--episodes") + 1])
    return (folder / "meta.json").is_file() and \
        len(DatasetDir(str(folder)).episode_paths()) >= wanted


def _shipped(root: Path, ship: Path) -> bool:
    """The package already holds the fine-tune's weights (and its recipe)."""
    import filecmp

    final = root / "runs/referent_words/checkpoint/model.safetensors"
    return ((ship / "recipe.json").is_file() and (ship / "model.safetensors").is_file()
            and filecmp.cmp(final, ship / "model.safetensors", shallow=False))


def _finished(done_file: Path) -> bool:
    """A stage's record says it finished (DAgger's names its final checkpoint)."""
    if done_file.name == "dagger.json":
        return "final_checkpoint" in json.loads(done_file.read_text())
    return True


if __name__ == "__main__":
    raise SystemExit(main())

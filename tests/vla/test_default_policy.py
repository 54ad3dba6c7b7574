"""`make default-policy`'s recipe (vla/default_policy.py) at tiny scale: every stage, in
order, from an empty directory, through the same commands; run again it skips what is
done and resumes what was cut short. A renamed flag, a moved config or a missing file
fails here, not in an afternoon's run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

SHIPPED = {"config.json", "model.safetensors", "action_tokenizer.json",
           "action_contract.json", "recipe.json", "presence.json", "execution.json"}


def recipe(root, ship):
    env = {**os.environ, "VLA_PROGRESS": "0"}
    return subprocess.run([sys.executable, "-m", "vla.default_policy", "--scale", "tiny",
                           "--root", str(root), "--ship", str(ship)],
                          capture_output=True, text=True, env=env, timeout=900)


def test_the_default_policy_recipe_runs_every_stage_and_continues_where_it_stopped(tmp_path):
    root, ship = tmp_path / "work", tmp_path / "ship"
    first = recipe(root, ship)
    assert first.returncode == 0, first.stderr[-4000:]
    assert {p.name for p in ship.iterdir()} == SHIPPED
    ran = json.loads(first.stdout)["stage_seconds"]
    assert [s for s in ran if not s.startswith("collect")] == [
        "pretrain", "train", "dagger", "finetune", "ship", "presence", "execution"]
    recorded = json.loads((ship / "recipe.json").read_text())
    assert recorded  # what made the shipped weights

    # Cut short: the fine-tune lost its summary (killed before it finished writing).
    (root / "runs/referent_words/summary.json").unlink()
    again = recipe(root, ship)
    assert again.returncode == 0, again.stderr[-4000:]
    ran = json.loads(again.stdout)["stage_seconds"]
    assert "train" not in ran and "pretrain" not in ran and "dagger" not in ran
    assert not [s for s in ran if s.startswith("collect")]  # the data was all there
    assert "finetune" in ran  # resumed from its checkpoint
    assert "default-policy: train: done before, skipped" in again.stderr

"""A training process killed at each point of a checkpoint save leaves a checkpoint that
`--resume` continues exactly (policies/checkpoint.py swap_into_place, vla/train/loop.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from policies.checkpoint import recover, swap_into_place

TINY = "configs/tiny.yaml"
SETTINGS = ["steps=6", "checkpoint_every=3", "eval_episodes=0", "model.dropout=0.1"]


def _weights(run: Path) -> dict:
    return load_file(str(run / "checkpoint" / "model.safetensors"))


def _train(data: str, run: Path, resume: bool = False):
    from vla.config import load_config
    from vla.train.config import TrainConfig
    from vla.train.loop import train

    cfg = load_config(TrainConfig, TINY, [f"data=[{data!r}]", *SETTINGS])
    return train(cfg, str(run), resume=resume, progress=False)


@pytest.fixture(scope="module")
def straight(tiny_datasets, tmp_path_factory) -> dict:
    run = tmp_path_factory.mktemp("straight") / "run"
    _train(tiny_datasets[0], run)
    return _weights(run)


# (where the process dies, the step the surviving checkpoint holds)
KILLS = [("checkpoint:weights@2", 3),  # the step-6 weights staged, no train state yet
         ("checkpoint:state@2", 3),  # step 6 fully staged, not yet swapped in
         ("checkpoint:swapped@1", 6)]  # swapped in, the previous one not yet deleted


@pytest.mark.parametrize("kill_at,survivor", KILLS)
def test_a_kill_during_a_save_leaves_a_checkpoint_that_resumes_exactly(
        kill_at, survivor, tiny_datasets, straight, tmp_path):
    run = tmp_path / "run"
    main = "import sys; from vla.cli import main; sys.exit(main())"
    done = subprocess.run(
        [sys.executable, "-c", main, "train", "--config", TINY, "--data", tiny_datasets[0],
         "--out", str(run), *SETTINGS], env={**os.environ, "VLA_KILL_AT": kill_at},
        capture_output=True, text=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    state = json.loads((run / "checkpoint" / "train_state.json").read_text())
    assert state["step"] == survivor
    _train(tiny_datasets[0], run, resume=True)
    after = _weights(run)
    assert after.keys() == straight.keys()
    assert all((after[k] == straight[k]).all() for k in after)
    assert not [p.name for p in run.iterdir() if p.name.startswith(".checkpoint")]


def test_swap_never_leaves_the_place_empty_and_recover_undoes_a_half_swap(tmp_path):
    final, new = tmp_path / "checkpoint", tmp_path / ".checkpoint.tmp-1"
    final.mkdir()
    (final / "v").write_text("old")
    new.mkdir()
    (new / "v").write_text("new")
    swap_into_place(new, final)
    assert (final / "v").read_text() == "new" and not new.exists()
    # The two-rename fallback, killed between its renames: the old one comes back.
    old = tmp_path / ".checkpoint.old-7"
    os.rename(final, old)
    (tmp_path / ".checkpoint.staging-7").mkdir()
    recover(final)
    assert (final / "v").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]

"""Shared fixtures: small demonstration datasets collected once per test session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_datasets(tmp_path_factory) -> list[str]:
    """Two single-task Panda datasets (pick, touch), 3 episodes each."""
    from vla.data.collect import collect

    root = tmp_path_factory.mktemp("datasets")
    paths = []
    for task in ("pick", "touch"):
        out = root / task
        collect(task, 3, str(out), workers=1, progress=False)
        paths.append(str(out))
    return paths


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_datasets, tmp_path_factory) -> str:
    """A tiny policy trained 2 steps by `vla train` on `tiny_datasets` (checkpoint dir)."""
    from pathlib import Path

    from vla.cli import main

    run = tmp_path_factory.mktemp("tiny_base") / "run"
    config = Path(__file__).parent.parent / "configs" / "tiny.yaml"
    assert main(["train", "--config", str(config), "--data", *tiny_datasets, "--out", str(run),
                 "steps=2", "eval_episodes=0"]) == 0
    return str(run / "checkpoint")


@pytest.fixture(scope="session")
def kuka_dataset(tmp_path_factory) -> str:
    """Two demonstrations of the second robot (Kuka: another action contract)."""
    from vla.data.collect import collect

    out = tmp_path_factory.mktemp("kuka") / "pick"
    collect("sims/Pick-Kuka-v0", 2, str(out), workers=1, progress=False)
    return str(out)


@pytest.fixture(scope="session")
def push_next_dataset(tmp_path_factory) -> str:
    """Two demonstrations of the held-out task (split L4): a new task to fine-tune on."""
    from vla.data.collect import collect

    out = tmp_path_factory.mktemp("push_next") / "push_next"
    collect("sims/PushNext-v0", 2, str(out), workers=1, split="L4", progress=False)
    return str(out)

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

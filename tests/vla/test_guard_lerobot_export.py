"""`vla dataset export --format lerobot` stages its output beside OUT and renames it into
place only when complete (vla/data/lerobot/export.py, staging.py): an export that stops
part-way leaves neither OUT nor a staging directory."""

from __future__ import annotations

import numpy as np
import pytest

import vla.data.lerobot.export as export
from tests.custom_robot import TwoJointArm
from vla.cli import main
from vla.data.writer import DatasetWriter


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> str:
    """Three short episodes of the 2-joint test arm (32x32 camera): quick to export."""
    root = tmp_path_factory.mktemp("recorded") / "wave"
    robot = TwoJointArm()
    with DatasetWriter(root, robot.contract, task="wave") as writer:
        for e in range(3):
            episode = writer.episode(f"wave the arm {e}")
            for t in range(4):
                robot.act(np.array([np.sin(t + e), 0.5], np.float32))
                episode.add(robot.observe(), [np.sin(t + e), 0.5])
            episode.commit(success=True)
    return str(root)


def interrupt_at_episode(monkeypatch, k: int, error: BaseException) -> list[int]:
    """Reading the k-th episode (0-based) raises `error`: the export stops after it has
    already written k episodes' rows and video frames."""
    read = export.read_episode
    calls: list[int] = []

    def reading(path, *args, **kwargs):
        calls.append(1)
        if len(calls) == k + 1:
            raise error
        return read(path, *args, **kwargs)

    monkeypatch.setattr(export, "read_episode", reading)
    return calls


@pytest.mark.parametrize("error", [KeyboardInterrupt(), OSError(28, "No space left on device")],
                         ids=["ctrl-c", "disk-full"])
def test_an_export_stopped_part_way_leaves_no_out_and_nothing_partial(
        recorded, tmp_path, monkeypatch, capsys, error):
    """Guards the staging of the export: stopped while writing its 3rd episode (Ctrl-C,
    or an error), OUT does not exist and its parent holds nothing at all (no half OUT,
    no `.OUT.partial-*`). Breaks if the export writes straight into OUT, or if the
    staging directory is not removed when the export fails. Then the export works."""
    parent = tmp_path / "exports"
    parent.mkdir()
    out = parent / "wave_lerobot"
    args = ["dataset", "export", recorded, "--format", "lerobot", "--out", str(out)]
    calls = interrupt_at_episode(monkeypatch, 2, error)
    if isinstance(error, KeyboardInterrupt):
        assert main(args) == 130  # the CLI's answer to Ctrl-C
    else:
        with pytest.raises(OSError, match="No space left"):
            main(args)
    assert len(calls) == 3  # it did stop part-way, with two episodes written
    assert not out.exists()
    assert list(parent.iterdir()) == []

    monkeypatch.undo()
    assert main(args) == 0  # nothing left in the way of a second try
    assert (out / "meta" / "info.json").is_file()
    assert [p.name for p in parent.iterdir()] == ["wave_lerobot"]
    capsys.readouterr()

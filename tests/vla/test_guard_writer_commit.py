"""`vla record` / `DatasetWriter` commit episodes atomically (vla/data/writer.py): each
episode file is written under tmp/ and renamed into episodes/ whole, so a crash while an
episode is being written leaves no episode file behind, and the dataset stays valid."""

from __future__ import annotations

import pytest

import vla.data.episode_file as episode_file
from tests.custom_robot import TwoJointArm
from vla.cli import main
from vla.data.episodes import iter_episodes
from vla.data.store import DatasetDir
from vla.data.writer import DatasetWriter

ARM = "tests.custom_robot:TwoJointArm"


class DiskFull(OSError):
    pass


def fail_the_nth_write(monkeypatch, n: int) -> None:
    """The n-th episode file being written fails halfway (its images are on disk, its
    states, actions and attributes are not), through write_episode's own test hook."""
    calls = []

    def halfway() -> None:
        calls.append(1)
        if len(calls) == n:
            raise DiskFull("no space left on device (injected halfway through an episode)")

    monkeypatch.setattr(episode_file, "_slow_writer_for_tests", halfway)


def test_vla_record_killed_while_writing_an_episode_leaves_no_episode_file(
        tmp_path, monkeypatch, capsys):
    """Guards the tmp/ + rename of `RecordedEpisode.commit`: the 3rd episode's write fails
    halfway through `vla record`; episodes/ holds exactly the 2 earlier episodes, intact,
    and `vla dataset validate` passes. Breaks if the episode is written straight into
    episodes/ (a torn 3rd file is left there, which validate then names)."""
    data = tmp_path / "wave"
    fail_the_nth_write(monkeypatch, 3)
    with pytest.raises(DiskFull):
        main(["record", ARM, "hz=200", "--out", str(data), "--task", "wave",
              "--instruction", "wave the arm", "--script", "tests.custom_robot:wave",
              "--episodes", "4", "--max-steps", "20"])
    monkeypatch.undo()

    ds = DatasetDir.open(data)
    names = [p.name for p in ds.episode_paths()]
    assert names == [episode_file.episode_name("two_joint_arm/wave", "L1", s) + ".h5"
                     for s in (0, 1)], names
    assert sorted(p.name for p in (data / "episodes").iterdir()) == names  # nothing else
    episodes = list(iter_episodes(str(data), images=True))
    assert [e.n_frames for e in episodes] == [8, 8]  # tests.custom_robot.wave: 8 steps
    assert all(e.attrs["instruction"] == "wave the arm" for e in episodes)
    capsys.readouterr()
    assert main(["dataset", "validate", str(data)]) == 0, capsys.readouterr()


def test_dataset_writer_failing_mid_episode_keeps_the_earlier_ones(tmp_path, monkeypatch,
                                                                   capsys):
    """Guards the same rule through the Python API: the first commit succeeds, the second
    fails halfway through writing its file; only the first episode is in the dataset and
    it validates. Breaks if `commit` writes into episodes/ directly."""
    robot = TwoJointArm()
    fail_the_nth_write(monkeypatch, 2)
    with DatasetWriter(tmp_path / "d", robot.contract, task="wave") as writer:
        first = writer.episode("wave the arm")
        first.add(robot.observe(), [0.1, 0.2])
        kept = first.commit(success=True)
        second = writer.episode("wave the arm")
        for _ in range(3):
            second.add(robot.observe(), [0.3, -0.3])
        with pytest.raises(DiskFull):
            second.commit(success=True)
    monkeypatch.undo()
    ds = DatasetDir.open(tmp_path / "d")
    assert ds.episode_paths() == [kept]
    assert sorted(p.name for p in ds.episodes_dir.iterdir()) == [kept.name]
    assert main(["dataset", "validate", str(tmp_path / "d")]) == 0, capsys.readouterr()


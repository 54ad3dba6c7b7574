"""`oversample`: frames whose first action moves a named dimension appear N times per epoch."""

from __future__ import annotations

import json

import numpy as np

from vla.cli import main

TINY = "configs/tiny.yaml"


def _moving_frames(path: str, dim: int) -> int:
    from vla.train.data import MOVES, frame_dataset

    data = frame_dataset([path], 1, ["front"]).datasets[0]
    return sum(int((np.abs(data.episode_actions(e)[:, dim]) > MOVES).sum())
               for e in range(len(data.paths)))


def test_vla_train_repeats_the_frames_that_move_the_named_dimension(tiny_datasets, tmp_path,
                                                                      capsys):
    pick = tiny_datasets[0]  # the pick expert turns the hand near the block
    code = main(["train", "--config", TINY, "--data", pick, "--out", str(tmp_path / "r"),
                 "steps=2", "eval_episodes=0", "oversample.dyaw=5"])
    assert code == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    turning = _moving_frames(pick, 3)
    assert turning > 0 and summary["oversampled_frames"] == turning
    assert summary["epoch_frames"] == summary["frames"] + 4 * turning
    assert f"{turning:,} of {summary['frames']:,} frames repeated" in captured.err


def test_the_repeated_frames_are_the_moving_ones(tiny_datasets):
    from collections import Counter

    from vla.train.data import MOVES, frame_dataset, oversampled

    data = frame_dataset([tiny_datasets[0]], 1, ["front"])
    subset, n_repeated = oversampled(data, {3: 5})
    seen = Counter(subset.indices)
    assert sorted(seen) == list(range(len(data)))  # every frame still appears
    moving = [i for i in range(len(data)) if abs(float(data[i]["action"][0, 3])) > MOVES]
    assert moving and n_repeated == len(moving)
    assert all(seen[i] == (5 if i in moving else 1) for i in seen)


def test_bad_oversample_names_the_field(tiny_datasets, tmp_path, capsys):
    for override, message in (("oversample.yaw=5", "oversample names ['yaw']"),
                              ("oversample.dyaw=0", "oversample.dyaw=0; expected a whole"),
                              ("oversample.dyaw=2.5", "oversample.dyaw=2.5; expected a whole"),
                              ("oversample=3", "oversample=3; expected a mapping")):
        code = main(["train", "--config", TINY, "--data", tiny_datasets[0], "--out",
                     str(tmp_path / "r"), override])
        assert code == 2, override
        assert message in capsys.readouterr().err

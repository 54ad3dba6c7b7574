"""Reading datasets back: the streaming torch Dataset and the plain episode iterator."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from vla.data.collect import collect
from vla.data.episodes import iter_episodes, load_episode
from vla.data.torch_dataset import FrameDataset


@pytest.fixture(scope="module")
def pick3(tmp_path_factory):
    out = tmp_path_factory.mktemp("pick3") / "data"
    summary = collect("sims/Pick-v0", 3, str(out), workers=2, progress=False)
    assert summary["committed"] == 3 and summary["complete"]
    return str(out)


def test_items_have_documented_shapes_and_dtypes(pick3):
    ds = FrameDataset(pick3)
    episodes = list(iter_episodes(pick3))
    assert len(ds) == sum(e.n_frames for e in episodes)
    item = ds[0]
    assert item["images"]["front"].shape == (128, 128, 3)
    assert item["images"]["front"].dtype == torch.uint8
    assert item["state"].shape == (6,) and item["state"].dtype == torch.float32
    assert item["action"].shape == (1, 5) and item["action"].dtype == torch.float32
    assert item["action_mask"].tolist() == [True]
    assert isinstance(item["instruction"], str) and item["task"] == "pick"
    assert (item["episode"], item["frame"]) == (0, 0)
    np.testing.assert_array_equal(item["images"]["front"].numpy(), episodes[0].images["front"][0])


def test_action_chunks_pad_with_the_last_action(pick3):
    k = 4
    ds = FrameDataset(pick3, chunk=k)
    episode = load_episode(pick3, 1)
    t_last = episode.n_frames - 1
    # The second-to-last frame of episode 1: two real actions, then two copies of the last.
    item = ds[next(i for i in range(len(ds)) if ds.locate(i) == (1, t_last - 1))]
    assert item["action"].shape == (k, 5)
    assert item["action_mask"].tolist() == [True, True, False, False]
    np.testing.assert_array_equal(item["action"][:2].numpy(), episode.action[t_last - 1:])
    np.testing.assert_array_equal(item["action"][2].numpy(), episode.action[t_last])
    np.testing.assert_array_equal(item["action"][3].numpy(), episode.action[t_last])
    mid = ds[next(i for i in range(len(ds)) if ds.locate(i) == (1, 0))]
    assert mid["action_mask"].all()
    np.testing.assert_array_equal(mid["action"].numpy(), episode.action[:k])


def test_dataloader_with_worker_processes_reads_every_frame(pick3):
    ds = FrameDataset(pick3, chunk=2)
    ds[0]  # open a file in the parent first: workers must not reuse its handle
    loader = DataLoader(ds, batch_size=8, num_workers=2, shuffle=True)
    seen = []
    for batch in loader:
        assert batch["images"]["front"].shape[1:] == (128, 128, 3)
        assert batch["action"].shape[1:] == (2, 5) and batch["action_mask"].shape[1:] == (2,)
        assert len(batch["instruction"]) == len(batch["episode"])
        seen += list(zip(batch["episode"].tolist(), batch["frame"].tolist()))
    assert sorted(seen) == [ds.locate(i) for i in range(len(ds))]


def test_iter_episodes_without_images(pick3):
    episodes = list(iter_episodes(pick3, images=False))
    assert len(episodes) == 3
    for e in episodes:
        assert e.images == {} and e.attrs["success"] is True
        assert e.state.shape == (e.n_frames, 6) and e.executed_action.shape == (e.n_frames, 5)


def test_bad_arguments_are_explained(pick3, tmp_path):
    with pytest.raises(ValueError, match="chunk=0"):
        FrameDataset(pick3, chunk=0)
    with pytest.raises(ValueError, match="wrist"):
        FrameDataset(pick3, cameras=["wrist"])
    with pytest.raises(ValueError, match="not a dataset"):
        FrameDataset(str(tmp_path))


def test_preloaded_items_equal_streamed_items(pick3):
    streamed = FrameDataset(pick3, chunk=3)
    preloaded = FrameDataset(pick3, chunk=3, preload=True)
    assert len(preloaded) == len(streamed)
    for i in (0, len(streamed) // 2, len(streamed) - 1):
        a, b = streamed[i], preloaded[i]
        for key in ("state", "action", "action_mask"):
            assert torch.equal(a[key], b[key]), key
        assert torch.equal(a["images"]["front"], b["images"]["front"])
        assert (a["instruction"], a["episode"], a["frame"]) == (
            b["instruction"], b["episode"], b["frame"])

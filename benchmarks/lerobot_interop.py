"""LeRobot interop: does LeRobot's own `LeRobotDataset` read our export, frame for frame?

Collects N demonstrations (or takes --data DIR), exports them with `vla dataset export
--format lerobot`, loads the export offline with `LeRobotDataset(repo_id, root=OUT)` in a
virtualenv of its own, and compares every frame's action, state, task and image, and
LeRobot's action chunks (`delta_timestamps`), with ours. Also times export and import.
Prints one JSON object (with "ok": false, the stage and the reason when it cannot run).

    python benchmarks/lerobot_interop.py [--episodes 20] [--venv /tmp/vla-lerobot-venv]

The virtualenv (built on first use, reused after) holds LeRobot apart from the project:
lerobot 0.4.x pins torch < 2.11 and torchvision < 0.26, older than ours, so it must never
enter our dependencies. What works with the package mirror alone:
- torch: the same CPU build as the project's (LeRobot's dataset code runs on it);
- lerobot 0.4.4, accelerate and torchcodec 0.13 (CPU build, torch >= 2.11) with --no-deps,
  plus what the dataset module imports: datasets 4.x, huggingface-hub < 0.36, pandas,
  av 15, pillow;
- torchvision: every torchvision on the mirror is a CUDA build whose C++ ops cannot load
  beside a CPU torch. LeRobot's dataset module imports it only for `transforms.ToTensor`
  (PIL image features, which our export never has) and for its legacy pyav video backend,
  so the reader gets a small stand-in module, and frames are decoded by LeRobot's default
  backend, torchcodec;
- torchcodec needs FFmpeg's shared libraries: on Debian 12, `apt-get install
  libavcodec59 libavformat59 libavutil57 libavdevice59 libavfilter8 libswscale6
  libswresample4`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np

from vla.data.episodes import iter_episodes
from vla.data.store import DatasetDir

LEROBOT = "lerobot==0.4.4"
NO_DEPS = [LEROBOT, "accelerate", "torchcodec==0.13.0"]
DEPS = ["datasets>=4,<5", "huggingface-hub>=0.34.2,<0.36", "pandas", "av>=15,<16", "pillow",
        "packaging", "psutil", "safetensors", "pyyaml"]
CHUNK = 4  # action chunk compared through LeRobot's delta_timestamps
FFMPEG_HINT = ("torchcodec needs FFmpeg's shared libraries; on Debian 12: apt-get install "
               "libavcodec59 libavformat59 libavutil57 libavdevice59 libavfilter8 libswscale6 "
               "libswresample4")

# Runs inside the LeRobot virtualenv: load the export, read every item, save arrays (npz).
CHILD = r'''
import importlib.machinery, json, sys, time, types
import numpy as np, torch

note = "real"
try:
    import torchvision  # noqa: F401
except Exception as err:  # the mirror's CUDA builds cannot load beside a CPU torch
    note = f"stand-in ({type(err).__name__})"
    tv = types.ModuleType("torchvision")
    tv.__path__ = []
    tv.__spec__ = importlib.machinery.ModuleSpec("torchvision", None, is_package=True)
    tr = types.ModuleType("torchvision.transforms")

    class ToTensor:  # what hf_transform_to_torch uses, for PIL image features only
        def __call__(self, img):
            a = np.asarray(img, dtype=np.float32) / 255
            return torch.from_numpy(a).permute(2, 0, 1)

    def set_video_backend(name):
        raise RuntimeError("torchvision is a stand-in here; use the torchcodec backend")

    tr.ToTensor, tv.transforms, tv.set_video_backend = ToTensor, tr, set_video_backend
    tv.io = types.ModuleType("torchvision.io")
    sys.modules.update({"torchvision": tv, "torchvision.transforms": tr,
                        "torchvision.io": tv.io})

import lerobot, torchcodec
from lerobot.datasets.lerobot_dataset import LeRobotDataset

root, out, chunk = sys.argv[1], sys.argv[2], int(sys.argv[3])
t = time.perf_counter()
ds = LeRobotDataset("local/vla_export", root=root)
load_s = time.perf_counter() - t
t = time.perf_counter()
items = [ds[i] for i in range(len(ds))]
read_s = time.perf_counter() - t
keys = ds.meta.video_keys
arrays = {k: np.stack([it[k].numpy() for it in items]) for k in
          ("action", "observation.state", "index", "episode_index", "frame_index", "timestamp")}
arrays["task"] = np.array([it["task"] for it in items])
for k in keys:
    x = np.stack([it[k].numpy() for it in items])  # float (N, 3, H, W) in [0, 1]
    arrays[k] = (x * 255).round().clip(0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
fps = ds.fps
chunked = LeRobotDataset("local/vla_export", root=root,
                         delta_timestamps={"action": [i / fps for i in range(chunk)]})
arrays["action_chunk"] = np.stack([chunked[i]["action"].numpy() for i in range(len(ds))])
arrays["action_is_pad"] = np.stack([chunked[i]["action_is_pad"].numpy()
                                    for i in range(len(ds))])
np.savez(out, **arrays)
print(json.dumps({"lerobot": lerobot.__version__, "torch": torch.__version__,
                  "torchcodec": torchcodec.__version__, "torchvision": note,
                  "video_backend": ds.video_backend, "num_frames": len(ds),
                  "num_episodes": ds.num_episodes, "fps": fps, "video_keys": keys,
                  "load_seconds": round(load_s, 2), "read_seconds": round(read_s, 2)}))
'''


def ensure_venv(path: Path) -> tuple[Path, float]:
    """The LeRobot virtualenv's python, built if missing; (python, seconds spent building)."""
    python = path / "bin" / "python"
    probe = [str(python), "-c", "import lerobot, torchcodec, datasets, pandas"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python, 0.0
    start = time.perf_counter()
    pip = [str(python), "-m", "pip", "install", "-q"]
    steps = [[sys.executable, "-m", "venv", str(path)],
             [*pip, f"torch=={version('torch')}"],  # ours: the CPU build (LeRobot pins <2.11)
             [*pip, "--no-deps", *NO_DEPS],
             [*pip, *DEPS]]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"`{' '.join(step)}` failed: {done.stderr.strip()[-600:]}")
    return python, time.perf_counter() - start


def ours(data: str) -> dict[str, np.ndarray]:
    """Our dataset as LeRobot would index it: frames in episode order."""
    eps = list(iter_episodes(data))
    chunks, pads = [], []
    for e in eps:
        n = e.n_frames
        steps = np.arange(n)[:, None] + np.arange(CHUNK)[None]
        chunks.append(e.action[np.minimum(steps, n - 1)])  # hold the last action, as FrameDataset
        pads.append(steps >= n)
    camera = next(iter(eps[0].images))
    return {"action": np.concatenate([e.action for e in eps]),
            "state": np.concatenate([e.state for e in eps]),
            "task": np.concatenate([[e.attrs["instruction"]] * e.n_frames for e in eps]),
            "images": np.concatenate([e.images[camera] for e in eps]),
            "camera": camera, "action_chunk": np.concatenate(chunks),
            "action_is_pad": np.concatenate(pads)}


def psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-frame PSNR in dB of uint8 (N, H, W, 3) arrays."""
    mse = ((a.astype(np.float64) - b.astype(np.float64)) ** 2).reshape(len(a), -1).mean(1)
    return 10 * np.log10(255.0**2 / np.maximum(mse, 1e-12))


def compare(mine: dict, theirs: dict, fps: float) -> dict:
    order = np.argsort(theirs["index"])
    images = theirs[f"observation.images.{mine['camera']}"][order]
    frame_psnr = psnr(images, mine["images"])
    n = len(mine["action"])
    return {
        "frames_match": bool(np.array_equal(theirs["index"][order], np.arange(n))),
        "actions_identical": bool(np.array_equal(theirs["action"][order], mine["action"])),
        "states_identical": bool(np.array_equal(theirs["observation.state"][order],
                                                mine["state"])),
        "tasks_identical": bool(np.array_equal(theirs["task"][order], mine["task"])),
        "timestamps_exact": bool(np.array_equal(
            theirs["timestamp"][order], (theirs["frame_index"][order] / fps).astype(np.float32))),
        "action_chunks_identical": bool(
            np.array_equal(theirs["action_chunk"][order], mine["action_chunk"])
            and np.array_equal(theirs["action_is_pad"][order], mine["action_is_pad"])),
        "image_psnr_db": {"mean": round(float(frame_psnr.mean()), 2),
                          "min": round(float(frame_psnr.min()), 2),
                          "all_frames": round(float(psnr(images.reshape(1, -1, 3),
                                                         mine["images"].reshape(1, -1, 3))[0]),
                                              2)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--task", default="sims/Pick-v0")
    parser.add_argument("--data", help="export this dataset instead of collecting one")
    parser.add_argument("--venv", default=str(Path(tempfile.gettempdir()) / "vla-lerobot-venv"))
    parser.add_argument("--pix-fmt", default="yuv420p", help="as `vla dataset export`")
    parser.add_argument("--crf", type=int, default=18, help="as `vla dataset export`")
    args = parser.parse_args()
    result = {"benchmark": "lerobot_interop", "ok": False, "cpu_count": os.cpu_count()}
    try:
        python, build_s = ensure_venv(Path(args.venv))
        result["venv_build_seconds"] = round(build_s, 1)
    except RuntimeError as err:
        print(json.dumps({**result, "stage": "virtualenv", "error": str(err)}))
        return
    from vla.data.lerobot.export import export_lerobot
    from vla.data.lerobot.importer import import_lerobot
    from vla.data.lerobot.video import VideoSettings

    with tempfile.TemporaryDirectory(prefix="vla-lerobot-bench-") as tmp:
        data = args.data
        if data is None:
            from vla.data.collect import collect

            data = os.path.join(tmp, "data")
            collect(args.task, args.episodes, data, workers=2, progress=False)
        video = VideoSettings(pix_fmt=args.pix_fmt, crf=args.crf)
        export = export_lerobot(data, os.path.join(tmp, "lerobot"), video, progress=False)
        back = import_lerobot(export["out"], os.path.join(tmp, "back"), progress=False)
        npz = os.path.join(tmp, "lerobot.npz")
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "HF_HOME": os.path.join(tmp, "hf"), "TQDM_DISABLE": "1"}
        start = time.perf_counter()
        child = subprocess.run([str(python), "-c", CHILD, export["out"], npz, str(CHUNK)],
                               capture_output=True, text=True, env=env)
        child_s = time.perf_counter() - start
        if child.returncode != 0:
            err = child.stderr.strip()[-1500:]
            hint = FFMPEG_HINT if "libav" in err or "FFmpeg" in err else None
            print(json.dumps({**result, "stage": "LeRobotDataset", "error": err, "hint": hint}))
            return
        report = json.loads(child.stdout.strip().splitlines()[-1])
        with np.load(npz, allow_pickle=False) as f:
            theirs = dict(f)
        mine = ours(data)
        checks = compare(mine, theirs, float(report["fps"]))
        round_trip = [psnr(b.images[mine["camera"]], a.images[mine["camera"]]).mean()
                      for a, b in zip(iter_episodes(data), iter_episodes(back["out"]))]
        size = sum(p.stat().st_size for p in DatasetDir.open(data).episode_paths())
    episodes = export["episodes"]
    result.update({
        "ok": all(v for k, v in checks.items() if k != "image_psnr_db"),
        **report, "episodes": episodes, "frames": export["frames"],
        "video": {"codec": video.codec, "pix_fmt": video.pix_fmt, "crf": video.crf},
        "child_seconds": round(child_s, 2),
        "lerobot_items_per_s": round(report["num_frames"] / report["read_seconds"], 1),
        **checks,
        "export_seconds": export["seconds"], "import_seconds": back["seconds"],
        "our_import_psnr_db_mean": round(float(np.mean(round_trip)), 2),
        "bytes_per_episode": {"ours_hdf5": round(size / episodes),
                              "lerobot_export": round(export["bytes"] / episodes)},
    })
    print(json.dumps(result))


if __name__ == "__main__":
    main()

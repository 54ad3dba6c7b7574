"""Captioned synthetic scenes on disk, generated in parallel and crash-safe.

    DIR/scenes.json          what was asked for (count, seed, image size) and the
                             vocabulary's size; rewritten when shards are added
    DIR/shard-00000.npz      SHARD scenes: images (N, S, S, 3) uint8, seg (N, S, S) int8,
                             captions (N, C) str, referents (N, C, 2) int16,
                             pixels (N, C, 2) float32 (see sims/captioned.py)

Shard i is drawn from seed (seed, i) alone, so shards never repeat one another and a
rerun only makes the shards that are missing: a kill loses at most the shards in flight
(each is written to a temporary name and renamed when complete). Nothing is pickled.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

SHARD = 250  # scenes per file
MANIFEST = "scenes.json"
FORMAT = "vla-captioned-scenes"


def shard_path(root: Path, index: int) -> Path:
    return root / f"shard-{index:05d}.npz"


def generate(out: str, scenes: int, workers: int = 2, seed: int = 0, image_size: int = 128,
             progress: bool | None = None) -> dict:
    """Make sure `out` holds `scenes` captioned scenes (rounded up to whole shards)."""
    from tqdm import tqdm

    if scenes < 1 or workers < 1:
        raise ValueError(f"scenes={scenes} and workers={workers}; expected at least 1 each")
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    from sims.captioned import GENERATOR

    old = read_manifest(root) if (root / MANIFEST).is_file() else None
    if old and (old["seed"], old["image_size"], old.get("generator", 1)) != (
            seed, image_size, GENERATOR):
        raise ValueError(f"{str(root)!r} holds scenes of seed={old['seed']}, image_size="
                         f"{old['image_size']}, generator={old.get('generator', 1)}; asked "
                         f"for seed={seed}, image_size={image_size}, generator={GENERATOR} "
                         f"(choose another directory)")
    if old is None:  # claim the directory first: a killed run's shards keep their seed
        _write_manifest(root, seed, image_size)
    n_shards = -(-scenes // SHARD)
    for stale in root.glob(".shard-*.tmp-*.npz"):  # left by a kill mid-write
        if not _alive(int(stale.name.rsplit("-", 1)[1].split(".")[0])):
            stale.unlink()
    todo = [i for i in range(n_shards) if not shard_path(root, i).is_file()]
    bar = tqdm(total=n_shards * SHARD, initial=(n_shards - len(todo)) * SHARD, unit="scene",
               desc="scenes", disable=progress is False, dynamic_ncols=True)
    if todo:
        with ProcessPoolExecutor(min(workers, len(todo))) as pool:
            futures = [pool.submit(_make_shard, str(root), i, seed, image_size) for i in todo]
            for future in as_completed(futures):
                future.result()
                bar.update(SHARD)
    bar.close()
    return _write_manifest(root, seed, image_size)


def _write_manifest(root: Path, seed: int, image_size: int) -> dict:
    from sims.vocabulary import SHAPE_KINDS, color_vocabulary

    shards = sorted(root.glob("shard-*.npz"))
    from sims.captioned import GENERATOR

    manifest = {"format": FORMAT, "version": 1, "generator": GENERATOR, "seed": seed,
                "image_size": image_size,
                "scenes": len(shards) * SHARD, "shards": len(shards),
                "colors": len(color_vocabulary()),
                "shape_words": sorted(w for k in SHAPE_KINDS for w in k.words)}
    tmp = root / f".{MANIFEST}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(tmp, root / MANIFEST)
    return manifest


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_manifest(root: Path) -> dict:
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{str(root)!r} holds no captioned scenes (no {MANIFEST}); "
                                f"make them with `vla pretrain` or `vla pretrain --scenes-only`")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{path}: format={manifest.get('format')!r}; expected {FORMAT!r}")
    return manifest


def _make_shard(root: str, index: int, seed: int, image_size: int) -> int:
    from sims.quiet import import_pybullet

    import_pybullet()  # without its banner in the worker's output
    from sims.captioned import SceneMaker

    maker = SceneMaker(image_size)
    rng = np.random.default_rng([seed, index, 7331])
    images, segs, texts, refs, pixels = [], [], [], [], []
    try:
        for _ in range(SHARD):
            image, seg, captions = maker.make(rng)
            images.append(image)
            segs.append(seg)
            texts.append([c.text for c in captions])
            refs.append([c.referents for c in captions])
            pixels.append([c.pixel for c in captions])
    finally:
        maker.close()
    final = shard_path(Path(root), index)
    tmp = final.with_name(f".{final.stem}.tmp-{os.getpid()}.npz")  # one per writer
    np.savez(tmp, images=np.stack(images), seg=np.stack(segs),
             captions=np.array(texts, dtype=str), referents=np.array(refs, dtype=np.int16),
             pixels=np.array(pixels, dtype=np.float32))
    os.replace(tmp, final)  # two runs sharing the directory write the same shard
    return index

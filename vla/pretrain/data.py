"""Batches of captioned scenes for the grounding loss, held in memory.

Images are resized once, when loaded, to what the vision encoder sees (as preloaded
demonstrations are); segmentations stay at the rendered size and become target maps per
batch (policies/grounding.py `referent_targets`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vla.pretrain.scenes import read_manifest


class GroundingData:
    def __init__(self, root: str, image_size: int, heat_size: int,
                 limit: int | None = None, shards: slice | None = None) -> None:
        """`limit` keeps the first scenes only (pretraining size studies); `shards`
        selects files (e.g. the last one as a validation set)."""
        directory = Path(root)
        read_manifest(directory)
        files = sorted(directory.glob("shard-*.npz"))[shards or slice(None)]
        if not files:
            raise FileNotFoundError(f"{str(root)!r} holds no scene shards")
        images, segs, captions, referents, pixels = [], [], [], [], []
        kept = 0
        for path in files:
            if limit is not None and kept >= limit:
                break
            with np.load(path, allow_pickle=False) as shard:
                n = len(shard["images"]) if limit is None else min(len(shard["images"]),
                                                                   limit - kept)
                images.append(_resize(shard["images"][:n], image_size))
                segs.append(torch.from_numpy(shard["seg"][:n]))
                captions.append(shard["captions"][:n])
                referents.append(torch.from_numpy(shard["referents"][:n].astype(np.int64)))
                pixels.append(torch.from_numpy(shard["pixels"][:n]))
            kept += n
        self.images = torch.cat(images)  # (N, s, s, 3) uint8
        self.seg = torch.cat(segs)  # (N, S, S) int8
        self.captions = np.concatenate(captions)  # (N, C)
        self.referents = torch.cat(referents)  # (N, C, 2)
        self.pixels = torch.cat(pixels)  # (N, C, 2): (u, v) of a board location
        self.heat_size = heat_size

    def __len__(self) -> int:
        return len(self.images)

    def batch(self, size: int, gen: torch.Generator) -> dict:
        """A random batch: one caption of each of `size` random scenes."""
        scene = torch.randint(len(self), (size,), generator=gen)
        caption = torch.randint(self.captions.shape[1], (size,), generator=gen)
        return self.select(scene, caption)

    def select(self, scene: torch.Tensor, caption: torch.Tensor) -> dict:
        """Scenes (B,) with one caption index each (B,)."""
        from policies.grounding import referent_targets

        referents = self.referents[scene, caption]  # (B, R)
        # A caption has one board-location pixel (u, v), for whichever referent is PIXEL.
        pixels = self.pixels[scene, caption][:, None].expand(-1, referents.shape[1], -1)
        targets, absent = referent_targets(self.seg[scene], referents, pixels,
                                           self.heat_size)
        return {"images": self.images[scene],
                "instruction": [str(t) for t in self.captions[scene.numpy(), caption.numpy()]],
                "targets": targets, "absent": absent}


def _resize(frames: np.ndarray, size: int) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> uint8 (N, size, size, 3), antialiased like the encoder."""
    x = torch.from_numpy(frames)
    if x.shape[1] == size:
        return x
    out = []
    for chunk in x.split(512):
        f = chunk.permute(0, 3, 1, 2).float()
        f = F.interpolate(f, size=(size, size), mode="bilinear", antialias=True,
                          align_corners=False)
        out.append(f.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1))
    return torch.cat(out).contiguous()

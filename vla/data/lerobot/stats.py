"""Statistics in LeRobot's shape: per feature min, max, mean, std, count and the quantiles
q01, q10, q50, q90, q99 (its DEFAULT_QUANTILES). Vectors get one value per dimension;
images one per colour channel, scaled to [0, 1], shaped (3, 1, 1) as LeRobot keeps them.

Per-episode stats are exact; the dataset's are aggregated from them the way LeRobot's
`aggregate_stats` does (count-weighted means and pooled variance; quantiles as the
count-weighted mean of the episodes' quantiles, an approximation LeRobot also makes).
"""

from __future__ import annotations

import numpy as np

QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
MAX_IMAGE_FRAMES = 100  # frames sampled per episode for image stats (LeRobot samples too)


def describe(values: np.ndarray) -> dict[str, np.ndarray]:
    """Stats of (N, D) values along N."""
    values = np.asarray(values, dtype=np.float64)
    stats = {"min": values.min(0), "max": values.max(0), "mean": values.mean(0),
             "std": values.std(0), "count": np.array([len(values)])}
    for q in QUANTILES:
        stats[f"q{round(q * 100):02d}"] = np.quantile(values, q, axis=0)
    return stats


def image_stats(frames: np.ndarray) -> dict[str, np.ndarray]:
    """Per-channel stats of uint8 (T, H, W, 3) frames, in [0, 1], each (3, 1, 1)."""
    step = max(1, len(frames) // MAX_IMAGE_FRAMES)
    pixels = frames[::step].reshape(-1, 3) / 255.0
    stats = describe(pixels)
    stats = {k: (v if k == "count" else v.reshape(3, 1, 1)) for k, v in stats.items()}
    stats["count"] = np.array([len(frames)])
    return stats


def aggregate(per_episode: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    counts = np.array([s["count"][0] for s in per_episode], dtype=np.float64)
    shape = (-1,) + (1,) * (np.ndim(per_episode[0]["mean"]))
    w = (counts / counts.sum()).reshape(shape)
    means = np.stack([s["mean"] for s in per_episode])
    mean = (w * means).sum(0)
    var = (w * (np.stack([s["std"] for s in per_episode]) ** 2 + (means - mean) ** 2)).sum(0)
    out = {"min": np.min([s["min"] for s in per_episode], axis=0),
           "max": np.max([s["max"] for s in per_episode], axis=0),
           "mean": mean, "std": np.sqrt(var), "count": np.array([int(counts.sum())])}
    for key in per_episode[0]:
        if key.startswith("q"):
            out[key] = (w * np.stack([s[key] for s in per_episode])).sum(0)
    return out


def to_json(stats: dict[str, dict[str, np.ndarray]]) -> dict:
    return {feature: {k: np.asarray(v).tolist() for k, v in s.items()}
            for feature, s in stats.items()}

"""Success rates with 95% Wilson score intervals (sound at 0% and 100%, unlike +-2 SE)."""

from __future__ import annotations

import math


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def summarise(successes: int, n: int) -> dict:
    low, high = wilson_interval(successes, n)
    return {"success": successes / n if n else 0.0, "successes": successes, "episodes": n,
            "ci95": [round(low, 4), round(high, 4)]}

"""The refusal threshold's split-conformal rule, k = floor(alpha * (n + 1)), at the n where
the `+ 1` matters (benchmarks/presence_score.py `conformal_threshold`)."""

from __future__ import annotations

import numpy as np

from tests.benchmark_module import load_benchmark


def test_conformal_threshold_counts_n_plus_one_calibration_scores():
    """Guards the `n + 1` of k = floor(alpha * (n + 1)) (the k-th LOWEST score is the
    threshold: a valid command scores high, a refusal is a score below it).

    n = 99, alpha = 0.05: k = floor(0.05 * 100) = 5, the 5th lowest; with `n` instead of
    `n + 1`, k = floor(4.95) = 4, the 4th lowest. n = 19: k = floor(0.05 * 20) = 1, the
    lowest score; with `n`, k = 0 and the threshold falls to the degenerate -inf (no
    refusal at all). Dropping the `+ 1` breaks both asserts."""
    bench = load_benchmark("presence_score")
    rng = np.random.default_rng(7)
    ranked = np.arange(1, 100) * 0.5 + 0.25  # distinct; the k-th lowest is 0.5 * k + 0.25
    scores = rng.permutation(ranked)
    assert bench.conformal_threshold(scores, 0.05) == 2.75  # the 5th lowest, not 2.25

    few = rng.permutation(ranked[:19] + 3.0)  # 19 scores, lowest 3.75
    assert bench.conformal_threshold(few, 0.05) == 3.75  # the lowest, not -inf
    # One score fewer and n + 1 = 19 no longer promises alpha = 0.05: -inf.
    assert bench.conformal_threshold(few[few != 3.75], 0.05) == float("-inf")

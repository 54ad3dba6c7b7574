"""benchmarks/heldout_loss.py: one JSON object, and a turn metric that a bin centre just
off zero cannot fool."""

import json
import subprocess
import sys

import numpy as np

from tests.benchmark_module import BENCHMARKS, load_benchmark

SCRIPT = BENCHMARKS / "heldout_loss.py"


def test_per_dimension_counts_a_near_zero_bin_centre_as_not_turning():
    bench = load_benchmark("heldout_loss")
    expert = np.array([[0.8], [-0.8], [0.8], [0.0]])  # (N, A): three turns, one still
    still = np.full_like(expert, 0.003125)  # the bin centre nearest 0 with 256 bins
    out = bench.per_dimension(still, expert, ["dyaw"])["dyaw"]
    assert out["expert_moves_frames"] == 3
    assert out["moves_when_expert_moves"] == 0.0
    assert out["same_way_when_both_move"] is None
    same = bench.per_dimension(expert.copy(), expert, ["dyaw"])["dyaw"]
    assert same["corr"] == 1.0 and same["moves_when_expert_moves"] == 1.0
    assert same["same_way_when_both_move"] == 1.0
    wrong = bench.per_dimension(-expert, expert, ["dyaw"])["dyaw"]
    assert wrong["same_way_when_both_move"] == 0.0


def test_benchmark_prints_one_json_object(tiny_checkpoint, tiny_datasets):
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--checkpoint", tiny_checkpoint,
         "--data", tiny_datasets[0], "--heldout", tiny_datasets[1], "--frames", "8"],
        capture_output=True, text=True, timeout=300, check=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["data"] == [tiny_datasets[0]]
    assert result["heldout_data"] == [tiny_datasets[1]]
    for side in ("train", "heldout"):
        assert result[side]["frames"] == 8
        assert result[side]["ce_nats"] > 0
        assert set(result[side]["per_dim"]) == {"dx", "dy", "dz", "dyaw", "gripper"}
    assert result["ce_gap_nats"] == round(result["heldout"]["ce_nats"]
                                          - result["train"]["ce_nats"], 4)

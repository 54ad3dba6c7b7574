"""benchmarks/turn_sign_probe.py: one JSON object from real datasets, a clear exit without
turning frames."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "turn_sign_probe.py"


def _run(tiny_datasets, *extra):
    pick = tiny_datasets[0]  # the pick expert turns the hand near the block
    return subprocess.run([sys.executable, str(SCRIPT), "--train", pick, "--heldout", pick,
                           "--camera", "front", "--size", "32", "--epochs", "2", *extra],
                          capture_output=True, text=True, timeout=300)


def test_probe_prints_one_json_object(tiny_datasets):
    proc = _run(tiny_datasets, "--threshold", "0.0")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    # the same dataset on both sides: the counts agree, and the probe saw the whole curve
    assert out["train_frames"] > 0 and out["train_frames"] == out["heldout_frames"]
    assert 0.0 <= out["heldout_acc"] <= 1.0 and len(out["heldout_curve"]) == 2
    assert 0.5 <= out["heldout_majority"] <= 1.0


def test_no_turning_frames_is_a_clear_error(tiny_datasets):
    proc = _run(tiny_datasets, "--threshold", "5")
    assert proc.returncode != 0
    assert "turn by more than 5.0" in proc.stderr

"""benchmarks/grasp_alignment.py: the misalignment angle, and one JSON object from a policy."""

import json
import math
import subprocess
import sys

import pytest

from tests.benchmark_module import BENCHMARKS, load_benchmark

SCRIPT = BENCHMARKS / "grasp_alignment.py"


def test_misalignment_is_to_the_nearest_faces():
    angle = load_benchmark("grasp_alignment").misalignment_deg
    cube, bar = (0.02, 0.02, 0.02), (0.018, 0.032, 0.018)
    assert angle(math.radians(30), 0.0, cube) == pytest.approx(30)
    assert angle(math.radians(80), 0.0, cube) == pytest.approx(10)  # a cube repeats every 90°
    assert angle(math.radians(-50), math.radians(40), cube) == pytest.approx(0, abs=1e-9)
    # a bar closes across its narrow side: its yaw plus 90°, repeating every 180°
    assert angle(0.0, math.radians(90), bar) == pytest.approx(0, abs=1e-9)
    assert angle(0.0, 0.0, bar) == pytest.approx(90)


def run_benchmark(checkpoint: str, task: str, episodes: int, *more: str) -> dict:
    proc = subprocess.run([sys.executable, str(SCRIPT), "--checkpoint", checkpoint,
                           "--task", task, "--episodes", str(episodes), *more],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_benchmark_prints_one_json_object(tiny_checkpoint):
    out = run_benchmark(tiny_checkpoint, "pick", 2)
    assert out["env_id"] == "sims/Pick-v0" and out["episodes"] == 2
    assert sum(v["episodes"] for v in out["by_misalignment"].values()) == 2
    assert [r["seed"] for r in out["episodes_detail"]] == [0, 1]
    assert out["by_base_twin"] == {}  # pick names no base
    assert "by_release" not in out and out["episodes_detail"][0]["release"] is None


def test_stack_rows_say_whether_the_base_has_a_same_colour_twin(tiny_checkpoint):
    out = run_benchmark(tiny_checkpoint, "stack", 1)
    (row,) = out["episodes_detail"]
    assert row["base"] in ("cube", "cylinder") and isinstance(row["base_twin"], bool)
    (key, tally), = out["by_base_twin"].items()
    assert key == f"{row['base']} base, " + ("a twin" if row["base_twin"] else "no twin")
    assert tally == {"successes": int(row["success"]), "episodes": 1}


def test_stack_reads_the_release_and_the_expert_releases_over_the_base(tiny_checkpoint):
    out = run_benchmark(tiny_checkpoint, "stack", 1)
    assert sum(v["episodes"] for v in out["by_release"].values()) == 1
    # The expert's own release, read the same way: the block held up, aimed at the base.
    assert out["expert_successes"] == 1
    expert = out["expert_release_medians"]["successes"]
    assert expert["released"] == 1
    assert expert["target_goal_cm"] < 1.5 and expert["tilt_deg"] < 10
    assert out["expert_release_medians"]["failures"]["released"] == 0


def test_the_evaluation_stream_and_the_execution_can_be_chosen(tiny_checkpoint):
    import gymnasium as gym

    import sims  # noqa: F401  (registers the envs)

    out = run_benchmark(tiny_checkpoint, "stack", 2, "--stream", "eval", "--seed", "7",
                        "--execute-steps", "1")
    assert (out["stream"], out["execute_steps"], out["seeds"]) == ("eval", 1, [7, 8])
    env = gym.make("sims/Stack-v0", split="L1", mode="eval")
    for row in out["episodes_detail"]:  # the rows are that stream's scenes
        env.reset(seed=row["seed"])
        goal = env.unwrapped.goal
        assert (row["target"], row["base"]) == (goal.target.shape, goal.other.shape)
    env.close()

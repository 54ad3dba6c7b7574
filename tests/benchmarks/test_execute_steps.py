"""How many actions of each chunk a policy runs: execution.json, `vla eval`, and the
benchmark that chooses it on validation episodes and writes it."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import sys

import pytest

from policies.vla_policy import EXECUTION_FILE, VLAPolicy
from tests.benchmark_module import BENCHMARKS, load_benchmark
from vla.cli import main


@pytest.fixture
def checkpoint(tiny_checkpoint, tmp_path) -> str:
    """A copy of the tiny checkpoint to write execution.json into."""
    return shutil.copytree(tiny_checkpoint, tmp_path / "ckpt")


def _eval(*args: str) -> tuple[dict, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert main(["eval", "--tasks", "touch", "--splits", "L1", "--episodes", "1",
                     "--json", *args]) == 0
    return json.loads(out.getvalue()), err.getvalue()


def test_execution_json_sets_what_vla_eval_runs(checkpoint):
    assert VLAPolicy.from_pretrained(checkpoint, device="cpu").execute_steps is None
    result, said = _eval("--checkpoint", str(checkpoint))
    assert result["execute_steps"] is None and "each chunk runs to its end" in said

    (checkpoint / EXECUTION_FILE).write_text(json.dumps({"execute_steps": 1}))
    assert VLAPolicy.from_pretrained(checkpoint, device="cpu").execute_steps == 1
    result, said = _eval("--checkpoint", str(checkpoint))
    assert result["execute_steps"] == 1 and "re-planning every 1 step" in said
    # --execute-steps overrides it; 0 is the whole chunk
    result, _ = _eval("--checkpoint", str(checkpoint), "--execute-steps", "0")
    assert result["execute_steps"] is None


@pytest.mark.parametrize("value", [0, 99, "2", True, 1.5])
def test_a_bad_execution_json_names_the_file_the_field_and_the_value(checkpoint, value):
    (checkpoint / EXECUTION_FILE).write_text(json.dumps({"execute_steps": value}))
    with pytest.raises(ValueError, match=rf"execution.json: execute_steps={value!r}; "
                                         r"expected null or a whole number from 1"):
        VLAPolicy.from_pretrained(checkpoint, device="cpu")


@pytest.mark.parametrize("text, message", [("{", "is not JSON"), ("[2]", "expected {"),
                                           ("{}", "expected {")])
def test_a_malformed_execution_json_is_a_clear_error(checkpoint, text, message):
    (checkpoint / EXECUTION_FILE).write_text(text)
    with pytest.raises(ValueError, match="execution.json") as err:
        VLAPolicy.from_pretrained(checkpoint, device="cpu")
    assert message in str(err.value)


def test_vla_eval_refuses_a_negative_execute_steps(checkpoint):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(["eval", "--checkpoint", str(checkpoint), "--execute-steps", "-1"]) == 2
    assert "--execute-steps=-1; expected 0 (the whole chunk) or more" in err.getvalue()


def test_the_choice_takes_the_most_successes_and_ties_go_to_the_first_listed():
    choose = load_benchmark("execute_steps").choose
    assert choose({0: 40, 2: 44, 1: 43}) == 2
    assert choose({0: 44, 2: 44, 1: 43}) == 0
    assert choose({1: 10, 2: 10}) == 1


def test_the_benchmark_writes_the_choice_that_the_policy_then_reads(checkpoint):
    proc = subprocess.run([sys.executable, str(BENCHMARKS / "execute_steps.py"),
                           "--checkpoint", str(checkpoint), "--candidates", "0,1",
                           "--episodes", "1", "--workers", "1", "--write"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out["candidates"]) == {"0", "1"} and out["written"] is True
    for rates in out["candidates"].values():
        assert set(rates) == {"L1", "Pick-v0", "Place-v0", "Stack-v0", "PushTo-v0", "Touch-v0"}
    stored = json.loads((checkpoint / EXECUTION_FILE).read_text())
    assert stored["execute_steps"] == out["execute_steps"]
    assert VLAPolicy.from_pretrained(checkpoint, device="cpu").execute_steps == \
        out["execute_steps"]

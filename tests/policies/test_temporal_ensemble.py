"""Temporal ensembling (policies/temporal_ensemble.py) and `vla eval --temporal-ensemble`."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from policies.api import ActionChunk, Policy
from policies.temporal_ensemble import TemporalEnsemble
from tests.contracts import PANDA_CONTRACT
from vla.cli import main


class Scripted(Policy):
    """Query n returns a chunk of 3 actions whose every entry is 10 * n + k (k = step)."""

    contract = PANDA_CONTRACT

    def __init__(self) -> None:
        self.queries = 0

    def infer(self, observation: dict) -> ActionChunk:
        n, self.queries = self.queries, self.queries + 1
        rows = [np.full(5, 10.0 * n + k, np.float32) for k in range(3)]
        return ActionChunk(np.stack(rows), control_hz=10.0)

    def reset(self) -> None:
        self.queries = 0


def test_each_step_executes_the_weighted_mean_of_its_predictions():
    coeff = 0.5
    policy = TemporalEnsemble(Scripted(), coeff)
    first = policy.infer({})
    assert first.actions.shape == (1, 5) and first.actions[0, 0] == 0.0
    policy.infer({})  # step 1: predicted by query 0 (row 1 = 1) and query 1 (row 0 = 10)
    third = policy.infer({}).actions[0]  # step 2: query 0 row 2, query 1 row 1, query 2 row 0
    w = np.exp(-coeff * np.arange(3))  # oldest first
    assert third[0] == pytest.approx((w @ [2.0, 11.0, 20.0]) / w.sum())
    assert third[4] == 20.0  # the gripper: the newest prediction only
    fourth = policy.infer({}).actions[0]  # query 0 has run out: queries 1, 2, 3
    assert fourth[0] == pytest.approx((w @ [12.0, 21.0, 30.0]) / w.sum())
    policy.reset()  # a new episode forgets the old predictions
    assert policy.infer({}).actions[0, 0] == 0.0


def test_a_bad_coefficient_is_refused():
    for bad in (-0.1, math.nan):
        with pytest.raises(ValueError, match="temporal ensemble coeff"):
            TemporalEnsemble(Scripted(), bad)


def test_batches_are_refused_one_history_per_episode():
    with pytest.raises(NotImplementedError, match="one wrapper per episode"):
        TemporalEnsemble(Scripted()).infer_batch([{}, {}])


def test_vla_eval_runs_the_ensembled_policy(tiny_checkpoint, capsys):
    args = ["eval", "--checkpoint", tiny_checkpoint, "--tasks", "touch", "--splits", "L1",
            "--episodes", "2", "--json"]
    assert main([*args, "--temporal-ensemble", "0.01", "--workers", "2"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["temporal_ensemble"] == 0.01
    assert result["cells"]["sims/Touch-v0/L1"]["episodes"] == 2
    assert main([*args, "--temporal-ensemble", "0.01", "--execute-steps", "2"]) == 2
    assert "drop --execute-steps=2" in capsys.readouterr().err
    assert main([*args, "--temporal-ensemble", "nan"]) == 2
    assert "--temporal-ensemble=nan; expected a number >= 0" in capsys.readouterr().err

"""The safety layer and the chunk schedules: pure numpy, no server, no simulator."""

from __future__ import annotations

import numpy as np
import pytest

from bridges.mock_robot import MOCK_CONTRACT, MockRobot
from bridges.safe_robot import SafeRobot
from bridges.safety import SafetyLimits, check_chunk
from bridges.schedule import ReplaceSchedule, TemporalEnsemble, make_schedule

# The sim Panda's numbers: 5 cm and 0.3 rad per full-scale step, box in metres.
SPEC = {
    "action_names": ["dx", "dy", "dz", "dyaw", "gripper"],
    "action_scale": [0.05, 0.05, 0.05, 0.3, 1.0],
    "state_names": ["ee_x", "ee_y", "ee_z", "ee_yaw_sin", "ee_yaw_cos", "gripper_opening"],
    "workspace_low": [0.25, -0.35, 0.0],
    "workspace_high": [0.80, 0.35, 0.40],
    "max_gripper_opening_m": 0.08,
}
LIMITS = SafetyLimits.from_robot_spec(SPEC)


def state_at(x=0.5, y=0.0, z=0.2):
    return np.array([x, y, z, 0.0, 1.0, 1.0], np.float32)


def test_a_chunk_with_nan_or_inf_is_rejected_whole_and_the_robot_holds():
    chunk = np.zeros((4, 5), np.float32)
    chunk[2, 1] = np.nan
    chunk[3, 4] = np.inf
    safe = check_chunk(chunk, state_at(), LIMITS)
    assert safe.rejected and safe.actions.shape == (0, 5)
    assert "non-finite" in safe.changes[0] and "'dy'" in safe.changes[0]
    assert "[2, 3]" in safe.changes[0]  # the steps, for the log

    robot = MockRobot()
    with SafeRobot(robot, LIMITS) as safe_robot:
        safe_robot.observe()
        safe_robot.act([0.1, np.nan, 0, 0, 1])
    assert [c.kind for c in robot.device.commands] == ["stop", "stop"]  # hold, then close


def test_a_chunk_of_the_wrong_shape_is_rejected():
    safe = check_chunk(np.zeros((3, 4)), state_at(), LIMITS)
    assert safe.rejected and "expected (K, 5)" in safe.changes[0]


def test_values_are_clipped_to_the_normalised_range():
    safe = check_chunk([[2.0, -3.0, 0.5, 0.0, 1.5]], state_at(), LIMITS)
    np.testing.assert_allclose(safe.actions, [[1.0, -1.0, 0.5, 0.0, 1.0]])
    assert "clipped to [-1, 1]" in safe.changes[0] and "'dx', 'dy', 'gripper'" in safe.changes[0]


def test_each_axis_is_limited_to_its_maximum_step():
    limits = SafetyLimits.from_robot_spec(SPEC, max_step=(0.02, 0.02, 0.01, 0.1, 1.0))
    safe = check_chunk([[1.0, -1.0, 1.0, -1.0, -1.0]] * 3, state_at(), limits)
    # 2 cm of a 5 cm scale is 0.4; 1 cm is 0.2; 0.1 rad of 0.3 is 1/3; the gripper is free.
    np.testing.assert_allclose(safe.actions, [[0.4, -0.4, 0.2, -1 / 3, -1.0]] * 3, rtol=1e-6)
    assert any("max_step" in line for line in safe.changes)


def test_steps_that_would_leave_the_workspace_are_shortened_along_the_predicted_path():
    # From x = 0.70, +x at full scale (5 cm a step) reaches the 0.80 wall after two steps.
    chunk = np.tile([1.0, 0.0, 0.0, 0.0, 1.0], (4, 1)).astype(np.float32)
    chunk[:, 1] = 0.2  # y motion is fine and must survive
    safe = check_chunk(chunk, state_at(x=0.70), LIMITS)
    np.testing.assert_allclose(safe.actions[:, 0], [1.0, 1.0, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(safe.actions[:, 1], 0.2, atol=1e-6)
    path = 0.70 + np.cumsum(safe.actions[:, 0]) * 0.05
    assert path.max() <= 0.80 + 1e-6
    assert "workspace" in safe.changes[-1] and "[2, 3]" in safe.changes[-1]

    # A step that would cross the wall stops on it.
    safe = check_chunk([[1.0, 0, 0, 0, 1]], state_at(x=0.78), LIMITS)
    np.testing.assert_allclose(safe.actions[0, 0], 0.4, atol=1e-5)  # 2 cm left of 5


def test_a_robot_outside_the_box_may_come_back_but_not_go_further():
    above = state_at(z=0.401)  # the sim Panda's home pose sits on the top wall
    up = check_chunk([[0, 0, 1.0, 0, 1]], above, LIMITS)
    assert up.actions[0, 2] == 0.0
    down = check_chunk([[0, 0, -1.0, 0, 1]], above, LIMITS)
    assert down.actions[0, 2] == -1.0 and not down.changes


def test_the_gripper_stays_in_its_allowed_opening():
    # At most half open (4 of 8 cm): the normalised command may not exceed 0.
    limits = SafetyLimits.from_robot_spec(SPEC, gripper_opening_m=(0.0, 0.04))
    assert limits.gripper_range == (-1.0, 0.0)
    safe = check_chunk([[0, 0, 0, 0, 1.0], [0, 0, 0, 0, -1.0]], state_at(), limits)
    np.testing.assert_allclose(safe.actions[:, 4], [0.0, -1.0])
    assert "gripper" in safe.changes[0]


def test_without_a_state_the_box_is_not_checked_and_the_log_says_so():
    safe = check_chunk([[1.0, 0, 0, 0, 1]], None, LIMITS)
    assert not safe.rejected and "state is unknown" in safe.changes[0]


def test_limits_are_validated_with_the_field_named():
    with pytest.raises(ValueError, match="workspace_low"):
        SafetyLimits.from_robot_spec({**SPEC, "workspace_low": [0.9, 0, 0]})
    with pytest.raises(ValueError, match="max_step"):
        SafetyLimits.from_robot_spec(SPEC, max_step=(0.1,))
    with pytest.raises(ValueError, match="gripper_range"):
        SafetyLimits.from_contract(MOCK_CONTRACT, gripper_range=(-2.0, 1.0))


def test_the_sim_robot_spec_gives_the_same_limits():
    from sims.robots import PANDA_SPEC

    limits = SafetyLimits.from_robot_spec(PANDA_SPEC.to_dict())
    assert limits.workspace_high == PANDA_SPEC.workspace_high
    assert limits.position_dims == (0, 1, 2) and limits.gripper_dim == 4


# -- schedules ------------------------------------------------------------------------------
def chunk(first_value, k=4):
    return np.stack([np.full(5, first_value + i, np.float32) for i in range(k)])


def test_replace_schedule_drops_stale_steps_and_lets_the_newest_chunk_win():
    s = ReplaceSchedule()
    s.add(chunk(0), first_tick=0, now_tick=0)
    assert s.action_for(2)[0] == 2 and s.remaining(1) == 3
    # Requested at tick 2, arriving at tick 3: its step for tick 2 is stale.
    s.add(chunk(10), first_tick=2, now_tick=3)
    assert s.action_for(3)[0] == 11 and s.action_for(6) is None
    assert s.expired == 1 + 1  # the stale step, and the old chunk's unused step for tick 3
    s.clear()
    assert s.action_for(3) is None and s.remaining(0) == 0


def test_temporal_ensemble_blends_every_chunk_that_covers_a_tick():
    s = TemporalEnsemble(decay=0.0)
    s.add(chunk(0), first_tick=0, now_tick=0)  # ticks 0..3 -> 0, 1, 2, 3
    s.add(chunk(10), first_tick=1, now_tick=1)  # ticks 1..4 -> 10, 11, 12, 13
    assert s.action_for(0)[0] == 0
    assert s.action_for(2)[0] == pytest.approx((2 + 11) / 2)
    assert s.action_for(4)[0] == 13 and s.remaining(2) == 3
    weighted = TemporalEnsemble(decay=1.0)
    weighted.add(chunk(0), 0, 0)
    weighted.add(chunk(10), 1, 1)
    w = np.exp(-1.0)  # the older prediction weighs 1, the newer exp(-1)
    assert weighted.action_for(2)[0] == pytest.approx((2 + 11 * w) / (1 + w), rel=1e-5)


def test_an_unknown_execution_mode_lists_the_known_ones():
    with pytest.raises(ValueError, match="async, ensemble"):
        make_schedule("fastest")

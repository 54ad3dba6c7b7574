"""`SafeRobot`: any `Robot` whose every single `act` is checked again by the safety layer.

Apart from `bridges/safety.py` so that the limits do not import the robot interface (and
the robot interface's default limits can import them): no cycle between the two.
"""

from __future__ import annotations

from bridges.robot import Robot
from bridges.safety import SafetyLayer, SafetyLimits


class SafeRobot(Robot):
    """A `Robot` whose every `act` goes through the safety layer against the latest observed
    state: the last line of defence for code that drives the robot without the client loop
    (teleoperation, scripts), and for blended actions (temporal ensembling)."""

    def __init__(self, robot: Robot, limits: SafetyLimits | None = None) -> None:
        self.robot = robot
        self.layer = SafetyLayer(limits or robot.limits)
        self._state = None

    @property
    def contract(self):
        return self.robot.contract

    @property
    def limits(self) -> SafetyLimits:
        return self.layer.limits

    def connect(self) -> None:
        self.robot.connect()

    def observe(self) -> dict:
        obs = self.robot.observe()
        self._state = obs.get("state")
        return obs

    def act(self, action) -> None:
        safe = self.layer(action, self._state)
        if safe.rejected:
            self.robot.hold()
        else:
            self.robot.act(safe.actions[0])

    def hold(self) -> None:
        self.robot.hold()

    def reset(self) -> None:
        self.robot.reset()

    def close(self) -> None:
        self.robot.close()

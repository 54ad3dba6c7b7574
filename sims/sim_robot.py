"""A `sims` task as a `Robot`, so the bridge drives the simulator exactly as it drives an arm.

`act` and `hold` each advance the simulation by one control period (the env's own step),
so a robot that holds while the server is away still lets time pass, as a real one would.
Holding sends zero motion and keeps the last gripper command (a zero gripper action would
half-open the hand and drop what it holds).

It lives in `sims/`, not `bridges/`: it needs gymnasium and PyBullet, which a robot
computer (`pip install ./bridges`) does not install.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np

import sims  # noqa: F401  (registers the sims/ ids)
from bridges.contract import ActionContract
from bridges.robot import Robot, RobotError
from bridges.safety import SafetyLimits
from sims.camera import camera_options


class SimRobot(Robot):
    def __init__(self, task_id: str = "sims/Pick-v0", seed: int = 0, split: str = "L1",
                 mode: str = "eval", record: bool = False, render_size: int = 256,
                 instruction: str | None = None, max_steps: int | None = None,
                 cameras: tuple[str, ...] | dict = ("front",)) -> None:
        """`record` keeps an RGB frame (render_size px) per step for a video;
        `instruction` replaces the scene's own in every observation (what the policy reads);
        `max_steps` overrides the task's episode length; `cameras` are the views sent:
        names ("front", or "front" and "wrist") or a policy contract's {name: (h, w)}."""
        kwargs = {"split": split, "mode": mode, **camera_options(cameras)}
        if record:
            kwargs.update(render_mode="rgb_array", render_size=render_size)
        if max_steps is not None:
            kwargs["max_episode_steps"] = max_steps
        self.task_id, self.seed, self.record = task_id, seed, record
        self.instruction = instruction
        self.env = gym.make(task_id, **kwargs)
        self._contract = ActionContract.from_env(self.env)
        self._gripper = self._contract.action_names.index("gripper")
        self._obs = None
        self.frames: list[np.ndarray] = []

    # -- Robot --------------------------------------------------------------------------
    @property
    def contract(self) -> ActionContract:
        return self._contract

    @property
    def limits(self) -> SafetyLimits:
        return SafetyLimits.from_robot_spec(self.env.unwrapped.spec_robot.to_dict())

    def connect(self) -> None:
        self.reset_episode(self.seed)

    def observe(self) -> dict:
        if self._obs is None:
            raise RobotError("SimRobot.observe() before connect(): call connect() first")
        obs = dict(self._obs)
        if self.instruction:
            obs["instruction"] = self.instruction
        return obs

    def act(self, action) -> None:
        if self.done:
            return  # the episode is over; the bridge stops on `done`
        action = np.asarray(action, dtype=np.float32)
        self._last_gripper = float(action[self._gripper])
        self._step(action)

    def hold(self) -> None:
        if self._obs is None or self.done:
            return
        action = np.zeros(len(self._contract.action_names), np.float32)
        action[self._gripper] = self._last_gripper
        self._step(action)

    def close(self) -> None:
        self.env.close()

    # -- episodes -----------------------------------------------------------------------
    def reset_episode(self, seed: int | None = None) -> dict:
        """Start a new episode (same scene for the same seed); returns the env's info."""
        self._obs, self.info = self.env.reset(seed=seed)
        self.scene_instruction = self._obs["instruction"]
        self.terminated = self.truncated = False
        self.steps = 0
        self._last_gripper = 1.0  # reset opens the hand fully
        self.frames = [self.env.render()] if self.record else []
        return self.info

    @property
    def done(self) -> bool:
        return self.terminated or self.truncated

    @property
    def success(self) -> bool:
        return bool(self.info.get("success", False))

    def _step(self, action: np.ndarray) -> None:
        self._obs, _, self.terminated, self.truncated, self.info = self.env.step(action)
        self.steps += 1
        if self.record:
            self.frames.append(self.env.render())


@dataclass
class EpisodeResult:
    seed: int
    instruction: str        # what the policy was told
    scene_instruction: str  # the task the scene checks for success
    success: bool
    steps: int
    control: dict           # the client's run summary (rate, latency, holds)
    frames: list = field(default_factory=list, repr=False)

    def to_dict(self) -> dict:
        return {"seed": self.seed, "instruction": self.instruction,
                "scene_instruction": self.scene_instruction, "success": self.success,
                "steps": self.steps, "control": self.control}


def run_sim_episode(loop, robot: SimRobot, seed: int, instruction: str | None = None,
                    max_ticks: int | None = None, command=None) -> EpisodeResult:
    """One episode of `robot`'s scene (seed) driven by `loop` (a connected ControlLoop);
    `instruction`, when given, replaces the scene's own in what the policy reads.
    `command` (a `sims.commands.Command`) replaces the scene's goal itself: the policy
    reads the typed words and the simulator judges what they name (`NotInScene` when
    the scene lacks it, raised before anything moves)."""
    robot.reset_episode(seed)
    if command is not None:
        from sims.commands import ground

        env = robot.env.unwrapped
        robot._obs = env.set_goal(command.task, ground(command, env.goal))
    control = loop.run(steps=max_ticks, stop=lambda: robot.done, instruction=instruction)
    return EpisodeResult(seed, instruction or robot.scene_instruction, robot.scene_instruction,
                         robot.success, robot.steps, control, list(robot.frames))


def run_sim_plan(loop, robot: SimRobot, seed: int, plan: list) -> list[EpisodeResult]:
    """The steps of `plan` (`sims.commands.Command`s) one after another in one episode of
    `robot`'s scene (seed), each from the state the step before left: each step's goal
    replaces the last, the policy reads the step's words, and the simulator judges it when
    it ends (its task's own step budget). Stops after the first step not done; returns one
    result per step run."""
    from sims.commands import ground
    from sims.tasks import TASKS

    robot.reset_episode(seed)
    env, results = robot.env.unwrapped, []
    for command in plan:
        start = robot.steps
        robot._obs = env.set_goal(command.task, ground(command, env.goal))
        robot.terminated = False  # the last step's success ended nothing: go on
        control = loop.run(steps=TASKS[command.task].max_steps, stop=lambda: robot.done,
                           instruction=command.text)
        results.append(EpisodeResult(seed, command.text, robot.scene_instruction,
                                     robot.success, robot.steps - start, control,
                                     list(robot.frames)))
        if not robot.success or robot.truncated:
            break
    return results


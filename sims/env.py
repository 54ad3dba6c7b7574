"""`TabletopEnv`: one gymnasium environment class behind every registered task.

Observation: {"images": {"front": uint8 (H, W, 3) [, "wrist": ...]}, "state": float32 (6,),
"instruction": str}. Action: float32 (5,) in [-1, 1] = (dx, dy, dz, dyaw, gripper),
scaled by the robot's `RobotSpec` (the Panda moves at most 5 cm and 0.3 rad per step;
gripper -1 = closed, +1 = open). Out-of-range values are clipped; a NaN or a wrong
shape raises `ValueError` before anything in the simulator changes.
"""

from __future__ import annotations

import os
import string

import gymnasium as gym
import numpy as np
import pybullet
from gymnasium import spaces
from pybullet_utils import bullet_client

from sims.arms import ROBOTS
from sims.camera import Camera, CameraConfig, WristCamera
from sims.robots import wrap_gripper_yaw
from sims.scene import build_table
from sims.splits import check_split, episode_rng, rules_for
from sims.tasks import TASKS, Goal

PHYSICS_HZ = 240
INSTRUCTION_CHARSET = string.ascii_letters + string.digits + " ,.'-"


class QuietBulletClient(bullet_client.BulletClient):
    """A DIRECT client. BulletClient passes `options=''`, which makes PyBullet print
    `argv[0]=` to stdout on every connect and corrupts JSON that tools print there."""

    def __init__(self) -> None:  # noqa: D107  (mirrors BulletClient.__init__)
        self._shapes = {}
        self._pid = os.getpid()
        self._client = pybullet.connect(pybullet.DIRECT)


class TabletopEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}
    _blind = False  # True: observations without images (steps nobody looks at)

    def __init__(
        self,
        task: str = "pick",
        robot: str = "panda",
        image_size: int | tuple[int, int] = 128,
        wrist_camera: bool = False,
        split: str = "L1",
        mode: str = "train",
        render_mode: str | None = None,
        render_size: int = 256,
        random_start: bool = True,
    ) -> None:
        if task not in TASKS:
            raise ValueError(f"task={task!r} is unknown; expected one of {', '.join(TASKS)}")
        if robot not in ROBOTS:
            raise ValueError(f"robot={robot!r} is unknown; expected one of {', '.join(ROBOTS)}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode={render_mode!r}; expected None or 'rgb_array'")
        check_split(split, task)
        episode_rng(0, split, mode)  # validates mode
        self.task_name, self.robot_name = task, robot
        self.goal_task = task  # the task judged now: the scene's own until set_goal()
        self.random_start = random_start
        self.split, self.mode, self.render_mode = split, mode, render_mode
        h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
        self.spec_robot = ROBOTS[robot].spec
        ws = ROBOTS[robot].workspace
        view = {"eye": ws.camera_eye, "target": ws.camera_target}
        self.camera_configs = [CameraConfig("front", width=w, height=h, **view)]
        if wrist_camera:
            self.camera_configs.append(CameraConfig("wrist", width=w, height=h, fov_deg=70))
        self._render_config = CameraConfig("render", width=render_size, height=render_size,
                                           **view)

        image_spaces = {
            c.name: spaces.Box(0, 255, (c.height, c.width, 3), np.uint8)
            for c in self.camera_configs
        }
        n_state = len(self.spec_robot.state_names)
        self.observation_space = spaces.Dict({
            "images": spaces.Dict(image_spaces),
            "state": spaces.Box(-2.0, 2.0, (n_state,), np.float32),  # metres, sin/cos, fraction
            "instruction": spaces.Text(max_length=200, min_length=1, charset=INSTRUCTION_CHARSET),
        })
        n_action = len(self.spec_robot.action_names)
        self.action_space = spaces.Box(-1.0, 1.0, (n_action,), np.float32)

        self.p = QuietBulletClient()
        self.substeps = int(PHYSICS_HZ / self.spec_robot.control_hz)
        self.goal: Goal | None = None
        self.episode_seed: int | None = None

    # -- gymnasium API ------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        split = options.pop("split", self.split)
        if options:
            raise ValueError(f"reset options {sorted(options)} are unknown; expected 'split'")
        check_split(split, self.task_name)
        # The episode is a pure function of (seed, split, mode); without a seed, draw one
        # from the env's generator so successive resets differ but stay reproducible.
        self.episode_seed = int(seed if seed is not None else self.np_random.integers(2**31))
        self.current_split = split
        rng = episode_rng(self.episode_seed, split, self.mode)
        self._build_world()
        self.goal = self.task.setup(rng, rules_for(self.task_name, split, rng))
        self.goal.locations = self.robot.workspace.locations
        self.goal_task = self.task_name
        settle = PHYSICS_HZ // 10  # let objects settle before the first frame
        if self.random_start:
            self._move_to_random_start(rng)
            settle = PHYSICS_HZ // 2  # and let the arm get there
        for _ in range(settle):
            self.p.stepSimulation()
        self.steps = 0
        return self._observation(), self._info(False)

    def step(self, action):
        if self.goal is None:
            raise RuntimeError("step() called before reset()")
        action = self._validate(action)
        robot = self.robot
        scaled = action * self.spec_robot.action_scale
        pos, yaw = robot.ee_pose()
        low, high = self.spec_robot.workspace_low, self.spec_robot.workspace_high
        target = np.clip(pos + scaled[:3], low, high)
        target_yaw = wrap_gripper_yaw(yaw + float(scaled[3]))
        robot.move_to(target, target_yaw, (float(action[4]) + 1.0) / 2.0)
        for _ in range(self.substeps):
            self.p.stepSimulation()
        self.steps += 1
        success = self.task.success(self.goal)
        return self._observation(), float(success), success, False, self._info(success)

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        return self._render_camera.render()

    def close(self):
        if getattr(self, "p", None) is not None:
            try:
                self.p.disconnect()
            except pybullet.error:
                pass
            self.p = None

    # -- details ------------------------------------------------------------------------
    def _validate(self, action) -> np.ndarray:
        try:
            action = np.asarray(action, dtype=np.float32)
        except (TypeError, ValueError) as err:
            expected = self.action_space.shape
            raise ValueError(f"action must be a float array of shape {expected}: {err}") from None
        if action.shape != self.action_space.shape:
            raise ValueError(
                f"action has shape {action.shape}; expected {self.action_space.shape} "
                f"({', '.join(self.spec_robot.action_names)})"
            )
        bad = ~np.isfinite(action)
        if bad.any():
            names = [self.spec_robot.action_names[i] for i in np.flatnonzero(bad)]
            raise ValueError(f"action is not finite in {names}: {action.tolist()}")
        return np.clip(action, -1.0, 1.0)  # documented: out-of-range values are clipped

    def _move_to_random_start(self, rng: np.random.Generator) -> None:
        """Send the hand to a random pose above the board.

        From one fixed home pose, a policy can read the goal's direction off its own
        position after a step or two and never learn to look (the "copycat" shortcut of
        behaviour cloning); random starts take that shortcut away. The pose is drawn after
        the layout, so a seed's objects are the same either way.
        """
        home, _ = self.robot.ee_pose()
        ws = self.robot.workspace  # the arm's own start box (sims/workspace.py)
        pos = np.array([rng.uniform(*ws.start_x), rng.uniform(*ws.start_y),
                        home[2] - rng.uniform(0.0, ws.start_drop)])
        self.robot.move_to(pos, float(rng.uniform(-ws.start_yaw, ws.start_yaw)), 1.0)

    def _build_world(self) -> None:
        """Rebuild the scene from nothing, so an episode never depends on the last one."""
        p = self.p
        p.resetSimulation()
        p.setPhysicsEngineParameter(fixedTimeStep=1.0 / PHYSICS_HZ, numSolverIterations=50,
                                    deterministicOverlappingPairs=1)
        p.setGravity(0, 0, -9.81)
        build_table(p)
        self.robot = ROBOTS[self.robot_name](p)
        self.robot.reset()
        self.task = TASKS[self.task_name](p, self.robot)
        self.cameras = [
            WristCamera(p, c) if c.name == "wrist" else Camera(p, c) for c in self.camera_configs
        ]
        self._render_camera = Camera(p, self._render_config)

    def set_goal(self, task: str, goal: Goal) -> dict:
        """Judge the rest of this episode by `goal` of `task` instead of the scene's own
        (what a user typed; see sims/commands.py). Observations then carry the goal's
        instruction. Returns the current observation."""
        if self.goal is None:
            raise RuntimeError("set_goal() called before reset()")
        if task not in TASKS:
            raise ValueError(f"task={task!r} is unknown; expected one of {', '.join(TASKS)}")
        self.task, self.goal, self.goal_task = TASKS[task](self.p, self.robot), goal, task
        return self._observation()

    def _observation(self) -> dict:
        images = {}
        for cam in self.cameras if not self._blind else ():
            if isinstance(cam, WristCamera):
                images[cam.config.name] = cam.render_from(*self.robot.ee_pose())
            else:
                images[cam.config.name] = cam.render()
        return {"images": images, "state": self.robot.state(), "instruction": self.goal.instruction}

    def _info(self, success: bool) -> dict:
        return {
            "success": bool(success),
            "task": self.goal_task,
            "robot": self.robot_name,
            "split": self.current_split,
            "seed": self.episode_seed,
            "instruction": self.goal.instruction,
        }

    def contract_fields(self) -> dict:
        """The robot's half of the action contract (see `bridges.contract.ActionContract`)."""
        spec = self.spec_robot
        return {
            "robot": self.robot_name,
            "action_names": list(spec.action_names),
            "action_units": list(spec.action_units),
            "action_scale": spec.action_scale.tolist(),
            "control_hz": spec.control_hz,
            "state_names": list(spec.state_names),
            "cameras": {c.name: [c.height, c.width] for c in self.camera_configs},
            "state_units": list(spec.state_units),
            "frame": spec.frame,
            "camera_poses": {c.name: c.pose() for c in self.camera_configs},
        }

    def episode_metadata(self) -> dict:
        """Everything a dataset should remember about the current episode."""
        spec = self.spec_robot
        return {
            "env_id": self.spec.id if self.spec is not None else None,
            "task": self.task_name,
            "robot": self.robot_name,
            "instruction": self.goal.instruction,
            "seed": self.episode_seed,
            "split": self.current_split,
            "mode": self.mode,
            "control_hz": spec.control_hz,
            "robot_spec": spec.to_dict(),
            "cameras": {c.name: [c.height, c.width] for c in self.camera_configs},
            "random_start": self.random_start,
        }

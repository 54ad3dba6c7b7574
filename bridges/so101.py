"""The real SO-101 as a `Robot`: the same contract as its simulated twin (sims/so101.py).

State and actions are the gripper's pose, as in the suite: the six servos' positions
(one sync read) become joint angles through the arm's calibration, and the tool pose
through forward kinematics from the vendored URDF (bridges/kinematics.py, numpy only).
An action moves that pose: a top-down solve from the last solution gives joint goals,
capped per tick (`so101_safety.cap_steps`) and written in one sync write.

    robot = SO101("/dev/ttyACM0", "~/.cache/.../follower.json", front=0)  # /dev/video0
    with robot:            # goals = present positions, then torque on: nothing jumps
        robot.observe(); robot.act(action); robot.hold()

Needs the so101 extra (`pip install "./bridges[so101]"`: pyserial). A policy trained on
the twin is accepted by this robot's hello: `SO101_CONTRACT` is the twin's too.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from bridges.contract import ActionContract
from bridges.feetech import FeetechBus
from bridges.kinematics import Chain, rotation_rpy, top_down, transform, wrap_half_turn
from bridges.robot import Robot, RobotError
from bridges.so101_calibration import MotorCalibration, check_servos, load_calibration
from bridges.so101_safety import cap_steps, limit_gripper, torque_on

URDF = Path(__file__).parent / "third_party" / "so_arm100" / "so101_new_calib.urdf"
# The tool point in gripper_frame_link's frame: 13 mm towards the moving jaw, where a
# gripped block's centre sits, turned so that the jaws close along the tool's y axis.
TOOL = transform(rotation_rpy(0.0, 0.0, math.pi / 2), [-0.013, 0.0, 0.0])
ARM = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll")
GRIPPER = "gripper"
# URDF joint angle = sign x LeRobot's degrees (0 = the middle of the calibrated range in
# both, the URDF's "new calibration"). A joint that turns the wrong way on a real arm
# (LeRobot issue #930) is fixed here, or with drive_mode in the calibration file.
URDF_SIGN = {name: 1.0 for name in ARM}

SO101_CONTRACT = {
    "robot": "so101",
    "action_names": ("dx", "dy", "dz", "dyaw", "gripper"),
    "action_units": ("m", "m", "m", "rad", "opening fraction"),
    "action_scale": (0.02, 0.02, 0.02, 0.3, 1.0),
    "control_hz": 10.0,
    "state_names": ("ee_x", "ee_y", "ee_z", "ee_yaw_sin", "ee_yaw_cos", "gripper_opening"),
    "state_units": ("m", "m", "m", "sin", "cos", "opening fraction"),
}
WORKSPACE_LOW, WORKSPACE_HIGH = (0.10, -0.16, 0.0), (0.30, 0.16, 0.10)
# The start pose (radians, ARM order): the tool 6 cm over the middle of the twin's
# board, pointing down. `reset()` brings the arm there between recorded episodes.
START_JOINTS = (0.0, -0.26, 0.47, 1.36, 0.0)
RESET_TIMEOUT_S = 10.0
MAX_STEP_PER_TICK = 60  # servo steps (5.3 degrees) per joint per tick at most


# The wrist turns half round (when its roll runs out) only with the tool above this: the
# jaws' tips then clear a 2 cm block. Lower, a half turn sweeps them through the blocks
# (in the twin it flung one off the board).
FLIP_ABOVE_M = 0.035


def tool_chain() -> Chain:
    return Chain(URDF, "gripper_frame_link", tool=TOOL)


def solve_tool(chain: Chain, pos, yaw: float, start: np.ndarray,
               home: np.ndarray | None = None) -> np.ndarray:
    """Joint angles (5,) with the tool at `pos`, pointing down, at `yaw`, solved from
    `start` so the arm stays on one branch (twin and real arm alike). Where the wrist's
    roll cannot reach `yaw`: up high, a half turn (a block is gripped the same either
    way); low down, the yaw it has. A solve stalled against a joint limit is tried again
    from `home` (default `START_JOINTS`). The best found is returned even when nothing
    reaches `pos`."""
    home = np.array(START_JOINTS) if home is None else home
    q, err = chain.solve(top_down(pos, yaw), start, iterations=60)
    if err < 1e-3:
        return q
    present = chain.forward(start)
    tries = [(math.atan2(present[1, 0], present[0, 0]), start)]
    if pos[2] > FLIP_ABOVE_M:
        tries += [(yaw + math.pi, start), (yaw, home), (yaw + math.pi, home)]
    for other_yaw, again in tries:
        q_other, err_other = chain.solve(top_down(pos, other_yaw), again, iterations=60)
        if err_other < err:
            q, err = q_other, err_other
        if err < 1e-3:
            break
    return q


def joint_angles(motors: dict[str, MotorCalibration], raw: dict[int, int]) -> np.ndarray:
    """Servo positions (steps) -> the URDF's arm joint angles (5,), radians."""
    return np.array([URDF_SIGN[n] * math.radians(motors[n].degrees(raw[motors[n].id]))
                     for n in ARM])


def gripper_opening(motors: dict[str, MotorCalibration], raw: dict[int, int]) -> float:
    """The gripper servo's position as an opening fraction: range_min 0 (closed) to
    range_max 1 (open)."""
    grip = motors[GRIPPER]
    span = max(grip.range_max - grip.range_min, 1)
    return float(np.clip((raw[grip.id] - grip.range_min) / span, 0.0, 1.0))


def arm_calibration(path: str | Path) -> tuple[dict[str, MotorCalibration], list[int]]:
    """An SO-101's calibration file (LeRobot's) and its servo ids in joint order; every
    joint must be there."""
    motors = load_calibration(path)
    missing = [n for n in (*ARM, GRIPPER) if n not in motors]
    if missing:
        raise ValueError(f"{path}: no calibration for joints {missing}; expected "
                         f"{', '.join((*ARM, GRIPPER))} (LeRobot's SO-101 names)")
    return motors, [motors[n].id for n in (*ARM, GRIPPER)]


def open_checked(port: str, bus: FeetechBus | None, motors: dict[str, MotorCalibration],
                 which: str) -> FeetechBus:
    """The bus (opened on `port` unless given), its servos' memory checked against the
    calibration: a mismatch is refused before anything moves."""
    bus = bus if bus is not None else FeetechBus(port)
    wrong = check_servos(bus, motors)
    if wrong:
        raise RobotError(f"{which}: the servos' memory differs from the calibration file: "
                         + "; ".join(wrong) + ". Run the calibration again "
                         "(python -m bridges.so101_calibration).")
    return bus


def state_of(pose: np.ndarray, opening: float) -> np.ndarray:
    """(4, 4) tool pose and opening fraction -> the contract's state (6,)."""
    yaw = wrap_half_turn(math.atan2(pose[1, 0], pose[0, 0]))  # grips the same a half turn on
    return np.array([*pose[:3, 3], math.sin(yaw), math.cos(yaw), opening], dtype=np.float32)


class SO101(Robot):
    """An SO-101 follower arm on a Feetech bus, with optional cameras."""

    def __init__(self, port: str, calibration: str | Path, front: int | str | None = None,
                 wrist: int | str | None = None, image_size: int = 128, frame: str = "",
                 bus: FeetechBus | None = None) -> None:
        """`front`, `wrist`: camera sources as OpenCV takes them (a device index, a URL or
        a video file), each read in its own thread and resized to `image_size`."""
        from bridges.camera import OpenCVCamera, ThreadedCamera

        self.port = port
        self.cameras = {name: ThreadedCamera(OpenCVCamera(source, (image_size,) * 2, name))
                        for name, source in (("front", front), ("wrist", wrist))
                        if source is not None}
        self.motors, self.servos = arm_calibration(calibration)
        self.chain = tool_chain()
        self.bus, self._frame = bus, frame
        self._q: np.ndarray | None = None  # last joint solution (radians)

    @property
    def contract(self) -> ActionContract:
        sizes = {name: tuple(cam.size) for name, cam in self.cameras.items()}
        return ActionContract(**SO101_CONTRACT, cameras=sizes, frame=self._frame)

    # -- life cycle -----------------------------------------------------------------------
    def connect(self) -> None:
        self.bus = open_checked(self.port, self.bus, self.motors, "the arm")
        limit_gripper(self.bus, self.motors[GRIPPER].id)
        torque_on(self.bus, self.servos)  # goals = present positions first: no jump
        for cam in self.cameras.values():
            cam.open()
        self._q = self._joints(self.bus.read_positions(self.servos))

    def close(self) -> None:
        if self.bus is None:
            return
        try:
            self.hold()  # torque stays on: the arm does not drop
        finally:
            for cam in self.cameras.values():
                cam.close()
            self.bus.close()
            self.bus = None

    # -- reading --------------------------------------------------------------------------
    def _joints(self, raw: dict[int, int]) -> np.ndarray:
        return joint_angles(self.motors, raw)

    def _opening(self, raw: dict[int, int]) -> float:
        return gripper_opening(self.motors, raw)

    def observe(self) -> dict:
        raw = self._bus().read_positions(self.servos)
        state = state_of(self.chain.forward(self._joints(raw)), self._opening(raw))
        images = {name: cam.read() for name, cam in self.cameras.items()}
        return {"images": images, "state": state, "instruction": ""}

    # -- moving ---------------------------------------------------------------------------
    def act(self, action: np.ndarray) -> None:
        action = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        raw = self._bus().read_positions(self.servos)
        q_now = self._joints(raw)
        pose = self.chain.forward(q_now)
        step = action * np.array(SO101_CONTRACT["action_scale"])
        target = np.clip(pose[:3, 3] + step[:3], WORKSPACE_LOW, WORKSPACE_HIGH)
        yaw = math.atan2(pose[1, 0], pose[0, 0]) + step[3]
        q = solve_tool(self.chain, target, yaw, self._q if self._q is not None else q_now)
        self._q = q
        goals = {self.motors[n].id: self.motors[n].raw(math.degrees(URDF_SIGN[n] * angle))
                 for n, angle in zip(ARM, q)}
        grip = self.motors[GRIPPER]
        opening = (float(action[4]) + 1.0) / 2.0
        goals[grip.id] = round(grip.range_min + opening * (grip.range_max - grip.range_min))
        # Joints capped one by one would leave the path (one arrives, another lags); all
        # arm joints are scaled by one factor, so the tool moves towards the target.
        arm_ids = [self.motors[n].id for n in ARM]
        largest = max(abs(goals[i] - raw[i]) for i in arm_ids)
        if largest > MAX_STEP_PER_TICK:
            scale = MAX_STEP_PER_TICK / largest
            for i in arm_ids:
                goals[i] = raw[i] + int((goals[i] - raw[i]) * scale)
            self._q = None  # not there yet: solve from where the arm is next tick
        self._bus().write_goals(cap_steps(goals, raw, MAX_STEP_PER_TICK))

    def reset(self) -> None:
        """Back to `START_JOINTS` with the gripper open, at most `MAX_STEP_PER_TICK` per
        joint per tick, all joints scaled together; returns when there (or raises after
        `RESET_TIMEOUT_S`)."""
        bus, period = self._bus(), 1.0 / SO101_CONTRACT["control_hz"]
        grip = self.motors[GRIPPER]
        start = {self.motors[n].id: self.motors[n].raw(math.degrees(URDF_SIGN[n] * angle))
                 for n, angle in zip(ARM, START_JOINTS)}
        start[grip.id] = grip.range_max
        deadline = time.monotonic() + RESET_TIMEOUT_S
        while True:
            present = bus.read_positions(self.servos)
            far = max(abs(start[i] - present[i]) for i in start)
            if far <= 10:
                break
            if time.monotonic() > deadline:
                raise RobotError(f"reset: the arm is still {far} steps from its start pose "
                                 f"after {RESET_TIMEOUT_S:g} s; is something in its way?")
            scale = min(1.0, MAX_STEP_PER_TICK / far)
            bus.write_goals({i: present[i] + int((start[i] - present[i]) * scale)
                             for i in start})
            time.sleep(period)
        self._q = np.array(START_JOINTS)

    def hold(self) -> None:
        if self.bus is None:
            return
        present = self.bus.read_positions(self.servos)
        self.bus.write_goals(present)
        self._q = self._joints(present)

    def _bus(self) -> FeetechBus:
        if self.bus is None:
            raise RobotError("the SO-101 is not connected; call connect() (or use `with`)")
        return self.bus


class SO101Leader:
    """The leader arm: the same servos and calibration file format, torque off, moved by
    hand. `pose()` is its tool pose through the same kinematics as the follower's, so
    the follower can be told to go where the leader is (`vla record --leader`)."""

    def __init__(self, port: str, calibration: str | Path, bus: FeetechBus | None = None):
        self.port, self.bus = port, bus
        self.motors, self.servos = arm_calibration(calibration)
        self.chain = tool_chain()

    def connect(self) -> None:
        from bridges.so101_safety import torque_off

        self.bus = open_checked(self.port, self.bus, self.motors, "the leader arm")
        torque_off(self.bus, self.servos)  # moved by hand

    def pose(self) -> tuple[np.ndarray, float]:
        """(4, 4) tool pose of the leader, and its gripper's opening fraction."""
        if self.bus is None:
            raise RobotError("the leader arm is not connected")
        raw = self.bus.read_positions(self.servos)
        return self.chain.forward(joint_angles(self.motors, raw)), gripper_opening(self.motors, raw)

    def close(self) -> None:
        if self.bus is not None:
            self.bus.close()
            self.bus = None


def follow(leader_pose: np.ndarray, opening: float, state: np.ndarray) -> np.ndarray:
    """The normalised action (5,) that moves a follower in `state` towards the leader's
    tool pose and opening, clipped to one step."""
    scale = np.array(SO101_CONTRACT["action_scale"])
    target = state_of(leader_pose, opening)
    move = (target[:3] - state[:3]) / scale[:3]
    yaw_now, yaw_to = math.atan2(state[3], state[4]), math.atan2(target[3], target[4])
    turn = wrap_half_turn(yaw_to - yaw_now) / scale[3]
    return np.clip(np.array([*move, turn, 2.0 * opening - 1.0]), -1.0, 1.0).astype(np.float32)

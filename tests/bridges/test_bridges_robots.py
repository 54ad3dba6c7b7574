"""The robots behind the `Robot` interface: the mock arm, the sim robot, the OpenCV camera."""

from __future__ import annotations

import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from bridges.camera import CameraError, OpenCVCamera, cameras_for
from bridges.contract import ActionContract
from bridges.mock_robot import MOCK_CONTRACT, DeviceError, MockRobot
from bridges.robot import RobotError


def test_the_bridges_package_needs_neither_torch_nor_pybullet():
    code = ("import sys, bridges.client, bridges.mock_robot, bridges.camera, bridges.safety; "
            "bad = [m for m in ('torch', 'pybullet', 'gymnasium', 'transformers') "
            "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_mock_robot_scales_actions_records_commands_and_observes_per_contract():
    with MockRobot() as robot:
        obs = robot.observe()
        assert obs["images"]["front"].shape == (128, 128, 3)
        assert obs["images"]["front"].dtype == np.uint8
        assert obs["state"].shape == (6,) and obs["state"].dtype == np.float32
        robot.act(np.array([1.0, -0.5, 0.0, 1.0, -1.0], np.float32))
        robot.hold()
        moved = robot.observe()["state"]
    kinds = [c.kind for c in robot.device.commands]
    assert kinds == ["move", "stop", "stop"]  # act, hold, and the stop of close()
    np.testing.assert_allclose(robot.device.commands[0].action, [0.05, -0.025, 0, 0.3, 0.0])
    np.testing.assert_allclose(moved[:2], obs["state"][:2] + [0.05, -0.025], atol=1e-6)
    assert moved[5] == 0.0  # gripper -1 = closed


def test_mock_device_latency_and_scripted_failure():
    robot = MockRobot(latency_s=0.02, fail_after=3)
    robot.connect()
    start = time.monotonic()
    robot.act(np.zeros(5, np.float32))
    robot.hold()
    assert time.monotonic() - start >= 0.04
    with pytest.raises(DeviceError, match="command 3 failed"):
        robot.act(np.zeros(5, np.float32))
    assert isinstance(DeviceError("x"), RobotError)
    robot.close()


def test_the_sim_robot_holds_its_gripper_and_uses_the_given_instruction():
    from sims.sim_robot import SimRobot

    with SimRobot("sims/Pick-v0", seed=3, instruction="wave hello", max_steps=12) as robot:
        assert robot.observe()["instruction"] == "wave hello"
        assert robot.scene_instruction != "wave hello"
        assert robot.contract == ActionContract.from_dict({**robot.env.unwrapped.contract_fields()})
        assert robot.limits.workspace_high == (0.80, 0.35, 0.40)
        for _ in range(5):
            robot.act(np.array([0, 0, 0, 0, -1.0], np.float32))  # close the hand
        closed = robot.observe()["state"][5]
        for _ in range(5):
            robot.hold()
        # Holding must not reopen the hand (a zero gripper action would half-open it).
        assert robot.observe()["state"][5] <= closed + 0.02
        while not robot.done:
            robot.hold()
        assert robot.steps == 12 and robot.truncated


def write_test_video(path, colour_bgr, size=(48, 64), n=5):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (size[1], size[0]))
    assert writer.isOpened()
    for _ in range(n):
        writer.write(np.full((*size, 3), colour_bgr, np.uint8))
    writer.release()


def test_opencv_camera_resizes_to_the_contract_and_gives_rgb(tmp_path):
    video = tmp_path / "red.avi"
    write_test_video(video, colour_bgr=(0, 0, 255))  # pure red, in OpenCV's BGR order
    contract = ActionContract.from_dict({**MOCK_CONTRACT, "cameras": {"front": [32, 40]}})
    cams = cameras_for(contract, {"front": str(video)})
    with cams["front"] as cam:
        frame = cam.read()
    assert frame.shape == (32, 40, 3) and frame.dtype == np.uint8
    r, g, b = frame.reshape(-1, 3).mean(axis=0)
    assert r > 200 and g < 50 and b < 50  # red stays red: channels turned to RGB


def test_opencv_camera_errors_say_what_to_check(tmp_path):
    with pytest.raises(CameraError, match="could not open source 97.*/dev/video97"):
        OpenCVCamera("97", size=(64, 64)).open()
    with pytest.raises(CameraError, match="could not open"):
        OpenCVCamera(str(tmp_path / "missing.mp4"), size=(64, 64)).open()
    with pytest.raises(ValueError, match="missing \\['front'\\]"):
        cameras_for(ActionContract.from_dict(MOCK_CONTRACT), {"wrist": 0})
    video = tmp_path / "short.avi"
    write_test_video(video, (0, 255, 0), n=1)
    with OpenCVCamera(str(video), size=(16, 16)) as cam:
        cam.read()
        with pytest.raises(CameraError, match="returned no frame"):
            cam.read()

"""`RobotConsoleDriver`: the console attached to a robot's control loop, not a simulator
(`vla console --robot CLASS --connect URL`).

The robot is any `bridges.robot.Robot` (a real arm, or the sim robot standing in for
one); the policy runs on a `vla serve`; `bridges.client.ControlLoop` drives, with every
safety check of `vla bridge`. The console watches each observation as the loop takes it
(with the newest attention maps the server sent) and stops the loop between ticks, after
which the loop holds the robot. There is no simulator to judge: a command is refused
when the grammar does not understand it or when the policy's first answer says it does
not see what is named (the presence check); the verdict is the person's to make.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import cv2
import numpy as np

from bridges.robot import Robot
from vla.console.overlay import draw_attention, encode_jpeg

MAX_TICKS = 600  # a minute at 10 Hz: a command that has not finished by then stops


class WatchedRobot(Robot):
    """`robot`, with every observation also handed to `on_observe`."""

    def __init__(self, robot: Robot, on_observe: Callable[[dict], None]) -> None:
        self.robot, self.on_observe = robot, on_observe

    @property
    def contract(self):
        return self.robot.contract

    @property
    def limits(self):
        return self.robot.limits

    def connect(self) -> None:
        self.robot.connect()

    def observe(self) -> dict:
        obs = self.robot.observe()
        self.on_observe(obs)
        return obs

    def act(self, action) -> None:
        self.robot.act(action)

    def hold(self) -> None:
        self.robot.hold()

    def close(self) -> None:
        self.robot.close()


class RobotConsoleDriver:
    def __init__(self, robot: Robot, url: str, emit: Callable, config=None,
                 max_ticks: int = MAX_TICKS, view_size: int = 256) -> None:
        from bridges.client import ControlLoop, LoopConfig

        self.emit, self.max_ticks, self.view_size = emit, max_ticks, view_size
        self.stop_event = threading.Event()
        self.robot = WatchedRobot(robot, self._on_observe)
        config = config or LoopConfig()
        config.attention = True
        self.loop = ControlLoop(self.robot, url, config)
        self.loop.connect()
        capabilities = self.loop.link.server_capabilities or {}
        self.presence_threshold = capabilities.get("grounding_threshold")
        self.fps = float(robot.contract.control_hz)
        self.env_id, self.seed = robot.contract.robot, 0
        self.frames: list[np.ndarray] = []
        self.last_instruction, self._running = "", False

    def reset(self, *_, **__) -> dict:
        """A robot has no scenes to pick: show what its camera sees now."""
        event = {"type": "scene", "env_id": self.env_id, "task": "", "split": "", "seed": 0,
                 "contents": "a robot: the scene is what its cameras see.",
                 "instruction": ""}
        self.emit(event)
        self._on_observe(self.robot.robot.observe(), step=0)
        return event

    def command(self, text: str, scene: str = "auto") -> dict:
        from bridges.client import NotInView
        from sims.commands import NotUnderstood, parse

        text = " ".join(text.split())
        self.stop_event.clear()
        try:
            command = parse(text)
        except NotUnderstood as err:
            return self._event({"type": "refused", "command": text, "understood": None,
                                "kind": "not understood", "reason": str(err)})
        understood = f"{command.task}: {command.summary()}"
        self.emit({"type": "understood", "command": text, "understood": understood,
                   "task": command.task, "env_id": self.env_id, "seed": 0, "stages": []})
        self.frames, self.last_instruction, self._running = [], text, True
        try:
            summary = self.loop.run(self.max_ticks, stop=self.stop_event.is_set,
                                    instruction=text)
        except NotInView as err:
            return self._event({"type": "refused", "command": text, "understood": understood,
                                "kind": "not in view", "reason": str(err)})
        finally:
            self._running = False
        if self.stop_event.is_set():
            return self._event({"type": "stopped", "command": text,
                                "steps": summary["ticks"], "stage": ""})
        return self._event({"type": "verdict", "command": text, "understood": understood,
                            "task": command.task, "success": None, "steps": summary["ticks"],
                            "stage": "", "note": "no simulator judges a robot: you do"})

    def stop(self) -> None:
        self.stop_event.set()

    def _event(self, event: dict) -> dict:
        self.emit(event)
        return event

    def _on_observe(self, obs: dict, step: int | None = None) -> None:
        camera = next(iter(self.robot.contract.cameras))
        image = np.asarray(obs["images"][camera])
        view = cv2.resize(image, (self.view_size, self.view_size),
                          interpolation=cv2.INTER_NEAREST)
        heat = getattr(self.loop, "attention", None) if self._running else None
        if heat is not None:
            view = draw_attention(view, heat.astype(np.float32), [])
        if self._running:
            self.frames.append(view)
        stats = getattr(self.loop, "stats", None)
        presence = stats.presence[-1] if self._running and stats and stats.presence else None
        self.emit(("frame", encode_jpeg(view), {
            "step": step if step is not None else getattr(self.loop, "tick", 0) + 1,
            "stage": "", "presence": presence, "threshold": self.presence_threshold,
            "attention": heat is not None, "labels": [], "rendered_at": time.time()}))

    def close(self) -> None:
        self.loop.close()

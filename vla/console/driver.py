"""The console's robot: a simulator scene, a policy, and one episode at a time.

`ConsoleDriver` is synchronous and runs in a worker thread of the console server; it
reports everything a person watching should see through `emit(event)`, where an event is
a JSON-able dict, or `("frame", jpeg_bytes, meta)` for a camera frame:

    scene       the scene after a reset: task, split, seed, what it holds
    understood  a command's parsed goal, before anything moves
    refused     why nothing moves: not understood, names what the scene lacks, or the
                policy does not see it (presence score below the checkpoint's threshold)
    frame       the policy's camera at the control rate, with where each keypoint group
                looks drawn over it; meta: step, stage, presence, rendered_at (unix s)
    stopped     a person pressed stop: the robot holds from that tick on
    verdict     the simulator's judgement when the episode ends

Everything is judged by the simulator (`sims.stages` for the stages, the task's own
success test for the verdict), exactly as `vla eval` and `vla command` judge it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import cv2
import numpy as np

from vla.console.overlay import draw_attention, encode_jpeg, group_labels

AUTO = "auto"


class ConsoleDriver:
    def __init__(self, policy, emit: Callable, fps: float = 10.0, seed: int = 0,
                 view_size: int = 256) -> None:
        self.policy, self.emit, self.fps, self.view_size = policy, emit, fps, view_size
        self.stop_event = threading.Event()
        self.env = self.env_id = None
        self.split, self.seed = "L1", seed
        self.frames: list[np.ndarray] = []  # the last episode's frames, for the download
        self.last_instruction = ""

    @property
    def presence_threshold(self) -> float | None:
        return getattr(self.policy, "presence_threshold", None)

    # -- scenes ---------------------------------------------------------------------------
    def reset(self, task: str = "pick", split: str = "L1", seed: int | None = None) -> dict:
        """A fresh scene of `task` (a task name or env id); returns and emits its event."""
        import gymnasium as gym

        import sims  # (importing it registers the envs)
        from sims.camera import camera_options
        from sims.commands import contents
        from vla.envs import resolve_env_id

        env_id = resolve_env_id(task)
        seed = self.seed if seed is None else int(seed)
        if self.env is not None and (self.env_id, self.split) != (env_id, split):
            self.env.close()
            self.env = None
        if self.env is None:
            self.env = gym.make(env_id, split=split, mode="eval",
                                **camera_options(self.policy.contract.cameras))
        self.env_id, self.split, self.seed = env_id, split, seed
        self.obs, _ = self.env.reset(seed=seed)
        goal = self.env.unwrapped.goal
        event = {"type": "scene", "env_id": env_id, "task": sims.env_task(env_id)[0],
                 "split": split, "seed": seed,
                 "contents": contents(goal), "instruction": goal.instruction}
        self.emit(event)
        self._send_frame(self.obs, None, step=0, stage="", presence=None)
        return event

    # -- commands -------------------------------------------------------------------------
    def command(self, text: str, scene: str = AUTO) -> dict:
        """Parse `text`, refuse it or carry it out to the end (or until stop); returns the
        final event (refused, stopped or verdict)."""
        import sims
        from sims.commands import NotInScene, NotUnderstood, find_scene, ground, parse
        from sims.stages import STAGES

        text = " ".join(text.split())
        self.stop_event.clear()
        try:
            command = parse(text)
        except NotUnderstood as err:
            return self._refuse(text, None, "not understood", str(err))
        understood = f"{command.task}: {command.summary()}"
        try:
            if scene == AUTO:
                if not self._holds(command):  # search a scene made for this command
                    seed, split = find_scene(command, self.seed)
                    self.reset(_env_id(command.task), split, seed)
            elif self.env is None or sims.env_task(self.env_id)[0] != scene:
                self.reset(scene, self.split, self.seed)
            else:
                self.obs, _ = self.env.reset(seed=self.seed)  # a fresh attempt, same scene
            goal = ground(command, self.env.unwrapped.goal)
        except NotInScene as err:
            return self._refuse(text, understood, "not in the scene", str(err))
        self.obs = self.env.unwrapped.set_goal(command.task, goal)
        self.emit({"type": "understood", "command": text, "understood": understood,
                   "task": command.task, "env_id": self.env_id, "seed": self.seed,
                   "stages": list(STAGES[command.task])})
        return self._run(text, understood, command.task)

    def _holds(self, command) -> bool:
        """Whether the scene on screen is of the command's task and holds what it names:
        then `auto` keeps it (a fresh attempt in the scene the person is looking at)
        instead of searching for another."""
        import sims
        from sims.commands import NotInScene, ground

        if self.env is None or sims.env_task(self.env_id)[0] != command.task:
            return False
        self.obs, _ = self.env.reset(seed=self.seed)
        try:
            ground(command, self.env.unwrapped.goal)
        except NotInScene:
            return False
        return True

    def stop(self) -> None:
        """Hold the robot from the next tick on (the episode ends, nothing moves)."""
        self.stop_event.set()

    # -- the episode ----------------------------------------------------------------------
    def _run(self, text: str, understood: str, task: str) -> dict:
        from sims.stages import StageTracker

        env, policy = self.env, self.policy
        tracker = StageTracker(env)
        tracker.reset()
        policy.reset()
        self.frames, self.last_instruction = [], self.obs["instruction"]
        labels = group_labels(policy, self.obs["instruction"])
        threshold = getattr(policy, "presence_threshold", None)
        period = 1.0 / self.fps if self.fps > 0 else 0.0
        execute = getattr(policy, "execute_steps", None)
        steps, info, first = 0, {"success": False}, True
        next_tick = time.monotonic()
        while True:
            try:
                chunk = policy.infer(self.obs)
            except Exception as err:  # a server that did not answer, or answered wrong
                event = {"type": "stopped", "command": text, "steps": steps,
                         "stage": tracker.furthest,
                         "reason": f"no action from the policy ({err}); the robot holds"}
                self.emit(event)
                return event
            if first and threshold is not None and chunk.presence is not None \
                    and chunk.presence < threshold:
                return self._refuse(text, understood, "not in view",
                                    f"the policy does not find what the command names in its "
                                    f"camera view (presence {chunk.presence:.2f} < threshold "
                                    f"{threshold:.2f})")
            first = False
            for action in chunk.actions[: execute or len(chunk.actions)]:
                if self.stop_event.is_set():  # hold: no further step is taken
                    event = {"type": "stopped", "command": text, "steps": steps,
                             "stage": tracker.furthest}
                    self.emit(event)
                    return event
                self.obs, _, terminated, truncated, info = env.step(action)
                steps += 1
                tracker.update(info["success"])
                self._send_frame(self.obs, chunk, steps, tracker.furthest, chunk.presence,
                                 labels=labels, threshold=threshold)
                if terminated or truncated:
                    event = {"type": "verdict", "command": text, "understood": understood,
                             "task": task, "success": bool(info["success"]), "steps": steps,
                             "stage": tracker.furthest}
                    self.emit(event)
                    return event
                next_tick += period
                time.sleep(max(0.0, next_tick - time.monotonic()))

    def _refuse(self, text: str, understood: str | None, kind: str, reason: str) -> dict:
        event = {"type": "refused", "command": text, "understood": understood, "kind": kind,
                 "reason": reason}
        self.emit(event)
        return event

    def _send_frame(self, obs: dict, chunk, step: int, stage: str, presence,
                    labels: list[str] | None = None, threshold: float | None = None) -> None:
        camera = self.policy.contract.cameras and next(iter(self.policy.contract.cameras))
        image = np.asarray(obs["images"][camera or "front"])
        view = cv2.resize(image, (self.view_size, self.view_size),
                          interpolation=cv2.INTER_NEAREST)
        heat = getattr(chunk, "heat", None) if chunk is not None else None
        if heat is not None:
            view = draw_attention(view, heat, labels or [])
        self.frames.append(view)
        self.emit(("frame", encode_jpeg(view), {
            "step": step, "stage": stage, "presence": presence, "threshold": threshold,
            "attention": heat is not None, "labels": labels or [],
            "rendered_at": time.time()}))


def _env_id(task: str) -> str:
    import sims

    return next(i for i in sims.ENV_IDS if sims.env_task(i) == (task, "panda"))

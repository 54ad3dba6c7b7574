"""The console's robot: a simulator scene, a policy, and one episode at a time.

`ConsoleDriver` is synchronous and runs in a worker thread of the console server; it
reports everything a person watching should see through `emit(event)`, where an event is
a JSON-able dict, or `("frame", jpeg_bytes, meta)` for a camera frame:

    scene       the scene after a reset: task, split, seed, what it holds
    understood  a command's parsed goal (or plan of steps), before anything moves
    step        a plan's step begins: its words and its task's stages
    refused     why nothing moves: not understood, names what the scene lacks, or the
                policy does not see it (presence score below the checkpoint's threshold)
    frame       the policy's camera at the control rate, with where each keypoint group
                looks drawn over it; meta: step, stage, presence, rendered_at (unix s)
    stopped     a person pressed stop: the robot holds from that tick on
    verdict     the simulator's judgement when a step ends (`last`: the plan is over)

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
        """Parse `text` (one command, or a plan of several steps), refuse it or carry it
        out step by step to the end (or until stop or the first step not done); returns
        the final event (refused, stopped or verdict)."""
        from sims.commands import NotInScene, NotUnderstood
        from sims.plans import ground_plan, parse_plan

        text = " ".join(text.split())
        self.stop_event.clear()
        try:
            plan = parse_plan(text)
        except NotUnderstood as err:
            return self._refuse(text, None, "not understood", str(err))
        understood = "\n".join(f"{n}. {c.task}: {c.summary()}" if len(plan) > 1
                               else f"{c.task}: {c.summary()}"
                               for n, c in enumerate(plan, start=1))
        try:
            self._scene_for(plan, scene)
            ground_plan(plan, self.env.unwrapped.goal)
        except NotInScene as err:
            return self._refuse(text, understood, "not in the scene", str(err))
        self.emit({"type": "understood", "command": text, "understood": understood,
                   "task": plan[0].task, "env_id": self.env_id, "seed": self.seed,
                   "steps": [c.summary() for c in plan]})
        self.frames, self.last_instruction = [], text
        event = {}
        for n, command in enumerate(plan, start=1):
            event = self._step(n, len(plan), command, understood)
            if event["type"] != "verdict" or not event["success"]:
                return event
        return event

    def _scene_for(self, plan: list, scene: str) -> None:
        """Reset to the scene the plan runs in: with `auto`, the scene on screen when it
        holds everything the plan names, else one searched for it; else `scene`'s task."""
        import sims
        from sims.commands import NotInScene
        from sims.plans import find_plan_scene, ground_plan

        if scene == AUTO:
            if self.env is not None:
                self.obs, _ = self.env.reset(seed=self.seed)
                try:
                    ground_plan(plan, self.env.unwrapped.goal)
                    if sims.env_task(self.env_id)[0] in {c.task for c in plan}:
                        return  # the scene the person is looking at will do
                except NotInScene:
                    pass
            task, seed, split = find_plan_scene(plan, self.seed)
            self.reset(_env_id(task), split, seed)
        elif self.env is None or sims.env_task(self.env_id)[0] != scene:
            self.reset(scene, self.split, self.seed)
        else:
            self.obs, _ = self.env.reset(seed=self.seed)  # a fresh attempt, same scene

    def stop(self) -> None:
        """Hold the robot from the next tick on (the episode ends, nothing moves)."""
        self.stop_event.set()

    # -- the episode ----------------------------------------------------------------------
    def _step(self, n: int, of: int, command, understood: str) -> dict:
        """Step `n` of `of`: its goal replaces the last (from the state the step before
        left), the policy reads its words, and it runs to success, its task's step
        budget, a stop, or the policy not answering; returns the event that ended it."""
        from sims.commands import ground
        from sims.stages import STAGES, StageTracker
        from sims.tasks import TASKS

        env, policy, text = self.env.unwrapped, self.policy, command.text
        self.obs = env.set_goal(command.task, ground(command, env.goal))
        self.emit({"type": "step", "step": n, "of": of, "understood": command.summary(),
                   "task": command.task, "stages": list(STAGES[command.task])})
        tracker = StageTracker(self.env)
        tracker.reset()
        policy.reset()
        labels = group_labels(policy, self.obs["instruction"])
        threshold = getattr(policy, "presence_threshold", None)
        period = 1.0 / self.fps if self.fps > 0 else 0.0
        execute = getattr(policy, "execute_steps", None)
        steps, success, first = 0, False, True
        ended = {"command": text, "step": n, "of": of}
        next_tick = time.monotonic()
        while True:
            try:
                chunk = policy.infer(self.obs)
            except Exception as err:  # a server that did not answer, or answered wrong
                return self._event({"type": "stopped", **ended, "steps": steps,
                                    "stage": tracker.furthest,
                                    "reason": f"no action from the policy ({err}); the "
                                              f"robot holds"})
            if first and threshold is not None and chunk.presence is not None \
                    and chunk.presence < threshold:
                return self._refuse(text, understood, "not in view",
                                    f"the policy does not find what the command names in its "
                                    f"camera view (presence {chunk.presence:.2f} < threshold "
                                    f"{threshold:.2f})")
            first = False
            for action in chunk.actions[: execute or len(chunk.actions)]:
                if self.stop_event.is_set():  # hold: no further step is taken
                    return self._event({"type": "stopped", **ended, "steps": steps,
                                        "stage": tracker.furthest})
                self.obs, _, _, _, info = env.step(action)
                steps += 1
                success = bool(info["success"])
                tracker.update(success)
                self._send_frame(self.obs, chunk, steps, tracker.furthest, chunk.presence,
                                 labels=labels, threshold=threshold)
                if success or steps >= TASKS[command.task].max_steps:
                    return self._event({"type": "verdict", **ended, "understood": understood,
                                        "task": command.task, "success": success,
                                        "steps": steps, "stage": tracker.furthest,
                                        "last": n == of or not success})
                next_tick += period
                time.sleep(max(0.0, next_tick - time.monotonic()))

    def _event(self, event: dict) -> dict:
        self.emit(event)
        return event

    def _refuse(self, text: str, understood: str | None, kind: str, reason: str) -> dict:
        return self._event({"type": "refused", "command": text, "understood": understood,
                            "kind": kind, "reason": reason})

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

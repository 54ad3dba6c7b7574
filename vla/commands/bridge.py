"""`vla bridge sim`: drive a simulated robot with a policy served elsewhere (`vla serve`)."""

from __future__ import annotations

import argparse

from vla.errors import UserError

NOT_GROUNDED = 5  # exit status: the policy did not see what the instruction names


def register(subparsers) -> None:
    # Every flag is a field of SimRun, RobotRun, LoopConfig or CurveKeyFiles, which holds
    # its default and help; `vla bridge robot`'s positional CLASS and KEY=VALUE are not.
    from vla.bridge_config import RobotRun, SimRun
    from vla.config import add_flags

    p = subparsers.add_parser(
        "bridge", help="connect a robot to a policy server",
        description="Run a robot's control loop against a policy server (`vla serve`).")
    kinds = p.add_subparsers(dest="robot", metavar="ROBOT", required=True)
    sim = kinds.add_parser(
        "sim", help="the PyBullet sim robot of a task",
        description="Run episodes of a sims task, the sim robot driven by the policy server "
                    "at --connect; prints success, control rate and action latency.")
    add_flags(sim, SimRun)
    add_loop_arguments(sim)
    sim.set_defaults(func=run_sim)
    custom = kinds.add_parser(
        "robot", help="any Robot class: package.module:Class KEY=VALUE ...",
        description="Run the control loop for a robot class of your own package "
                    "(a bridges.robot.Robot subclass), built with the KEY=VALUE arguments. "
                    "Bring it up first against `vla serve --policy builtin:hold --contract "
                    "FILE`, with FILE from --print-contract (docs/robots.md).")
    custom.add_argument("robot_class", metavar="CLASS",
                        help="package.module:Class, importable here")
    custom.add_argument("arguments", nargs="*", metavar="KEY=VALUE",
                        help="constructor arguments (values read as YAML scalars)")
    add_flags(custom, RobotRun)
    add_loop_arguments(custom)
    custom.set_defaults(func=run_robot)


def add_loop_arguments(p: argparse.ArgumentParser) -> None:
    """Options of the robot-side control loop, shared with `vla command`: the fields of
    LoopConfig that have a help text, and the Curve key files."""
    from bridges.client import LoopConfig
    from vla.bridge_config import CurveKeyFiles
    from vla.config import add_flags

    add_flags(p, LoopConfig)
    add_flags(p, CurveKeyFiles)


def loop_config(args, simulated: bool = False):
    """The loop's settings from the CLI. `simulated`: the scene's own contents already
    decide what is there (exactly), so the policy's presence check, which refuses some
    valid commands, runs only when --min-presence asks for it; on a real robot
    (`vla bridge robot`) the server's calibrated threshold applies by default."""
    from bridges.client import LoopConfig
    from vla.bridge_config import CurveKeyFiles
    from vla.config import from_flags

    curve = from_flags(CurveKeyFiles, args).keys()
    # Heartbeats well inside the deadline: a live server is always heard from in time.
    given = {"curve": curve, "heartbeat_s": min(0.2, args.deadline / 2)}
    if simulated and args.min_presence is None:
        given["min_presence"] = float("-inf")
    return from_flags(LoopConfig, args, **given)


def run_sim(args) -> int:
    import json
    import logging

    from bridges.client import ControlLoop
    from bridges.connection import BridgeError
    from bridges.robot import RobotError
    from bridges.stats import format_summary
    from sims.sim_robot import SimRobot, run_sim_episode
    from vla.bridge_config import SimRun
    from vla.config import from_flags
    from vla.envs import resolve_env_id

    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    run = from_flags(SimRun, args)
    task = resolve_env_id(run.task)
    config = loop_config(args, simulated=True)
    results = []
    robot = SimRobot(task, seed=run.seed, split=run.split, record=bool(run.video),
                     max_steps=run.max_steps, cameras=run.cameras)
    try:
        with robot, ControlLoop(robot, run.connect, config) as loop:
            for i in range(run.episodes):
                r = run_sim_episode(loop, robot, run.seed + i)
                results.append(r)
                if not run.json:
                    print(f"episode {i + 1}/{run.episodes} seed {r.seed}: "
                          f"{'success' if r.success else 'failed'} in {r.steps} steps, "
                          f"'{r.instruction}'; {format_summary(r.control)}", flush=True)
    except (BridgeError, RobotError) as err:
        raise UserError(str(err)) from None
    video = write_episodes_video(run.video, results, robot.contract.control_hz) if run.video \
        else None
    successes = sum(r.success for r in results)
    if run.json:
        print(json.dumps({"task": task, "connect": run.connect, "episodes": len(results),
                          "successes": successes, "video": video,
                          "results": [r.to_dict() for r in results]}))
    else:
        print(f"{task}: {successes}/{len(results)} succeeded"
              + (f"; video {video}" if video else ""))
    return 0


def run_robot(args) -> int:
    import json
    import logging

    from bridges.client import ControlLoop, NotInView
    from bridges.connection import BridgeError
    from bridges.loading import load_robot
    from bridges.robot import RobotError
    from bridges.stats import format_summary
    from vla.bridge_config import RobotRun
    from vla.config import from_flags

    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    run = from_flags(RobotRun, args)
    robot = load_robot(args.robot_class, args.arguments)
    if run.print_contract:
        print(json.dumps(robot.contract.to_dict(), indent=1))
        return 0
    config = loop_config(args)
    try:
        with robot, ControlLoop(robot, run.connect, config) as loop:
            try:
                summary = loop.run(steps=run.steps, instruction=run.instruction)
            except KeyboardInterrupt:  # the robot held in run(); leave cleanly
                summary = loop.stats.summary()
    except NotInView as err:
        print(str(err))
        return NOT_GROUNDED
    except (BridgeError, RobotError) as err:
        raise UserError(str(err)) from None
    if run.json:
        print(json.dumps({"robot": args.robot_class, "connect": run.connect,
                          "control": summary}))
    else:
        print(f"{args.robot_class}: {format_summary(summary)}")
    return 0


def write_episodes_video(path: str, results, fps: float) -> str:
    """All episodes' frames in one mp4, each labelled with its instruction and outcome."""
    import cv2
    import numpy as np

    from vla.data.video import draw_text, write_video

    frames = []
    for r in results:
        verdict = "success" if r.success else "failed"
        for i, frame in enumerate(r.frames):
            # Upscale before drawing, so the text is sharp in the video.
            side = max(512, frame.shape[0])
            big = cv2.resize(frame, (side, side), interpolation=cv2.INTER_NEAREST)
            status = verdict if i == len(r.frames) - 1 else "..."
            draw_text(big, f'"{r.instruction}"  [{status}]')
            frames += [big] * (5 if i == len(r.frames) - 1 else 1)  # linger on the result
    if not frames:
        raise UserError("no frames were recorded, so there is no video to write")
    return str(write_video(path, np.stack(frames), fps=fps))

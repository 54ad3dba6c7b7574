"""`vla bridge sim`: drive a simulated robot with a policy served elsewhere (`vla serve`)."""

from __future__ import annotations

import argparse

from vla.commands.collect import parse_cameras
from vla.errors import UserError

NOT_GROUNDED = 5  # exit status: the policy did not see what the instruction names


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "bridge", help="connect a robot to a policy server",
        description="Run a robot's control loop against a policy server (`vla serve`).")
    kinds = p.add_subparsers(dest="robot", metavar="ROBOT", required=True)
    sim = kinds.add_parser(
        "sim", help="the PyBullet sim robot of a task",
        description="Run episodes of a sims task, the sim robot driven by the policy server "
                    "at --connect; prints success, control rate and action latency.")
    sim.add_argument("--connect", default="tcp://127.0.0.1:5555",
                     help="policy server address (default tcp://127.0.0.1:5555)")
    sim.add_argument("--task", default="sims/Pick-v0", help="task id or name (`vla envs`)")
    sim.add_argument("--seed", type=int, default=0, help="seed of the first episode (default 0)")
    sim.add_argument("--episodes", type=int, default=1, help="episodes, seeds S, S+1, ...")
    sim.add_argument("--split", default="L1", help="generalisation split (default L1)")
    sim.add_argument("--max-steps", type=int, help="end an episode after this many steps "
                                                   "(default: the task's own limit)")
    sim.add_argument("--video", metavar="FILE", help="write every episode to this mp4")
    sim.add_argument("--cameras", default="front", type=parse_cameras,
                     help="views the sim robot sends, as the policy's contract names them: "
                          "front (default) or front,wrist")
    sim.add_argument("--json", action="store_true", help="print one JSON object at the end")
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
    custom.add_argument("--connect", default="tcp://127.0.0.1:5555",
                        help="policy server address (default tcp://127.0.0.1:5555)")
    custom.add_argument("--instruction", help="what the policy is told (default: the "
                                              "robot's own observation['instruction'])")
    custom.add_argument("--steps", type=int, help="control ticks to run (default: until "
                                                  "Ctrl-C)")
    custom.add_argument("--print-contract", action="store_true",
                        help="print the robot's half of the action contract as JSON (for "
                             "`vla serve --contract`) and exit without connecting")
    custom.add_argument("--json", action="store_true", help="print the run summary as JSON")
    add_loop_arguments(custom)
    custom.set_defaults(func=run_robot)


def add_loop_arguments(p: argparse.ArgumentParser) -> None:
    """Options of the robot-side control loop, shared with `vla command`; the defaults
    are LoopConfig's own, so the CLI and the Python API cannot drift apart."""
    from bridges.client import LoopConfig

    d = LoopConfig()
    p.add_argument("--mode", choices=("async", "ensemble"), default=d.mode,
                   help=f"chunk execution: async re-query or temporal ensembling "
                        f"(default {d.mode})")
    p.add_argument("--deadline", type=float, default=d.deadline_s, metavar="S",
                   help=f"seconds without a reply before the robot holds "
                        f"(default {d.deadline_s:g})")
    p.add_argument("--connect-timeout", type=float, default=d.connect_timeout_s, metavar="S",
                   help=f"seconds to wait for a server to answer hello "
                        f"(default {d.connect_timeout_s:g})")
    p.add_argument("--jpeg-quality", type=int, metavar="Q",
                   help="send camera images as JPEG of this quality (default: raw)")
    p.add_argument("--server-key", metavar="FILE",
                   help="the server's public .key (CurveZMQ; with --client-key)")
    p.add_argument("--client-key", metavar="FILE",
                   help="this robot's .key_secret (CurveZMQ; from `vla keys`)")
    p.add_argument("--min-grounding", type=float, metavar="G",
                   help="refuse to move when the policy's grounding score of the first "
                        "answer is below G (default: on a robot, the server's calibrated "
                        "threshold, if any; in the simulator, no check, since the scene says "
                        "what is there; --min-grounding=-inf: never refuse)")
    p.add_argument("--adapter", metavar="NAME",
                   help="the server's adapter to use (`vla serve --adapters`; default: "
                        "the base policy)")


def loop_config(args, simulated: bool = False):
    """The loop's settings from the CLI. `simulated`: the scene's own contents already
    decide what is there (exactly), so the policy's grounding check, which refuses some
    valid commands, runs only when --min-grounding asks for it; on a real robot
    (`vla bridge robot`) the server's calibrated threshold applies by default."""
    from bridges.client import LoopConfig
    from bridges.connection import CurveKeys

    if bool(args.server_key) != bool(args.client_key):
        raise UserError("CurveZMQ needs both --server-key (the server's public .key) and "
                        "--client-key (this robot's .key_secret)")
    curve = CurveKeys.from_files(args.server_key, args.client_key) if args.server_key else None
    if args.deadline <= 0:
        raise UserError(f"--deadline {args.deadline}: expected a positive number of seconds")
    # Heartbeats well inside the deadline: a live server is always heard from in time.
    return LoopConfig(mode=args.mode, deadline_s=args.deadline,
                      heartbeat_s=min(0.2, args.deadline / 2),
                      connect_timeout_s=args.connect_timeout,
                      jpeg_quality=args.jpeg_quality, curve=curve, adapter=args.adapter,
                      min_grounding=(float("-inf") if simulated and args.min_grounding is None
                                     else args.min_grounding))


def run_sim(args) -> int:
    import json
    import logging

    from bridges.client import ControlLoop
    from bridges.connection import BridgeError
    from bridges.robot import RobotError
    from bridges.stats import format_summary
    from sims.sim_robot import SimRobot, run_sim_episode
    from vla.envs import resolve_env_id

    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    if args.episodes < 1:
        raise UserError(f"--episodes {args.episodes}: expected at least 1")
    task = resolve_env_id(args.task)
    config = loop_config(args, simulated=True)
    results = []
    robot = SimRobot(task, seed=args.seed, split=args.split, record=bool(args.video),
                     max_steps=args.max_steps, cameras=args.cameras)
    try:
        with robot, ControlLoop(robot, args.connect, config) as loop:
            for i in range(args.episodes):
                r = run_sim_episode(loop, robot, args.seed + i)
                results.append(r)
                if not args.json:
                    print(f"episode {i + 1}/{args.episodes} seed {r.seed}: "
                          f"{'success' if r.success else 'failed'} in {r.steps} steps, "
                          f"'{r.instruction}'; {format_summary(r.control)}", flush=True)
    except (BridgeError, RobotError) as err:
        raise UserError(str(err)) from None
    video = write_episodes_video(args.video, results, robot.spec.control_hz) if args.video \
        else None
    successes = sum(r.success for r in results)
    if args.json:
        print(json.dumps({"task": task, "connect": args.connect, "episodes": len(results),
                          "successes": successes, "video": video,
                          "results": [r.to_dict() for r in results]}))
    else:
        print(f"{task}: {successes}/{len(results)} succeeded"
              + (f"; video {video}" if video else ""))
    return 0


def run_robot(args) -> int:
    import json
    import logging

    from bridges.client import ControlLoop, NotGrounded
    from bridges.connection import BridgeError
    from bridges.loading import load_robot
    from bridges.robot import RobotError
    from bridges.stats import format_summary

    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    robot = load_robot(args.robot_class, args.arguments)
    if args.print_contract:
        print(json.dumps(robot.spec.to_dict(), indent=1))
        return 0
    if args.steps is not None and args.steps < 1:
        raise UserError(f"--steps {args.steps}: expected at least 1")
    config = loop_config(args)
    try:
        with robot, ControlLoop(robot, args.connect, config) as loop:
            try:
                summary = loop.run(steps=args.steps, instruction=args.instruction)
            except KeyboardInterrupt:  # the robot held in run(); leave cleanly
                summary = loop.stats.summary()
    except NotGrounded as err:
        print(str(err))
        return NOT_GROUNDED
    except (BridgeError, RobotError) as err:
        raise UserError(str(err)) from None
    if args.json:
        print(json.dumps({"robot": args.robot_class, "connect": args.connect,
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

"""`vla command "stack the red block on the blue block"`: tell the sim robot what to do.

Starts a policy server in this process (or uses `--connect`), runs the sim bridge with the
typed command in place of the scene's instruction, and reports whether the scene's task
succeeded. Without a command, a prompt reads one command per line; each is a fresh
attempt in the same scene (same task and seed), so every result means the same thing.
"""

from __future__ import annotations

import contextlib
import json
import sys

from vla.commands.bridge import add_loop_arguments, loop_config, write_episodes_video
from vla.errors import UserError

DEFAULT_SCENE = "sims/Stack-v0"
DEFAULT_POLICY = "the shipped default policy"
QUIT = ("quit", "exit", "q")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "command", help="command the sim robot in natural language",
        description=__doc__.splitlines()[0].replace("`", ""),
        epilog="Exit status: 0 when the scene's task succeeded, 1 when it did not, 2 on "
               "errors. With a prompt: 0 unless an error stops it.")
    p.add_argument("command", nargs="?", help="what the robot should do (omit for a prompt)")
    p.add_argument("--scene", default=DEFAULT_SCENE,
                   help=f"task whose scene the robot works in (default {DEFAULT_SCENE})")
    p.add_argument("--seed", type=int, default=0, help="scene seed (default 0)")
    p.add_argument("--max-steps", type=int, help="give up after this many steps "
                                                 "(default: the scene task's own limit)")
    p.add_argument("--video", metavar="FILE", help="write the attempt to this mp4 (with a "
                                                   "prompt: FILE-1.mp4, FILE-2.mp4, ...)")
    p.add_argument("--json", action="store_true", help="print a JSON object per command")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--connect", metavar="URL", help="use the policy server at URL "
                                                        "instead of starting one")
    which.add_argument("--policy", help=f"policy to serve, e.g. builtin:hold (default "
                                        f"{DEFAULT_POLICY}, builtin:hold without one)")
    which.add_argument("--checkpoint", help="checkpoint directory to serve")
    add_loop_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
    import logging

    from bridges.client import ControlLoop
    from bridges.connection import BridgeError
    from bridges.robot import RobotError
    from bridges.sim_robot import SimRobot
    from vla.envs import resolve_env_id

    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    scene = resolve_env_id(args.scene)
    config = loop_config(args)
    robot = SimRobot(scene, seed=args.seed, record=bool(args.video), max_steps=args.max_steps)
    try:
        with contextlib.ExitStack() as stack:
            url = args.connect or stack.enter_context(_local_server(args, robot.spec))
            stack.enter_context(robot)
            loop = stack.enter_context(ControlLoop(robot, url, config))
            if args.command is not None:
                return 0 if _carry_out(args, loop, robot, args.command, args.video) else 1
            _prompt(args, loop, robot)
            return 0
    except (BridgeError, RobotError) as err:
        raise UserError(str(err)) from None


def _carry_out(args, loop, robot, command: str, video: str | None) -> bool:
    from bridges.sim_robot import run_sim_episode
    from bridges.stats import format_summary

    command = " ".join(command.split())
    if not command:
        raise UserError("the command is empty; say what the robot should do")
    result = run_sim_episode(loop, robot, args.seed, instruction=command)
    path = write_episodes_video(video, [result], robot.spec.control_hz) if video else None
    if args.json:
        print(json.dumps({"command": command, "scene": robot.task_id, "seed": args.seed,
                          "success": result.success, "steps": result.steps,
                          "scene_instruction": result.scene_instruction, "video": path,
                          "control": result.control}), flush=True)
    else:
        verdict = "success" if result.success else "not done"
        print(f"{verdict} after {result.steps} steps: \"{command}\""
              f" (success means the scene's task: \"{result.scene_instruction}\")")
        print(f"  control: {format_summary(result.control)}")
        if path:
            print(f"  video: {path}")
    return result.success


def _prompt(args, loop, robot) -> None:
    """Read commands until EOF or 'quit'; each is a fresh attempt in the same scene."""
    interactive = sys.stdin.isatty()
    if not args.json:
        print(f"scene {robot.task_id} seed {args.seed}: \"{robot.scene_instruction}\". "
              f"Type a command per line; 'quit' or Ctrl-D ends.", flush=True)
    n = 0
    while True:
        try:
            line = input("command> " if interactive else "")
        except EOFError:
            break
        line = line.strip()
        if not line:
            continue
        if line.lower() in QUIT:
            break
        n += 1
        video = _numbered(args.video, n) if args.video else None
        _carry_out(args, loop, robot, line, video)


def _numbered(path: str, n: int) -> str:
    stem, dot, ext = path.rpartition(".")
    return f"{stem}-{n}.{ext}" if dot else f"{path}-{n}"


@contextlib.contextmanager
def _local_server(args, contract):
    """A policy server on a free loopback port, in a thread of this process."""
    from vla.serving.policies import default_spec, load_policy
    from vla.serving.server import PolicyServer, ServerConfig

    spec = args.checkpoint or args.policy or default_spec()
    # A builtin policy takes the scene's contract; a checkpoint brings its own.
    policy = load_policy(spec, contract=contract if spec.startswith("builtin:") else None)
    server = PolicyServer(policy, ServerConfig(bind="tcp://127.0.0.1:*"), policy_name=spec)
    server.start()
    try:
        yield server.endpoint
    finally:
        server.stop()

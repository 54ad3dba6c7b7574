"""`vla command "stack the red block on the blue block"`: tell the sim robot what to do.

The typed words are parsed with the task suite's grammar (sims/commands.py): the task,
the objects, zone or board location they name. Nothing moves until that is settled: a
command that matches no task, or names something the scene does not contain, is refused
with what was understood and what the scene holds. With `--scene auto` (the default) a
scene of the command's own task that contains what it names is chosen; with a task name,
the command is grounded in that task's scene. Then a policy server starts in this
process (or `--connect` is used), the sim bridge runs, and the simulator judges the typed
command, not the scene's own task.

Without a command, a prompt reads one command per line, each a fresh attempt in one
scene (the one `--scene` names, or the stack scene for `auto`).
"""

from __future__ import annotations

import contextlib
import json
import sys

from vla.commands.bridge import add_loop_arguments, loop_config, write_episodes_video
from vla.commands.collect import parse_cameras
from vla.errors import UserError

AUTO = "auto"
PROMPT_SCENE = "sims/Stack-v0"  # `auto` at the prompt: a scene with the most to talk about
DEFAULT_POLICY = "the shipped default policy"
QUIT = ("quit", "exit", "q")
# Exit statuses, one per outcome (also in --help).
DONE, NOT_DONE, ERROR, NOT_UNDERSTOOD, NOT_IN_SCENE, NOT_SEEN = 0, 1, 2, 3, 4, 5


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "command", help="command the sim robot in natural language",
        description=__doc__.split("\n\n")[0].replace("`", ""),
        epilog=f"Exit status: {DONE} when the simulator judged the typed command done, "
               f"{NOT_DONE} when not, {ERROR} on errors, {NOT_UNDERSTOOD} when the command "
               f"matches no task, {NOT_IN_SCENE} when it names something the scene lacks, "
               f"{NOT_SEEN} when the policy's presence score says it does not see it (all "
               f"before moving). With a prompt: {DONE} unless an error stops it.")
    # dest "text": "command" is the subcommand's own name (used in error messages).
    p.add_argument("text", metavar="COMMAND", nargs="?",
                   help="what the robot should do (omit for a prompt)")
    p.add_argument("--scene", default=AUTO,
                   help="'auto' (default): a scene of the command's task that holds what it "
                        "names; or a task id or name whose scene to work in")
    p.add_argument("--seed", type=int, default=0,
                   help="scene seed (default 0; with auto, where the search starts)")
    p.add_argument("--max-steps", type=int, help="give up after this many steps "
                                                 "(default: the typed task's own limit)")
    p.add_argument("--video", metavar="FILE", help="write the attempt to this mp4 (with a "
                                                   "prompt: FILE-1.mp4, FILE-2.mp4, ...)")
    p.add_argument("--json", action="store_true", help="print a JSON object per command")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--connect", metavar="URL", help="use the policy server at URL "
                                                        "instead of starting one")
    which.add_argument("--policy", help=f"policy to serve, e.g. builtin:hold (default "
                                        f"{DEFAULT_POLICY}, builtin:hold without one)")
    which.add_argument("--checkpoint", help="checkpoint directory to serve")
    p.add_argument("--cameras", type=parse_cameras,
                   help="views the sim robot sends: front or front,wrist (default: the "
                        "served checkpoint's own; front with --connect)")
    add_loop_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
    import logging

    from sims.commands import NotInScene, NotUnderstood, find_scene
    from sims.plans import parse_plan
    from sims.tasks import TASKS
    from vla.envs import resolve_env_id

    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    if args.text is None:  # the prompt: one scene, many commands
        scene = PROMPT_SCENE if args.scene == AUTO else resolve_env_id(args.scene)
        return _session(args, scene, args.seed, "L1", None,
                        args.max_steps or max(t.max_steps for t in TASKS.values()))
    text = " ".join(args.text.split())
    if not text:
        raise UserError("the command is empty; say what the robot should do")
    try:
        plan = parse_plan(text)
    except NotUnderstood as err:
        return _refuse(args, text, None, NOT_UNDERSTOOD, str(err))
    if len(plan) > 1:
        return _plan(args, text, plan)
    command = plan[0]
    seed, split = args.seed, "L1"
    if args.scene == AUTO:
        scene = _env_id(command.task)
        try:
            seed, split = find_scene(command, args.seed)
        except NotInScene as err:
            return _refuse(args, text, command, NOT_IN_SCENE, str(err))
    else:
        scene = resolve_env_id(args.scene)
    max_steps = args.max_steps or TASKS[command.task].max_steps
    return _session(args, scene, seed, split, command, max_steps)


def _plan(args, text: str, plan: list) -> int:
    """Several steps in one command: the plan printed, then every step grounded in one
    scene (or the whole refused, naming the step) and carried out in order, each from
    where the last left off; the verdict names the first step not done."""
    from bridges.client import ControlLoop, NotInView
    from sims.commands import NotInScene
    from sims.plans import describe, find_plan_scene, ground_plan
    from sims.sim_robot import SimRobot, run_sim_plan
    from sims.tasks import TASKS
    from vla.envs import resolve_env_id

    if not args.json:
        print(f"understood \"{text}\" as a plan of {len(plan)} steps:\n{describe(plan)}")
    summary = "; ".join(f"{c.task}: {c.summary()}" for c in plan)
    try:
        if args.scene == AUTO:
            task, seed, split = find_plan_scene(plan, args.seed)
            scene = _env_id(task)
        else:
            scene, seed, split = resolve_env_id(args.scene), args.seed, "L1"
    except NotInScene as err:
        return _refuse(args, text, None, NOT_IN_SCENE, str(err), summary)
    budget = args.max_steps or sum(TASKS[c.task].max_steps for c in plan)
    robot = SimRobot(scene, seed=seed, split=split, record=bool(args.video),
                     max_steps=budget, cameras=_cameras(args))
    with contextlib.ExitStack() as stack:
        stack.enter_context(robot)
        try:
            ground_plan(plan, robot.env.unwrapped.goal)
        except NotInScene as err:
            return _refuse(args, text, None, NOT_IN_SCENE,
                           f"{err} (scene {robot.task_id}, seed {seed}; try --scene auto)",
                           summary)
        url = args.connect or stack.enter_context(_local_server(args, robot.contract))
        loop = stack.enter_context(ControlLoop(robot, url, loop_config(args, simulated=True)))
        try:
            results = run_sim_plan(loop, robot, seed, plan)
        except NotInView as err:
            return _refuse(args, text, None, NOT_SEEN, str(err), summary)
    return _report_plan(args, text, plan, results, robot)


def _report_plan(args, text: str, plan: list, results: list, robot) -> int:
    done = len(results) == len(plan) and all(r.success for r in results)
    failed = None if done else len(results)
    path = (write_episodes_video(args.video, results[-1:], robot.contract.control_hz)
            if args.video and results else None)
    steps = [{"step": n, "task": c.task, "understood": c.summary(),
              "success": r.success, "steps": r.steps}
             for n, (c, r) in enumerate(zip(plan, results), start=1)]
    if args.json:
        print(json.dumps({"command": text, "refused": False, "plan": steps, "success": done,
                          "failed_step": failed, "scene": robot.task_id, "seed": robot.seed,
                          "video": path}), flush=True)
    else:
        for step in steps:
            verdict = "done" if step["success"] else "not done"
            print(f"  step {step['step']}: {verdict} after {step['steps']} steps "
                  f"({step['understood']})")
        skipped = "" if done or failed == len(plan) else "; the steps after it did not run"
        print("done: every step" if done else
              f"not done: step {failed} ({plan[failed - 1].summary()}) failed{skipped}")
        if path:
            print(f"  video: {path}")
    return DONE if done else NOT_DONE


def _env_id(task: str) -> str:
    import sims

    return next(i for i in sims.ENV_IDS if sims.env_task(i) == (task, "panda"))


def _session(args, scene: str, seed: int, split: str, command, max_steps: int) -> int:
    from bridges.client import ControlLoop
    from bridges.connection import BridgeError
    from bridges.robot import RobotError
    from sims.sim_robot import SimRobot

    config = loop_config(args, simulated=True)
    robot = SimRobot(scene, seed=seed, split=split, record=bool(args.video),
                     max_steps=max_steps, cameras=_cameras(args))
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(robot)
            # Refuse before a server starts or anything moves.
            refused = command is not None and _check(args, robot, command)
            if refused:
                return refused
            url = args.connect or stack.enter_context(_local_server(args, robot.contract))
            loop = stack.enter_context(ControlLoop(robot, url, config))
            if command is not None:
                return _carry_out(args, loop, robot, command, args.video)
            _prompt(args, loop, robot)
            return DONE
    except (BridgeError, RobotError) as err:
        raise UserError(str(err)) from None


def _check(args, robot, command) -> int:
    """0 when the command can be grounded in the robot's scene, else the refusal status."""
    from sims.commands import NotInScene, ground

    try:
        ground(command, robot.env.unwrapped.goal)
    except NotInScene as err:
        return _refuse(args, command.text, command, NOT_IN_SCENE,
                       f"{err} (scene {robot.task_id}, seed {robot.seed}; try --scene auto)")
    return 0


def _refuse(args, text: str, command, status: int, reason: str,
            understood: str | None = None) -> int:
    """Say why nothing moves: what was understood, and what is missing or unknown."""
    understood = f"{command.task}: {command.summary()}" if command else understood
    if args.json:
        print(json.dumps({"command": text, "refused": True, "status": status,
                          "understood": understood, "reason": reason}), flush=True)
    else:
        if understood:
            print(f"understood \"{text}\" as {understood}")
        print(f"refused, nothing moved: {reason}")
    return status


def _carry_out(args, loop, robot, command, video: str | None) -> int:
    from bridges.client import NotInView
    from bridges.stats import format_summary
    from sims.sim_robot import run_sim_episode

    try:
        result = run_sim_episode(loop, robot, robot.seed, command=command)
    except NotInView as err:
        return _refuse(args, command.text, command, NOT_SEEN, str(err))
    path = write_episodes_video(video, [result], robot.contract.control_hz) if video else None
    if args.json:
        print(json.dumps({"command": command.text, "refused": False, "task": command.task,
                          "understood": command.summary(), "scene": robot.task_id,
                          "seed": robot.seed, "split": robot.env.unwrapped.current_split,
                          "success": result.success, "steps": result.steps,
                          "scene_instruction": result.scene_instruction, "video": path,
                          "control": result.control}), flush=True)
    else:
        verdict = "done" if result.success else "not done"
        print(f"{verdict} after {result.steps} steps: {command.task}: {command.summary()} "
              f"(scene {robot.task_id}, seed {robot.seed})")
        print(f"  control: {format_summary(result.control)}")
        if path:
            print(f"  video: {path}")
    return DONE if result.success else NOT_DONE


def _prompt(args, loop, robot) -> None:
    """Read commands until EOF or 'quit'; each is a fresh attempt in the same scene."""
    from sims.commands import NotInScene, NotUnderstood, contents, ground, parse

    interactive = sys.stdin.isatty()
    if not args.json:
        print(f"scene {robot.task_id} seed {robot.seed}. {contents(robot.env.unwrapped.goal)} "
              f"Type a command per line; 'quit' or Ctrl-D ends.", flush=True)
    n = 0
    while True:
        try:
            line = input("command> " if interactive else "")
        except EOFError:
            break
        line = " ".join(line.split())
        if not line:
            continue
        if line.lower() in QUIT:
            break
        try:
            command = parse(line)
            ground(command, robot.env.unwrapped.goal)
        except NotUnderstood as err:
            _refuse(args, line, None, NOT_UNDERSTOOD, str(err))
            continue
        except NotInScene as err:
            _refuse(args, line, command, NOT_IN_SCENE, str(err))
            continue
        n += 1
        video = _numbered(args.video, n) if args.video else None
        _carry_out(args, loop, robot, command, video)


def _numbered(path: str, n: int) -> str:
    stem, dot, ext = path.rpartition(".")
    return f"{stem}-{n}.{ext}" if dot else f"{path}-{n}"


def _cameras(args):
    """The views the sim robot sends: --cameras, else the served checkpoint's own (read
    from its contract before anything loads), else the front camera."""
    from vla.serving.policies import default_spec

    if args.cameras is not None or args.connect:
        return args.cameras or ("front",)
    spec = args.checkpoint or args.policy or default_spec()
    if spec.startswith("builtin:"):
        return ("front",)
    from policies.registry import checkpoint_cameras

    try:
        return checkpoint_cameras(spec)
    except FileNotFoundError as err:
        raise UserError(f"--checkpoint {spec}: {err}") from None


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

"""`vla record CLASS --out DIR`: demonstrations on any robot, in the dataset format of
`vla collect` (vla/data/writer.py).

The robot is a `bridges.robot.Robot` class named `package.module:Class` with KEY=VALUE
constructor arguments (as `vla bridge robot`). Each control tick: observe, ask the source
for an action, check it against the robot's safety limits (bridges/safe_robot.py), act,
and record the observation with the action. Sources:

- `--script package.module:function`: a scripted controller, called as
  `function(observation, step) -> action` (normalised, shape (A,)); returning None ends
  the episode, which is kept.
- `--keyboard`: teleoperation from this terminal. Keys move one action dimension each,
  in the contract's order: w/s, a/d, r/f, q/e, z/c, t/g, y/h, u/j, i/k (+/-); a dimension
  named "gripper" toggles with the space bar instead. Enter keeps the episode, x throws
  it away, Esc stops recording.

Episodes are committed atomically; `--resume` records more into an existing dataset
until it holds --episodes of this task.
"""

from __future__ import annotations

import time

from vla.errors import UserError

KEY_PAIRS = ("ws", "ad", "rf", "qe", "zc", "tg", "yh", "uj", "ik")
ENTER, DISCARD, ESCAPE = ("\r", "\n"), "x", "\x1b"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "record", help="record demonstrations on any robot (teleop or a script)",
        description=__doc__.split("\n\n")[0].replace("`", ""))
    p.add_argument("robot_class", metavar="CLASS", help="package.module:Class of the robot")
    p.add_argument("arguments", nargs="*", metavar="KEY=VALUE",
                   help="robot constructor arguments (values read as YAML scalars)")
    p.add_argument("--out", required=True, help="dataset directory")
    p.add_argument("--task", required=True, help="short name of what is demonstrated")
    p.add_argument("--instruction", required=True, help="what each demonstration does, in "
                                                         "words (the policy's instruction)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--script", metavar="MODULE:FUNCTION",
                        help="scripted controller: function(observation, step) -> action "
                             "or None to end the episode")
    source.add_argument("--keyboard", action="store_true", help="teleoperate from this "
                                                                "terminal")
    p.add_argument("--episodes", type=int, default=10, help="episodes wanted (default 10)")
    p.add_argument("--max-steps", type=int, default=300,
                   help="end an episode after this many steps (default 300)")
    p.add_argument("--resume", action="store_true",
                   help="record into an existing dataset until it holds --episodes")
    p.set_defaults(func=run)


def run(args) -> int:
    from tqdm import tqdm

    from bridges.loading import load_robot
    from bridges.robot import RobotError
    from bridges.safe_robot import SafeRobot
    from vla.data.store import DatasetDir
    from vla.data.writer import DatasetWriter

    if args.episodes < 1 or args.max_steps < 1:
        raise UserError(f"--episodes {args.episodes} and --max-steps {args.max_steps}: "
                        f"expected at least 1")
    robot = load_robot(args.robot_class, args.arguments)
    source = _script(args.script) if args.script else Keyboard(robot.contract.action_names)
    existing = DatasetDir(args.out)
    present = len(existing.episode_paths()) if existing.meta_path.is_file() else 0
    if present and not args.resume:
        raise UserError(f"{args.out!r} already holds {present} episodes; pass --resume to "
                        f"record more into it, or choose another --out")
    writer = DatasetWriter(args.out, robot.contract, args.task)
    todo = args.episodes - writer.existing
    period = 1.0 / robot.contract.control_hz
    try:
        with SafeRobot(robot) as safe, source, writer:
            for _ in tqdm(range(max(todo, 0)), unit="ep", desc=f"record {args.task}"):
                if not _episode(safe, source, writer, args, period):
                    break
    except RobotError as err:
        raise UserError(str(err)) from None
    print(f"{args.out}: {len(writer.ds.episode_paths())} episodes "
          f"({writer.committed} recorded now)")
    return 0


def _episode(robot, source, writer, args, period: float) -> bool:
    """Record one episode; False when the source asks to stop recording."""
    episode = writer.episode(args.instruction)
    source.start()
    t0 = time.monotonic()
    for step in range(args.max_steps):
        obs = robot.observe()
        action = source.action(obs, step)
        if action is Stop:
            return False
        if action is None or action is Discard:
            break
        episode.add(obs, action)
        robot.act(action)
        time.sleep(max(0.0, t0 + (step + 1) * period - time.monotonic()))
    robot.hold()
    if action is Discard or not len(episode):
        episode.discard()
    else:
        episode.commit()
    return True


class Stop:
    """The source asks to stop recording."""


class Discard:
    """The source asks to throw the current episode away."""


class _ScriptSource:
    def __init__(self, function) -> None:
        self.function = function

    def start(self) -> None:
        pass

    def action(self, obs, step):
        return self.function(obs, step)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


def _script(spec: str) -> _ScriptSource:
    from bridges.loading import import_named

    module, function = import_named(spec, "--script", "my_robot.controllers:wave")
    if not callable(function):
        raise UserError(f"--script {spec!r}: {module.__name__} has no function "
                        f"{spec.partition(':')[2]!r}")
    return _ScriptSource(function)


class Keyboard:
    """Teleoperation from a terminal: each tick, the keys pressed since the last one."""

    def __init__(self, action_names, read_keys=None) -> None:
        self.names = list(action_names)
        if len(self.names) > len(KEY_PAIRS) + ("gripper" in self.names):
            raise UserError(f"--keyboard drives at most {len(KEY_PAIRS)} dimensions; this "
                            f"robot has {len(self.names)}: use --script")
        self._read_keys = read_keys  # injected in tests; else the terminal
        self._terminal = None

    def __enter__(self):
        if self._read_keys is None:
            self._terminal = _RawTerminal()
            self._read_keys = self._terminal.read
            print("keys: " + ", ".join(self.help()) + "; Enter keeps the episode, x "
                  "discards it, Esc stops", flush=True)
        return self

    def __exit__(self, *exc) -> None:
        if self._terminal is not None:
            self._terminal.restore()

    def help(self) -> list[str]:
        pairs = iter(KEY_PAIRS)
        return [("space" if n == "gripper" else "/".join(next(pairs))) + f": {n}"
                for n in self.names]

    def start(self) -> None:
        self.gripper = 1.0  # open

    def action(self, obs, step):
        import numpy as np

        action = np.zeros(len(self.names), np.float32)
        pairs = iter(KEY_PAIRS)
        keys = self._read_keys()
        if ESCAPE in keys:
            return Stop
        if DISCARD in keys:
            return Discard
        if any(k in keys for k in ENTER):
            return None
        for i, name in enumerate(self.names):
            if name == "gripper":
                if " " in keys:
                    self.gripper = -self.gripper
                action[i] = self.gripper
                continue
            plus, minus = next(pairs)
            action[i] = float(plus in keys) - float(minus in keys)
        return action


class _RawTerminal:
    """stdin in cbreak mode: keys arrive as typed, without Enter (POSIX terminals)."""

    def __init__(self) -> None:
        import sys
        import termios
        import tty

        if not sys.stdin.isatty():
            raise UserError("--keyboard needs a terminal on stdin; use --script otherwise")
        self.fd = sys.stdin.fileno()
        self.saved = termios.tcgetattr(self.fd)
        tty.setcbreak(self.fd)

    def read(self) -> str:
        import os
        import select

        keys = ""
        while select.select([self.fd], [], [], 0)[0]:
            keys += os.read(self.fd, 32).decode(errors="ignore")
        return keys.lower()

    def restore(self) -> None:
        import termios

        termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)

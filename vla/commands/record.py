"""`vla record CLASS --out DIR`: demonstrations on any robot, in the dataset format of
`vla collect` (vla/data/writer.py).

The robot is a `bridges.robot.Robot` class named `package.module:Class` with KEY=VALUE
constructor arguments (as `vla bridge robot`). Each control tick: observe, ask the source
for an action, check it against the robot's safety limits (bridges/safe_robot.py), act,
and record the observation with the action. Sources:

- `--script package.module:function`: a scripted controller, called as
  `function(observation, step) -> action` (normalised, shape (A,)); returning None ends
  the episode, which is kept.
- `--leader PORT --leader-calibration FILE`: an SO-101 leader arm moved by hand; each tick
  the follower is told to go where the leader's tool is (bridges/so101.py `follow`).
  From a terminal, Enter keeps the episode, x discards it, Esc stops; without one,
  episodes end at --max-steps.
- `--keyboard`: teleoperation from this terminal. Keys move one action dimension each,
  in the contract's order: w/s, a/d, r/f, q/e, z/c, t/g, y/h, u/j, i/k (+/-); a dimension
  named "gripper" toggles with the space bar instead. Enter keeps the episode, x throws
  it away, Esc stops recording.

Before each episode the robot's `reset()` runs (an arm back to its start pose; the
default does nothing), and with `--wait-for-reset` the operator resets the scene and
presses Enter. Recording goes on until --episodes are kept: an attempt that is not kept
(empty because the source ended it at step 0, or discarded) is reported with its reason,
and after 3 empty attempts in a row recording stops with an error, not a silent loop.

Episodes are committed atomically; `--resume` records more into an existing dataset
until it holds --episodes of this task.
"""

from __future__ import annotations

import time

from vla.errors import UserError

KEY_PAIRS = ("ws", "ad", "rf", "qe", "zc", "tg", "yh", "uj", "ik")
ENTER, DISCARD, ESCAPE = ("\r", "\n"), "x", "\x1b"
EMPTY_IN_A_ROW = 3  # empty attempts in a row before recording stops with an error


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
    source.add_argument("--leader", metavar="PORT",
                        help="teleoperate with an SO-101 leader arm on this serial port")
    p.add_argument("--leader-calibration", metavar="FILE",
                   help="the leader arm's calibration (LeRobot's JSON); with --leader")
    p.add_argument("--episodes", type=int, default=10, help="episodes wanted (default 10)")
    p.add_argument("--max-steps", type=int, default=300,
                   help="end an episode after this many steps (default 300)")
    p.add_argument("--resume", action="store_true",
                   help="record into an existing dataset until it holds --episodes")
    p.add_argument("--wait-for-reset", action="store_true",
                   help="before each episode after the first, wait for the operator to "
                        "reset the scene and press Enter (real hardware)")
    p.set_defaults(func=run)


def run(args) -> int:
    from bridges.loading import load_robot
    from bridges.robot import RobotError
    from bridges.safe_robot import SafeRobot
    from vla.data.store import DatasetDir
    from vla.data.writer import DatasetWriter

    if args.episodes < 1 or args.max_steps < 1:
        raise UserError(f"--episodes {args.episodes} and --max-steps {args.max_steps}: "
                        f"expected at least 1")
    robot = load_robot(args.robot_class, args.arguments)
    if args.script:
        source = _script(args.script)
    elif args.leader:
        source = _leader(args, robot.contract)
    else:
        source = Keyboard(robot.contract.action_names)
    existing = DatasetDir(args.out)
    present = len(existing.episode_paths()) if existing.meta_path.is_file() else 0
    if present and not args.resume:
        raise UserError(f"{args.out!r} already holds {present} episodes; pass --resume to "
                        f"record more into it, or choose another --out")
    writer = DatasetWriter(args.out, robot.contract, args.task)
    todo = max(args.episodes - writer.existing, 0)
    period = 1.0 / robot.contract.control_hz
    not_kept: list[str] = []
    try:
        with SafeRobot(robot) as safe, source, writer:
            _record(safe, source, writer, args, period, todo, not_kept)
    except RobotError as err:
        raise UserError(str(err)) from None
    finally:
        for line in not_kept:
            print(f"not kept: {line}")
    print(f"{args.out}: {len(writer.ds.episode_paths())} episodes "
          f"({writer.committed} recorded now, {len(not_kept)} attempts not kept)")
    return 0


def _record(robot, source, writer, args, period, todo: int, not_kept: list[str]) -> None:
    """Attempts until `todo` episodes are kept, the source stops, or too many come out
    empty in a row; each attempt not kept goes into `not_kept` with its reason."""
    from tqdm import tqdm

    empty_in_a_row, attempt = 0, 0
    with tqdm(total=todo, unit="ep", desc=f"record {args.task}") as bar:
        while writer.committed < todo:
            attempt += 1
            if args.wait_for_reset and attempt > 1 and not source.wait_for_reset():
                return
            robot.reset()
            outcome = _episode(robot, source, writer, args, period)
            if outcome is Stop:
                return
            if outcome is None:
                bar.update(1)
                empty_in_a_row = 0
                continue
            not_kept.append(f"attempt {attempt}: {outcome}")
            empty_in_a_row = empty_in_a_row + 1 if outcome.startswith("empty") else 0
            if empty_in_a_row >= EMPTY_IN_A_ROW:
                raise UserError(
                    f"{EMPTY_IN_A_ROW} attempts in a row ended at step 0 (kept "
                    f"{writer.committed} of {todo}): the source has nothing to do from "
                    f"where the robot is. Give the robot a reset() that brings it back to "
                    f"its start (bridges/robot.py), or pass --wait-for-reset")


def _episode(robot, source, writer, args, period: float):
    """Record one episode: None when it is kept, Stop when the source stops recording,
    else why it was not kept."""
    episode = writer.episode(args.instruction)
    source.start()
    t0 = time.monotonic()
    action = None
    for step in range(args.max_steps):
        obs = robot.observe()
        action = source.action(obs, step)
        if action is Stop:
            robot.hold()
            episode.discard()
            return Stop
        if action is None or action is Discard:
            break
        episode.add(obs, action)
        robot.act(action)
        time.sleep(max(0.0, t0 + (step + 1) * period - time.monotonic()))
    robot.hold()
    if action is Discard:
        episode.discard()
        return f"discarded by the operator after {len(episode)} steps"
    if not len(episode):
        episode.discard()
        return "empty: the source ended it at step 0"
    episode.commit()
    return None


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

    def wait_for_reset(self) -> bool:
        return _wait_for_enter(None)

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


def _leader(args, contract):
    from bridges.so101 import SO101_CONTRACT

    if not args.leader_calibration:
        raise UserError("--leader needs --leader-calibration FILE (the leader arm's "
                        "calibration, LeRobot's JSON)")
    if contract.robot != SO101_CONTRACT["robot"]:
        raise UserError(f"--leader drives an SO-101 follower; this robot's contract says "
                        f"robot={contract.robot!r}")
    from bridges.so101 import SO101Leader

    try:
        return LeaderSource(SO101Leader(args.leader, args.leader_calibration))
    except ValueError as err:
        raise UserError(str(err)) from None


class LeaderSource:
    """Teleoperation with a leader arm: each tick, the action towards its pose; keys from
    the terminal, if there is one, end episodes (Enter keeps, x discards, Esc stops)."""

    def __init__(self, leader, read_keys=None) -> None:
        self.leader = leader
        self._read_keys, self._terminal = read_keys, None

    def __enter__(self):
        import sys

        self.leader.connect()
        if self._read_keys is None and sys.stdin.isatty():
            self._terminal = _RawTerminal()
            self._read_keys = self._terminal.read
            print("move the leader arm; Enter keeps the episode, x discards it, Esc stops",
                  flush=True)
        return self

    def __exit__(self, *exc) -> None:
        if self._terminal is not None:
            self._terminal.restore()
        self.leader.close()

    def start(self) -> None:
        pass

    def wait_for_reset(self) -> bool:
        return _wait_for_enter(self._read_keys)

    def action(self, obs, step):
        from bridges.so101 import follow

        keys = self._read_keys() if self._read_keys else ""
        ended = _episode_keys(keys)
        if ended is not _GO_ON:
            return ended
        pose, opening = self.leader.pose()
        return follow(pose, opening, obs["state"])


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

    def wait_for_reset(self) -> bool:
        return _wait_for_enter(self._read_keys)

    def action(self, obs, step):
        import numpy as np

        action = np.zeros(len(self.names), np.float32)
        pairs = iter(KEY_PAIRS)
        keys = self._read_keys()
        ended = _episode_keys(keys)
        if ended is not _GO_ON:
            return ended
        for i, name in enumerate(self.names):
            if name == "gripper":
                if " " in keys:
                    self.gripper = -self.gripper
                action[i] = self.gripper
                continue
            plus, minus = next(pairs)
            action[i] = float(plus in keys) - float(minus in keys)
        return action


_GO_ON = object()  # no key ended the episode


def _episode_keys(keys: str):
    """What the operator's keys say of the episode: Stop (Esc), Discard (x), None (Enter:
    keep it) or _GO_ON."""
    if ESCAPE in keys:
        return Stop
    if DISCARD in keys:
        return Discard
    if any(k in keys for k in ENTER):
        return None
    return _GO_ON


def _wait_for_enter(read_keys) -> bool:
    """The operator resets the scene and presses Enter (True) or stops (False): keys from
    a raw terminal (`read_keys`, Esc stops), else a line from stdin (end of input stops)."""
    if read_keys is None:
        try:
            input("reset the scene, then press Enter (Ctrl-D stops) ")
        except EOFError:
            return False
        return True
    print("reset the scene, then press Enter (Esc stops)", flush=True)
    while True:
        keys = read_keys()
        if ESCAPE in keys:
            return False
        if any(k in keys for k in ENTER):
            return True
        time.sleep(0.05)


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

"""`vla console`: a web page to command the simulated robot in words and watch it."""

from __future__ import annotations

from vla.commands.collect import parse_cameras
from vla.errors import UserError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "console", help="command the sim robot in words from a browser, and watch it",
        description="Serve one page: type a command, see what was understood (or why it "
                    "is refused, before anything moves), watch the policy's camera live with "
                    "where it looks drawn over it, its presence score and stages, press stop "
                    "to hold the robot, download the episode's video. Many browsers may "
                    "watch; one drives at a time.",
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument("--checkpoint", help="policy checkpoint, run in this process "
                                            "(default: the shipped one)")
    which.add_argument("--connect", metavar="URL",
                       help="a `vla serve` to ask instead, e.g. tcp://127.0.0.1:5555 (the "
                            "attention is drawn when the server sends it)")
    p.add_argument("--robot", metavar="CLASS",
                   help="with --connect: drive this robot (package.module:Class, as `vla "
                        "bridge robot`) through its control loop instead of the simulator")
    p.add_argument("--robot-args", nargs="*", default=[], metavar="KEY=VALUE",
                   help="the --robot's constructor arguments")
    p.add_argument("--cameras", type=parse_cameras, default=("front",),
                   help="with --connect: the views the simulator sends (default front)")
    p.add_argument("--bind", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1, loopback only; any other "
                        "address requires the token printed in the URL)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0: any free)")
    p.add_argument("--fps", type=float, default=10.0,
                   help="control rate of the episodes (default 10, the tasks' own)")
    p.add_argument("--task", default="pick", help="the first scene's task (default pick)")
    p.add_argument("--seed", type=int, default=0, help="the first scene's seed (default 0)")
    p.set_defaults(func=run)


def run(args) -> int:
    import asyncio
    import logging

    from policies.registry import resolve_checkpoint
    from policies.vla_policy import VLAPolicy
    from vla.console.server import ConsoleServer

    if not 0 <= args.port < 65536:
        raise UserError(f"--port {args.port}: expected 0 to 65535")
    if not args.fps > 0:
        raise UserError(f"--fps {args.fps}: expected a positive rate")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    driver = None
    if args.robot:
        if not args.connect:
            raise UserError("--robot needs --connect URL: the policy runs on a `vla serve`")
        policy, name, driver = None, f"{args.connect} on {args.robot}", _robot_driver(args)
    elif args.connect:
        policy, name = _remote(args), args.connect
    else:
        directory = resolve_checkpoint(args.checkpoint)
        policy, name = VLAPolicy.from_pretrained(directory, device="cpu"), str(directory)
        policy.warm_up()
    server = ConsoleServer(policy, args.bind, args.port, fps=args.fps, seed=args.seed,
                           task=args.task, policy_name=name, driver=driver)
    ready = asyncio.Event()

    async def main() -> None:
        task = asyncio.create_task(server.serve(ready))
        await ready.wait()
        print(f"vla console: open {server.url}  (Ctrl-C stops)", flush=True)
        await task

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        print("vla console: stopped", flush=True)
    return 0


def _remote(args):
    """The served policy, greeted with the action contract of the first scene's robot."""
    import gymnasium as gym

    import sims  # noqa: F401  (registers the envs)
    from bridges.contract import ActionContract
    from bridges.protocol import ProtocolError
    from sims.camera import camera_options
    from vla.console.remote import RemotePolicy
    from vla.envs import resolve_env_id

    env = gym.make(resolve_env_id(args.task), **camera_options(args.cameras))
    try:
        contract = ActionContract.from_env(env)
    finally:
        env.close()
    try:
        return RemotePolicy(args.connect, contract)
    except (TimeoutError, ProtocolError) as err:
        raise UserError(f"--connect {args.connect}: {err}") from None


def _robot_driver(args):
    from bridges.connection import BridgeError
    from bridges.loading import load_robot
    from bridges.robot import RobotError
    from vla.console.robot_driver import RobotConsoleDriver

    try:
        robot = load_robot(args.robot, list(args.robot_args))
        robot.connect()
        # The console server replaces `emit` with its own.
        return RobotConsoleDriver(robot, args.connect, emit=lambda _: None)
    except (ValueError, BridgeError, RobotError) as err:
        raise UserError(f"--robot {args.robot}: {err}") from None


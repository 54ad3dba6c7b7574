"""`vla serve`: run a policy server that robots reach over ZeroMQ (docs/protocol.md)."""

from __future__ import annotations

from vla.errors import UserError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "serve", help="serve a policy to robots over ZeroMQ",
        description="Serve a policy on a ROUTER socket; robots connect with the bridge (or "
                    "any client of docs/protocol.md). Stops cleanly on Ctrl-C or SIGTERM.",
    )
    # Every flag is a field of ServeConfig or ServerConfig, which holds its default and
    # help (--checkpoint and --policy exclude each other: metadata "exclusive").
    from vla.config import add_flags
    from vla.serving.config import ServeConfig
    from vla.serving.server import ServerConfig

    add_flags(p, ServeConfig)
    add_flags(p, ServerConfig)
    p.set_defaults(func=run)


def run(args) -> int:
    import logging
    import signal

    from vla.config import from_flags
    from vla.serving.config import ServeConfig
    from vla.serving.policies import default_spec, load_policy
    from vla.serving.server import PolicyServer, ServerConfig

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    check_endpoint(args.bind)
    serve = from_flags(ServeConfig, args)
    config = from_flags(ServerConfig, args)
    if serve.threads is not None:
        import torch

        torch.set_num_threads(serve.threads)
    spec = serve.checkpoint or serve.policy or default_spec()
    if serve.contract and not spec.startswith("builtin:"):
        raise UserError("--contract is for a builtin policy (e.g. --policy builtin:hold); a "
                        "checkpoint serves its own contract")
    contract = None
    if spec.startswith("builtin:"):
        contract = (_file_contract(serve.contract) if serve.contract
                    else _task_contract(serve.task))
    policy = load_policy(spec, device=serve.device, contract=contract, seed=serve.seed,
                         quantize=serve.quantize, adapters=serve.adapters)
    if serve.quantize != "none":
        spec += f" ({serve.quantize})"
    server = PolicyServer(policy, config, policy_name=spec,
                          device=getattr(policy, "device", "cpu"))

    def on_signal(signum, frame):
        logging.getLogger("vla.serve").info("%s: shutting down", signal.Signals(signum).name)
        server.stop()
        # A second signal is not polite any more: let it interrupt whatever hangs.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    server.serve_forever()
    return 0


def _file_contract(path: str):
    import json
    from pathlib import Path

    from bridges.contract import ActionContract

    try:
        return ActionContract.from_dict(json.loads(Path(path).read_text()))
    except FileNotFoundError:
        raise UserError(f"--contract {path!r}: no such file") from None
    except (json.JSONDecodeError, TypeError, KeyError, ValueError) as err:
        raise UserError(f"--contract {path!r} is not an action contract ({err}); write one "
                        f"with `vla bridge robot CLASS --print-contract > {path}`") from None


def _task_contract(task: str):
    import gymnasium as gym

    from bridges.contract import ActionContract
    from vla.envs import resolve_env_id

    env = gym.make(resolve_env_id(task))
    try:
        return ActionContract.from_env(env)
    finally:
        env.close()


TRANSPORTS = ("tcp://", "ipc://", "inproc://")


def check_endpoint(bind: str) -> None:
    """A ZeroMQ endpoint needs its transport; 'host:port' alone gets a hint, not EINVAL."""
    if not bind.startswith(TRANSPORTS):
        raise UserError(f"--bind {bind!r} has no transport; expected e.g. "
                        f"tcp://{bind if ':' in bind else '127.0.0.1:5555'} "
                        f"(one of {', '.join(TRANSPORTS)})")

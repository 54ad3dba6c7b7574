"""`vla serve`: run a policy server that robots reach over ZeroMQ (docs/protocol.md)."""

from __future__ import annotations

from vla.errors import UserError

DEFAULT_POLICY = "the shipped default policy, or builtin:hold without one"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "serve", help="serve a policy to robots over ZeroMQ",
        description="Serve a policy on a ROUTER socket; robots connect with the bridge (or "
                    "any client of docs/protocol.md). Stops cleanly on Ctrl-C or SIGTERM.",
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument("--checkpoint", help="checkpoint directory to serve")
    which.add_argument("--policy", help=f"policy spec, e.g. builtin:hold or builtin:random "
                                        f"(default {DEFAULT_POLICY} when no --checkpoint)")
    p.add_argument("--task", default="sims/Pick-v0",
                   help="task whose action contract a builtin policy uses (default sims/Pick-v0)")
    p.add_argument("--contract", metavar="FILE",
                   help="a builtin policy serves this action contract instead of --task's "
                        "(JSON, e.g. from `vla bridge robot CLASS --print-contract`): "
                        "bring-up of a robot of your own")
    # Defaults come from ServerConfig, so the CLI and the Python API cannot drift apart.
    from vla.serving.server import ServerConfig

    d = ServerConfig()
    p.add_argument("--bind", default=d.bind,
                   help=f"address to listen on (default {d.bind}, loopback only)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                   help="where the policy runs (default auto: cuda when available)")
    p.add_argument("--max-batch", type=int, default=d.max_batch,
                   help=f"largest batch (default {d.max_batch})")
    p.add_argument("--max-wait-ms", type=float, default=d.max_wait_ms,
                   help=f"longest a request waits for a batch to fill (default "
                        f"{d.max_wait_ms:g})")
    p.add_argument("--max-message-mb", type=float, default=d.max_message_bytes / 2**20,
                   help=f"largest message accepted, MiB (default "
                        f"{d.max_message_bytes / 2**20:g})")
    p.add_argument("--client-timeout-s", type=float, default=d.client_timeout_s,
                   help=f"free a client's state after this long without a message (default "
                        f"{d.client_timeout_s:g})")
    p.add_argument("--log-every-s", type=float, default=d.log_every_s,
                   help=f"seconds between latency summaries in the log (default "
                        f"{d.log_every_s:g})")
    p.add_argument("--curve-secret", metavar="FILE",
                   help="the server's .key_secret file (from `vla keys`): turns on CurveZMQ")
    p.add_argument("--curve-allow", metavar="DIR",
                   help="directory of the public .key files of clients allowed to connect")
    p.add_argument("--seed", type=int, default=0, help="seed of builtin:random (default 0)")
    p.add_argument("--threads", type=int, metavar="N",
                   help="CPU threads for inference (default: torch's, one per core). With "
                        "the robot on the same machine, leave it a core: --threads 1 on 2 "
                        "cores")
    p.add_argument("--adapters", nargs="+", metavar="DIR",
                   help="LoRA adapters of the served checkpoint (from `vla finetune --method "
                        "lora`): adapter or run directories, or folders of them; a robot picks "
                        "one by name in `hello` or per `act`. Adapters added to these folders "
                        "later are found when a client names them (no restart)")
    p.add_argument("--quantize", choices=("none", "int8"), default="none",
                   help="int8: dynamic int8 quantization of the Linear layers, for CPU "
                        "inference (default none)")
    p.set_defaults(func=run)


def run(args) -> int:
    import logging
    import signal

    from vla.serving.policies import default_spec, load_policy
    from vla.serving.server import PolicyServer, ServerConfig

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    check_endpoint(args.bind)
    if args.threads is not None:
        if args.threads < 1:
            raise UserError(f"--threads {args.threads}: expected at least 1")
        import torch

        torch.set_num_threads(args.threads)
    config = ServerConfig(
        bind=args.bind, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms,
        max_message_bytes=int(args.max_message_mb * 2**20),
        client_timeout_s=args.client_timeout_s, log_every_s=args.log_every_s,
        curve_secret=args.curve_secret, curve_allow=args.curve_allow,
    )
    spec = args.checkpoint or args.policy or default_spec()
    if args.contract and not spec.startswith("builtin:"):
        raise UserError("--contract is for a builtin policy (e.g. --policy builtin:hold); a "
                        "checkpoint serves its own contract")
    contract = None
    if spec.startswith("builtin:"):
        contract = _file_contract(args.contract) if args.contract else _task_contract(args.task)
    policy = load_policy(spec, device=args.device, contract=contract, seed=args.seed,
                         quantize=args.quantize, adapters=args.adapters)
    if args.quantize != "none":
        spec += f" ({args.quantize})"
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

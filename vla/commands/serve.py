"""`vla serve`: run a policy server that robots reach over ZeroMQ (docs/protocol.md)."""

from __future__ import annotations

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
    p.add_argument("--bind", default="tcp://127.0.0.1:5555",
                   help="address to listen on (default tcp://127.0.0.1:5555, loopback only)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                   help="where the policy runs (default auto: cuda when available)")
    p.add_argument("--max-batch", type=int, default=16, help="largest batch (default 16)")
    p.add_argument("--max-wait-ms", type=float, default=2.0,
                   help="longest a request waits for a batch to fill (default 2)")
    p.add_argument("--max-message-mb", type=float, default=8.0,
                   help="largest message accepted, MiB (default 8)")
    p.add_argument("--client-timeout-s", type=float, default=30.0,
                   help="free a client's state after this long without a message (default 30)")
    p.add_argument("--log-every-s", type=float, default=10.0,
                   help="seconds between latency summaries in the log (default 10)")
    p.add_argument("--curve-secret", metavar="FILE",
                   help="the server's .key_secret file (from `vla keys`): turns on CurveZMQ")
    p.add_argument("--curve-allow", metavar="DIR",
                   help="directory of the public .key files of clients allowed to connect")
    p.add_argument("--seed", type=int, default=0, help="seed of builtin:random (default 0)")
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
    config = ServerConfig(
        bind=args.bind, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms,
        max_message_bytes=int(args.max_message_mb * 2**20),
        client_timeout_s=args.client_timeout_s, log_every_s=args.log_every_s,
        curve_secret=args.curve_secret, curve_allow=args.curve_allow,
    )
    spec = args.checkpoint or args.policy or default_spec()
    contract = _task_contract(args.task) if spec.startswith("builtin:") else None
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


def _task_contract(task: str):
    import gymnasium as gym

    from vla.contract import ActionContract
    from vla.envs import resolve_env_id

    env = gym.make(resolve_env_id(task))
    try:
        return ActionContract.from_env(env)
    finally:
        env.close()

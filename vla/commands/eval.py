"""`vla eval`: success of a policy per task and split, with 95% intervals and videos."""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "eval", help="evaluate a policy in the simulator (success per task and split)",
        description="Closed-loop evaluation on evaluation seeds (never seen in training). "
                    "Without --checkpoint, the shipped default policy is evaluated.",
    )
    p.add_argument("--checkpoint", help="checkpoint directory (or a run directory, or a LoRA "
                                        "adapter: it is loaded onto its base)")
    p.add_argument("--tasks", nargs="+", help="env ids or task names (default: all Panda "
                   "tasks)")
    p.add_argument("--splits", default="L1,L2,L3,L4", help="comma-separated (default all)")
    p.add_argument("--episodes", type=int, default=50, help="episodes per task and split")
    p.add_argument("--seed", type=int, default=0, help="first evaluation seed")
    p.add_argument("--execute-steps", type=int, default=None,
                   help="actions of each chunk executed before re-querying (default: all)")
    p.add_argument("--videos", type=int, default=1,
                   help="videos kept per task and split, of successes and of failures")
    p.add_argument("--out", help="directory for results.json/.md, success.png, videos/")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--quantize", choices=("none", "int8"), default="none",
                   help="int8: evaluate the policy with int8 dynamic quantization (CPU)")
    p.set_defaults(func=run)


def run(args) -> int:
    import json

    import sims
    from policies.registry import load_policy
    from vla.envs import resolve_env_id
    from vla.eval.report import markdown_table, public_result, write_report
    from vla.eval.run import evaluate

    if args.episodes < 1:
        raise ValueError(f"--episodes={args.episodes}; expected at least 1")
    policy = load_policy(args.checkpoint, device=args.device, quantize=args.quantize)
    if args.tasks:
        env_ids = [resolve_env_id(t) for t in args.tasks]
    else:
        env_ids = [e for e in sims.ENV_IDS if sims.env_task(e)[1] == policy.contract.robot]
    splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    result = evaluate(policy, env_ids, splits, args.episodes, seed=args.seed,
                      execute_steps=args.execute_steps, videos=args.videos if args.out else 0)
    if args.out:
        paths = write_report(result, args.out)
    if args.json:
        print(json.dumps(public_result(result), indent=1))
    else:
        print(markdown_table(result))
        if args.out:
            print("wrote " + ", ".join(paths.values()))
    return 0

"""`vla eval`: success of a policy per task and split, with 95% intervals, how far the
failures got stage by stage, and videos."""

from __future__ import annotations

import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "eval", help="evaluate a policy in the simulator (success per task and split)",
        description="Closed-loop evaluation in the simulator: success per task and split "
                    "with 95% intervals, and for each task how far episodes got, stage by "
                    "stage (sims/stages.py), with failure videos grouped by the stage they "
                    "stopped at. Episodes come from the evaluation stream (mode=eval), "
                    "never seen in training: report final numbers on it. Make choices "
                    "(recipes, ablations, checks during training) on the validation stream "
                    "(--validation) instead, so the final numbers stay unbiased. Without "
                    "--checkpoint, the shipped default policy is evaluated.",
    )
    p.add_argument("--checkpoint", help="checkpoint directory (or a run directory, or a LoRA "
                                        "adapter: it is loaded onto its base), or a builtin "
                                        "baseline: builtin:hold, builtin:random")
    p.add_argument("--tasks", nargs="+", help="env ids or task names (default: all tasks of "
                   "the policy's robot)")
    p.add_argument("--splits", default="L1,L2,L3,L4", help="comma-separated (default all)")
    p.add_argument("--episodes", type=int, default=50,
                   help="episodes per task and split (default 50)")
    p.add_argument("--seed", type=int, default=0, help="first evaluation seed (default 0)")
    p.add_argument("--validation", action="store_true",
                   help="run the validation stream (mode=val) instead of the evaluation "
                        "stream: for choosing recipes and ablations, not for final numbers")
    p.add_argument("--execute-steps", type=int, default=None,
                   help="actions of each chunk executed before re-querying; 0 = the whole "
                        "chunk (default: what the checkpoint's execution.json says, else 0)")
    p.add_argument("--temporal-ensemble", type=float, default=None, metavar="COEFF",
                   help="query the policy every step and execute the weighted mean of every "
                        "chunk's prediction for that step (ACT's temporal ensembling; weights "
                        "exp(-COEFF * i), i = 0 the oldest; the gripper takes the newest). "
                        "Try 0.01. Default: off, each chunk runs to its end")
    p.add_argument("--videos", type=int, default=1,
                   help="videos kept per task and split: this many successes, and this "
                        "many failures for each stage where failures stopped (default 1)")
    p.add_argument("--out", help="directory for results.json/.md, stages.md, success.png, "
                                 "videos/successes/, videos/failures/<stage>/ (default: "
                                 "none, print only)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    p.add_argument("--workers", type=int, default=1,
                   help="episodes run in this many processes, each with its own copy of the "
                        "policy on the CPU (one thread each); 2 on a 2-core machine halves "
                        "the time (default 1: in this process, on --device)")
    p.add_argument("--quantize", choices=("none", "int8"), default="none",
                   help="int8: evaluate the policy with int8 dynamic quantization (CPU; "
                        "default none)")
    p.set_defaults(func=run)


def _load(args, tasks: list[str] | None):
    """(policy, env ids, loader): a checkpoint, or a builtin baseline given the first
    task's action contract (Panda tasks by default); `loader()` loads the same policy
    again on the CPU (for worker processes)."""
    from functools import partial

    import sims
    from vla.envs import resolve_env_id

    env_ids = [resolve_env_id(t) for t in tasks] if tasks else None
    if args.checkpoint and args.checkpoint.startswith("builtin:"):
        import gymnasium as gym

        from bridges.contract import ActionContract
        from vla.serving.policies import load_policy as load_builtin

        if args.quantize != "none":
            raise ValueError(f"policy {args.checkpoint!r} has no weights to quantize")
        env_ids = env_ids or [e for e in sims.ENV_IDS if sims.env_task(e)[1] == "panda"]
        env = gym.make(env_ids[0])
        contract = ActionContract.from_env(env)
        env.close()
        loader = partial(load_builtin, args.checkpoint, contract=contract)
        return loader(), env_ids, loader
    from policies.registry import load_policy

    policy = load_policy(args.checkpoint, device=args.device, quantize=args.quantize)
    robot = policy.contract.robot
    loader = partial(load_policy, args.checkpoint, device="cpu", quantize=args.quantize)
    return (policy, env_ids or [e for e in sims.ENV_IDS if sims.env_task(e)[1] == robot],
            loader)


def _ensembled(loader, coeff: float):
    """`loader()`'s policy with temporal ensembling (module level: workers pickle it)."""
    from policies.temporal_ensemble import TemporalEnsemble

    return TemporalEnsemble(loader(), coeff)


def _execution(execute: int | None, coeff: float | None) -> str:
    if coeff is not None:
        return f"a query every step, chunks blended (temporal ensemble {coeff})"
    if not execute:
        return "each chunk runs to its end"
    return f"re-planning every {execute} step{'s' if execute > 1 else ''}"


def run(args) -> int:
    import json
    import math

    from vla.eval.report import (
        caption,
        markdown_table,
        public_result,
        stage_table,
        write_episode_video,
        write_report,
    )
    from vla.eval.run import STREAM_NAMES, evaluate, plan_cells

    if args.episodes < 1:
        raise ValueError(f"--episodes={args.episodes}; expected at least 1")
    mode = "val" if args.validation else "eval"
    splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    if args.workers < 1:
        raise ValueError(f"--workers={args.workers}; expected at least 1")
    coeff = args.temporal_ensemble
    if coeff is not None and not (math.isfinite(coeff) and coeff >= 0):
        raise ValueError(f"--temporal-ensemble={coeff}; expected a number >= 0 (e.g. 0.01)")
    if coeff is not None and args.execute_steps is not None:
        raise ValueError("--temporal-ensemble executes one action per query; drop "
                         f"--execute-steps={args.execute_steps}")
    if args.execute_steps is not None and args.execute_steps < 0:
        raise ValueError(f"--execute-steps={args.execute_steps}; expected 0 (the whole chunk) "
                         f"or more")
    policy, env_ids, loader = _load(args, args.tasks)
    execute = args.execute_steps
    if execute is None and coeff is None:
        execute = policy.execute_steps  # the checkpoint's execution.json, if any
    if coeff is not None:
        from functools import partial

        from policies.temporal_ensemble import TemporalEnsemble

        policy = TemporalEnsemble(policy, coeff)
        loader = partial(_ensembled, loader, coeff)
    cells = plan_cells(env_ids, splits)
    last = args.seed + args.episodes - 1
    print(f"vla eval: {len(cells)} task/split cells x {args.episodes} episodes = "
          f"{len(cells) * args.episodes} episodes; splits {','.join(splits)}; "
          f"{STREAM_NAMES[mode]} stream (mode={mode}), seeds {args.seed}-{last}; "
          f"{args.workers} worker{'s' if args.workers > 1 else ''}; "
          f"{_execution(execute, coeff)}", file=sys.stderr, flush=True)
    on_video = (lambda rec: write_episode_video(rec, args.out)) if args.out else None
    result = evaluate(policy, env_ids, splits, args.episodes, seed=args.seed,
                      execute_steps=execute or None, videos=args.videos if args.out else 0,
                      mode=mode, on_video=on_video, workers=args.workers, loader=loader)
    result["temporal_ensemble"] = coeff  # None: off
    result["execute_steps"] = execute or None  # None: whole chunks
    if args.out:
        paths = write_report(result, args.out)
    if args.json:
        print(json.dumps(public_result(result), indent=1))
    else:
        print(caption(result) + "\n")
        print(markdown_table(result))
        print(stage_table(result))
        if args.out:
            print("wrote " + ", ".join(paths.values()))
    return 0

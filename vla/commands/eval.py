"""`vla eval`: success of a policy per task and split, with 95% intervals, how far the
failures got stage by stage, and videos."""

from __future__ import annotations

import sys

from vla.errors import UserError


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
    # Every flag is a field of EvalConfig, which holds its default and help.
    from vla.config import add_flags
    from vla.eval.config import EvalConfig

    add_flags(p, EvalConfig)
    p.set_defaults(func=run)


def _load(config):
    """(policy, env ids, loader): a checkpoint, or a builtin baseline given the first
    task's action contract (Panda tasks by default); `loader()` loads the same policy
    again on the CPU (for worker processes)."""
    from functools import partial

    import sims
    from vla.envs import resolve_env_id

    env_ids = [resolve_env_id(t) for t in config.tasks] if config.tasks else None
    if config.checkpoint and config.checkpoint.startswith("builtin:"):
        import gymnasium as gym

        from bridges.contract import ActionContract
        from vla.serving.policies import load_policy as load_builtin

        if config.quantize != "none":
            raise ValueError(f"policy {config.checkpoint!r} has no weights to quantize")
        env_ids = env_ids or [e for e in sims.ENV_IDS if sims.env_task(e)[1] == "panda"]
        env = gym.make(env_ids[0])
        contract = ActionContract.from_env(env)
        env.close()
        loader = partial(load_builtin, config.checkpoint, contract=contract)
        return loader(), env_ids, loader
    from policies.registry import load_policy

    policy = load_policy(config.checkpoint, device=config.device, quantize=config.quantize)
    robot = policy.contract.robot
    loader = partial(load_policy, config.checkpoint, device="cpu", quantize=config.quantize)
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

    from vla.config import from_flags
    from vla.eval.config import EvalConfig
    from vla.eval.report import (
        caption,
        markdown_table,
        public_result,
        stage_table,
        write_episode_video,
        write_report,
    )
    from vla.eval.run import STREAM_NAMES, evaluate, plan_cells

    config = from_flags(EvalConfig, args)
    mode, splits, coeff = config.mode, config.split_names, config.temporal_ensemble
    policy, env_ids, loader = _load(config)
    execute = config.execute_steps
    if execute is None and coeff is None:
        execute = policy.execute_steps  # the checkpoint's execution.json, if any
    if coeff is not None:
        from functools import partial

        from policies.temporal_ensemble import TemporalEnsemble

        policy = TemporalEnsemble(policy, coeff)
        loader = partial(_ensembled, loader, coeff)
    if config.chains:
        return _chains(config, policy, splits, mode, execute)
    cells = plan_cells(env_ids, splits)
    last = config.seed + config.episodes - 1
    print(f"vla eval: {len(cells)} task/split cells x {config.episodes} episodes = "
          f"{len(cells) * config.episodes} episodes; splits {','.join(splits)}; "
          f"{STREAM_NAMES[mode]} stream (mode={mode}), seeds {config.seed}-{last}; "
          f"{config.workers} worker{'s' if config.workers > 1 else ''}; "
          f"{_execution(execute, coeff)}", file=sys.stderr, flush=True)
    on_video = (lambda rec: write_episode_video(rec, config.out)) if config.out else None
    result = evaluate(policy, env_ids, splits, config.episodes, seed=config.seed,
                      execute_steps=execute or None, videos=config.videos if config.out else 0,
                      mode=mode, on_video=on_video, workers=config.workers, loader=loader,
                      executor=config.executor, address=config.address)
    result["temporal_ensemble"] = coeff  # None: off
    result["execute_steps"] = execute or None  # None: whole chunks
    if config.out:
        paths = write_report(result, config.out)
    if config.json:
        print(json.dumps(public_result(result), indent=1))
    else:
        print(caption(result) + "\n")
        print(markdown_table(result))
        print(stage_table(result))
        if config.out:
            print("wrote " + ", ".join(paths.values()))
    return 0


def _chains(config, policy, splits: list[str], mode: str, execute: int | None) -> int:
    """`--chains N`: N chains of 5 steps per split (the held-out task has no chains)."""
    import json
    from pathlib import Path

    from vla.data.store import write_json_atomic
    from vla.eval.chains import chain_table, evaluate_chains
    from vla.eval.run import STREAM_NAMES

    splits = [s for s in splits if s != "L4"]
    if not splits:
        raise UserError("--chains runs in L1, L2 or L3 (L4 is the held-out task alone)")
    print(f"vla eval: {config.chains} chains of 5 steps per split; splits {','.join(splits)}; "
          f"{STREAM_NAMES[mode]} stream (mode={mode}), chain seeds {config.seed}-"
          f"{config.seed + config.chains - 1}", file=sys.stderr, flush=True)
    result = evaluate_chains(policy, config.chains, splits, config.seed, mode,
                             execute_steps=execute or None, videos=config.videos,
                             out=config.out)
    if config.out:
        write_json_atomic(Path(config.out) / "chains.json", result)
    print(json.dumps(result, indent=1) if config.json else chain_table(result))
    return 0


"""How many actions of each chunk should a policy run before asking again? Chosen on the
validation stream, and (with --write) stored beside the checkpoint for `vla eval`.

A chunk is predicted from one observation; running all of it is open-loop for its
length, while asking again after fewer steps closes the loop more often (the bridge's
asynchronous loop already asks again about every second tick, docs/RESULTS.md). Each
candidate (0 = the whole chunk) runs the L1 validation episodes of every training task
(`vla eval --validation --splits L1`, seeds 0-199); the one with the most successes is
chosen, ties to the one listed first (fewer queries first in the default order).
`--write` stores it in CHECKPOINT/execution.json, which `VLAPolicy.execute_steps` reads
and `vla eval` uses unless `--execute-steps` is given.

    python benchmarks/execute_steps.py                     # the shipped policy
    python benchmarks/execute_steps.py --checkpoint runs/x/checkpoint --write
"""

from __future__ import annotations

import argparse
import json
import sys
from functools import partial
from pathlib import Path


def choose(successes: dict[int, int]) -> int:
    """The candidate with the most successes; ties to the first listed."""
    return max(successes, key=lambda c: (successes[c], -list(successes).index(c)))


def main() -> None:
    import sims
    from policies.registry import load_policy
    from policies.vla_policy import EXECUTION_FILE
    from vla.eval.run import evaluate

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default="policies/checkpoints/default")
    ap.add_argument("--candidates", default="0,2,1",
                    help="comma-separated execute_steps to try; 0 = the whole chunk")
    # 200 per task: with 100, L1 means of the shipped policy 0.2 points apart swapped
    # places between seeds 0-99 and 100-199 (docs/RESULTS.md, "Re-planning").
    ap.add_argument("--episodes", type=int, default=200, help="per task (validation seeds)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--tasks", default="",
                    help="comma-separated env ids or task names (default: every task of "
                         "the checkpoint's robot)")
    ap.add_argument("--write", action="store_true", help=f"store CHECKPOINT/{EXECUTION_FILE}")
    args = ap.parse_args()
    candidates = [int(c) for c in args.candidates.split(",")]
    loader = partial(load_policy, args.checkpoint, device="cpu")
    policy = loader()
    chunk = policy.cfg.chunk_length
    bad = [c for c in candidates if not 0 <= c <= chunk]
    if bad:
        raise SystemExit(f"--candidates {bad}: expected 0 (whole chunk) to {chunk}")
    env_ids = [e for e in sims.ENV_IDS if sims.env_task(e)[1] == policy.contract.robot]
    if args.tasks:
        from vla.envs import resolve_env_id

        env_ids = [resolve_env_id(t) for t in args.tasks.split(",") if t.strip()]
    rates, successes = {}, {}
    for c in candidates:
        print(f"execute_steps={c or 'whole chunk'} ...", file=sys.stderr, flush=True)
        result = evaluate(policy, env_ids, ["L1"], args.episodes, execute_steps=c or None,
                          mode="val", workers=args.workers, loader=loader)
        successes[c] = result["splits"]["L1"]["successes"]
        rates[str(c)] = {"L1": result["splits"]["L1"]["success"],
                         **{e.split("/")[-1]: cell["success"]
                            for e, cell in result["tasks"].items()}}
    chosen = choose(successes)
    record = {"execute_steps": chosen or None,
              "chosen_on": f"validation stream, L1, seeds 0-{args.episodes - 1}, "
                           f"{args.episodes} episodes per task"
                           + (f" of {args.tasks}" if args.tasks else "")
                           + "; 0 = whole chunks",
              "candidates": rates}
    if args.write:
        (Path(args.checkpoint) / EXECUTION_FILE).write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps({"benchmark": "execute_steps", "checkpoint": args.checkpoint,
                      "chunk_length": chunk, **record, "written": args.write}))


if __name__ == "__main__":
    main()

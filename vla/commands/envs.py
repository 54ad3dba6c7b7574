"""`vla envs`: list the registered tasks, one id per line."""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser("envs", help="list the task environments (id first)")
    p.add_argument("--verbose", "-v", action="store_true", help="also print task, robot, steps")
    p.set_defaults(func=run)


def run(args) -> int:
    import gymnasium

    import sims

    # The suite's tasks, then the extra envs (a chain's step, sims/chain_env.py).
    for env_id in [*sims.ENV_IDS, *sims.EXTRA_ENV_IDS]:
        if args.verbose:
            spec = gymnasium.spec(env_id)
            kw = spec.kwargs
            print(f"{env_id}\ttask={kw['task']}\trobot={kw['robot']}\tmax_steps={spec.max_episode_steps}")
        else:
            print(env_id)
    return 0

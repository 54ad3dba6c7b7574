"""`vla dagger`: the policy drives, the scripted expert relabels, training continues."""

from __future__ import annotations

EPILOG = """\
each round:
  1. roll out the current policy on every training task (workers in parallel); a share
     beta of its chunks is driven by the expert (beta-mixing), the rest by the policy
  2. label every visited state with the expert's clean action; the rollouts become a
     dataset like `vla collect`'s (episode attrs: relabelled, dagger_round, success)
  3. train on the demonstrations plus every round's rollouts, from the current weights

examples:
  vla dagger --checkpoint runs/default --data data/default/* --out runs/dagger
  vla dagger --config configs/dagger.yaml --out runs/dagger rounds=3 episodes=200
  vla dagger --out runs/dagger --resume          # after a crash or Ctrl-C
"""


def register(subparsers) -> None:
    import argparse

    from vla.commands import add_run_arguments

    p = subparsers.add_parser(
        "dagger", help="DAgger: relabel the policy's own rollouts with the expert, retrain",
        description="Rounds of DAgger with the scripted experts. Settings are DaggerConfig "
                    "keys (--config YAML and KEY=VALUE overrides): rounds, episodes (per "
                    "task and round), beta, beta_decay, tasks, workers, execute_steps, plus "
                    "every `vla finetune` key for the training of each round (steps, lr, "
                    "method, ...). The run records each round in OUT/dagger.json.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--checkpoint", help="policy to start from (checkpoint or run directory; "
                                        "default: the shipped default policy)")
    p.add_argument("--data", nargs="+", default=None,
                   help="the demonstrations (directories from `vla collect`)")
    p.add_argument("--executor", choices=("local", "ray"), default=None,
                   help="where the rollouts run (the executor key): this machine's "
                        "processes (local, default) or a Ray cluster (docs/scaling.md)")
    p.add_argument("--address", default=None,
                   help="with --executor ray: the cluster's address (the address key; "
                        "default: a local cluster started for each round's rollouts)")
    add_run_arguments(p, "DaggerConfig")
    p.set_defaults(func=run)


def run(args) -> int:
    import json

    from vla.commands import config_overrides
    from vla.config import load_config
    from vla.dagger.loop import DaggerConfig, dagger

    cfg = load_config(DaggerConfig, args.config, config_overrides(args))
    record = dagger(cfg, args.out, resume=args.resume, device=args.device)
    print(json.dumps({"rounds": record["rounds"],
                      "final_checkpoint": record["final_checkpoint"]}, indent=1))
    return 0

"""`vla pretrain`: ground words in pixels on captioned synthetic scenes (no actions)."""

from __future__ import annotations

EPILOG = """\
what it does:
  1. makes captioned scenes (in parallel, resumable): the tabletop and arm with 2-7
     things of ~1000 named colours (XKCD and CSS4 lists) and 9 shape families, jittered
     camera, light and table; 4 sentences per scene in the task suite's training
     phrasings, a quarter naming a colour the scene lacks
  2. trains the policy's grounding path (conv stem + referent keypoints): group 0's heat
     maps on the object, group 1's on the zone, base or board location; flat maps for
     something absent
  3. writes a grounding checkpoint; a policy starts from it with `init_from`

examples:
  vla pretrain --out runs/pretrain                       # 20k scenes, 3000 steps
  vla pretrain --out runs/pretrain scenes=2000 steps=500
  vla train --config configs/default.yaml --out runs/p init_from=runs/pretrain \\
            grounding_data=runs/pretrain/scenes      # start from it, keep it grounded
  vla pretrain --out runs/pretrain --resume              # after a crash or Ctrl-C
"""


def register(subparsers) -> None:
    import argparse

    from vla.commands import add_run_arguments

    p = subparsers.add_parser(
        "pretrain", help="pretrain the grounding path on captioned synthetic scenes",
        description="Vision-language grounding pretraining. Settings are PretrainConfig "
                    "keys (--config YAML and KEY=VALUE overrides): scenes, val_scenes, "
                    "scenes_dir, workers, size, model.*, steps, batch_size, lr, init_from.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--scenes-only", action="store_true",
                   help="make the captioned scenes and stop (e.g. to share them)")
    add_run_arguments(p, "PretrainConfig")
    p.set_defaults(func=run)


def run(args) -> int:
    import json

    from vla.config import load_config
    from vla.pretrain.loop import PretrainConfig, pretrain

    cfg = load_config(PretrainConfig, args.config, list(args.overrides))
    summary = pretrain(cfg, args.out, resume=args.resume, device=args.device,
                       scenes_only=args.scenes_only)
    print(json.dumps(summary, indent=1))
    return 0

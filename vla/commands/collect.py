"""`vla collect`: record successful expert demonstrations into a dataset directory."""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "collect", help="record expert demonstrations into a dataset directory",
        description="Run the scripted expert in parallel worker processes and keep the "
                    "successful episodes. --episodes counts this run's (shard's) episodes.",
    )
    p.add_argument("--task", required=True,
                   help="env id (sims/Pick-v0) or task name (pick); see `vla envs`")
    p.add_argument("--episodes", type=int, required=True, help="successful episodes to keep")
    p.add_argument("--out", required=True, help="dataset directory (created if missing)")
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="where the workers run: this machine's processes (default) or a "
                        "Ray cluster (the ray extra; docs/scaling.md)")
    p.add_argument("--address", default=None,
                   help="with --executor ray: the cluster's address (default: a local "
                        "cluster started for this run)")
    p.add_argument("--split", default="L1", help="generalisation split L1..L4 (default L1)")
    p.add_argument("--resume", action="store_true",
                   help="complete the count in an existing dataset, skipping seeds done")
    p.add_argument("--shard", default="0/1", type=parse_shard,
                   help="i/n: take attempts k with k %% n == i (default 0/1)")
    p.add_argument("--noise", type=float, default=None,
                   help="std of noise on executed motion; labels stay clean (default 0.1)")
    p.add_argument("--seed", type=int, default=0, help="first seed; attempt k uses seed + k")
    p.add_argument("--image-size", type=int, default=128, help="camera images are N x N")
    p.add_argument("--cameras", default="front", type=parse_cameras,
                   help="views recorded per frame, comma-separated: front (default) or "
                        "front,wrist (a camera on the hand, for grasp and release)")
    p.set_defaults(func=run)


def parse_shard(text: str) -> tuple[int, int]:
    import argparse

    try:
        i, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"shard {text!r} is not i/n, e.g. 0/4") from None
    if not (n >= 1 and 0 <= i < n):
        raise argparse.ArgumentTypeError(f"shard {text!r}: expected n >= 1 and 0 <= i < n")
    return i, n


def parse_cameras(text: str) -> tuple[str, ...]:
    import argparse

    from sims.camera import camera_options

    names = tuple(part.strip() for part in text.split(","))
    try:
        camera_options(names)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return names


def run(args) -> int:
    from vla.data.collect import DEFAULT_NOISE, collect

    noise = DEFAULT_NOISE if args.noise is None else args.noise
    summary = collect(args.task, args.episodes, args.out, workers=args.workers,
                      split=args.split, resume=args.resume, shard=args.shard, noise=noise,
                      seed=args.seed, image_size=args.image_size, cameras=args.cameras,
                      executor=args.executor, address=args.address)
    print(
        f"{summary['env_id']} {summary['split']}: {summary['new']} new episodes in "
        f"{summary['seconds']:.1f} s ({summary['episodes_per_min']:.0f}/min), "
        f"{summary['failures']} failed attempts discarded; "
        f"{summary['committed']}/{summary['requested']} of this run's episodes in "
        f"{summary['out']}"
    )
    if not summary["complete"]:
        print("stopped early: too many failed attempts; see failures.jsonl, then --resume")
        return 1
    return 0

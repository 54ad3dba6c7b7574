"""`vla dataset info|view|merge`: look at and combine demonstration datasets."""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser("dataset", help="inspect, view and merge datasets")
    sub = p.add_subparsers(dest="dataset_command", metavar="ACTION", required=True)

    info = sub.add_parser("info", help="episodes, frames, tasks, size and stats")
    info.add_argument("dir", help="dataset directory")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.set_defaults(func=run_info)

    view = sub.add_parser("view", help="write one episode as an mp4 with its instruction")
    view.add_argument("dir", help="dataset directory")
    view.add_argument("--episode", type=int, default=0,
                      help="episode index in sorted order, as `dataset info` counts")
    view.add_argument("--out", required=True, help="mp4 file to write")
    view.add_argument("--camera", default=None, help="camera name (default: the first)")
    view.set_defaults(func=run_view)

    merge = sub.add_parser("merge", help="copy datasets (e.g. shards) into one directory")
    merge.add_argument("sources", nargs="+", help="dataset directories to merge")
    merge.add_argument("--out", required=True, help="dataset directory to merge into")
    merge.set_defaults(func=run_merge)


def run_info(args) -> int:
    import json

    from vla.data.info import dataset_info, format_info

    info = dataset_info(args.dir)
    print(json.dumps(info, indent=2) if args.json else format_info(info))
    return 0


def run_view(args) -> int:
    from vla.data.episodes import load_episode
    from vla.data.video import write_video

    episode = load_episode(args.dir, args.episode)
    camera = args.camera or next(iter(episode.images))
    if camera not in episode.images:
        raise ValueError(f"--camera {camera!r} is not in the dataset; "
                         f"expected one of {', '.join(episode.images)}")
    attrs = episode.attrs
    path = write_video(args.out, episode.images[camera], fps=attrs.get("control_hz", 10.0),
                       text=attrs["instruction"])
    print(f"wrote {path} ({episode.n_frames} frames of {attrs['env_id']} seed {attrs['seed']}: "
          f"{attrs['instruction']!r})")
    return 0


def run_merge(args) -> int:
    from vla.data.merge import merge

    summary = merge(args.sources, args.out)
    print(f"merged {len(args.sources)} datasets into {summary['out']}: {summary['copied']} "
          f"episodes copied, {summary['skipped']} already there, {summary['episodes']} in all")
    return 0

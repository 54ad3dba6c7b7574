"""`vla dataset info|validate|view|merge|export|import`: look at, check, combine and
convert datasets."""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser("dataset", help="inspect, view, merge, export and import datasets")
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

    validate = sub.add_parser("validate", help="name the first problem in a dataset, if any")
    validate.add_argument("dir", help="dataset directory")
    validate.set_defaults(func=run_validate)

    merge = sub.add_parser("merge", help="copy datasets (e.g. shards) into one directory")
    merge.add_argument("sources", nargs="+", help="dataset directories to merge")
    merge.add_argument("--out", required=True, help="dataset directory to merge into")
    merge.set_defaults(func=run_merge)
    _register_lerobot(sub)


def _register_lerobot(sub) -> None:
    from vla.data.lerobot.layout import CHUNKS_SIZE, DATA_FILE_MB, VIDEO_FILE_MB

    export = sub.add_parser("export", help="write a dataset as a LeRobot v3.0 dataset")
    export.add_argument("dir", help="dataset directory")
    export.add_argument("--format", choices=("lerobot",), default="lerobot",
                        help="output format (LeRobot dataset v3.0)")
    export.add_argument("--out", required=True, help="new directory to write")
    export.add_argument("--codec", default="libx264", help="video encoder (PyAV name)")
    export.add_argument("--pix-fmt", default="yuv420p",
                        help="yuv420p plays everywhere; yuv444p keeps full colour resolution")
    export.add_argument("--crf", type=int, default=18, help="video quality (lower is better)")
    export.add_argument("--data-file-mb", type=float, default=DATA_FILE_MB,
                        help="start a new data parquet file past this size")
    export.add_argument("--video-file-mb", type=float, default=VIDEO_FILE_MB,
                        help="start a new mp4 file past this size")
    export.add_argument("--chunks-size", type=int, default=CHUNKS_SIZE,
                        help="files per chunk directory")
    export.set_defaults(func=run_export)

    imp = sub.add_parser(
        "import", help="read a LeRobot dataset (v3.0 or v2.x) into a new dataset directory",
        description="Robot, action and state names, control rate and cameras come from the "
                    "LeRobot metadata; what it cannot say (units, action scale, sometimes "
                    "the robot or names) is asked for by the flags below.")
    imp.add_argument("dir", help="LeRobot dataset directory (with meta/info.json)")
    imp.add_argument("--out", required=True, help="new dataset directory to write")
    imp.add_argument("--robot", help="robot name (default: info.json robot_type)")
    imp.add_argument("--action-names", type=_words, help="comma-separated (default: the "
                     "action feature's names)")
    imp.add_argument("--state-names", type=_words, help="comma-separated (default: the "
                     "observation.state feature's names)")
    imp.add_argument("--action-units", type=_words,
                     help="one unit for every action dimension, or one each, comma-separated")
    imp.add_argument("--action-scale", type=_numbers,
                     help="physical size of an action of 1.0: one number, or one each")
    imp.add_argument("--state-units", type=_words, help="recorded with the robot (optional)")
    imp.add_argument("--camera", action="append", default=[], metavar="KEY=NAME",
                     help="import camera KEY (e.g. observation.images.top, or top) as NAME; "
                          "repeat for several (default: every camera, by its last name)")
    imp.set_defaults(func=run_import)


def run_info(args) -> int:
    import json

    from vla.data.info import dataset_info, format_info

    try:
        info = dataset_info(args.dir)
        text = json.dumps(info, indent=2) if args.json else format_info(info)
    except (KeyError, TypeError, IndexError) as err:  # a dataset not written by us
        from vla.data.validate import first_problem

        raise ValueError(f"{args.dir!r} cannot be summarised ({type(err).__name__}: {err}); "
                         f"the first problem found: {first_problem(args.dir)}") from None
    print(text)
    return 0


def run_validate(args) -> int:
    from vla.data.validate import first_problem

    problem = first_problem(args.dir)
    if problem:
        print(f"invalid: {problem}")
        return 1
    print(f"{args.dir}: valid")
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


def run_export(args) -> int:
    import json

    from vla.data.lerobot.export import export_lerobot
    from vla.data.lerobot.video import VideoSettings

    video = VideoSettings(codec=args.codec, pix_fmt=args.pix_fmt, crf=args.crf)
    summary = export_lerobot(args.dir, args.out, video, data_file_mb=args.data_file_mb,
                             video_file_mb=args.video_file_mb, chunks_size=args.chunks_size)
    print(json.dumps(summary))
    return 0


def run_import(args) -> int:
    import json

    from vla.data.lerobot.importer import ImportOptions, import_lerobot

    cameras = {}
    for item in args.camera:
        key, sep, name = item.partition("=")
        if not sep or not key or not name:
            raise ValueError(f"--camera {item!r}; expected KEY=NAME, e.g. "
                             f"observation.images.top=front")
        cameras[key] = name
    options = ImportOptions(robot=args.robot, action_names=args.action_names,
                            state_names=args.state_names, action_units=args.action_units,
                            action_scale=args.action_scale, state_units=args.state_units,
                            cameras=cameras)
    print(json.dumps(import_lerobot(args.dir, args.out, options)))
    return 0


def _words(text: str) -> list[str]:
    return [w.strip() for w in text.split(",") if w.strip()]


def _numbers(text: str) -> list[float]:
    import argparse

    try:
        return [float(w) for w in _words(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected numbers separated by commas, "
                                         f"e.g. 0.05 or 0.05,0.05,0.05,0.3,1") from None

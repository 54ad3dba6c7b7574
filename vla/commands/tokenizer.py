"""`vla tokenizer report DIR`: how well the action tokenizer fits the data."""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser("tokenizer", help="inspect action tokenizers")
    sub = p.add_subparsers(dest="tokenizer_command", metavar="ACTION", required=True)
    r = sub.add_parser(
        "report", help="round-trip error per dimension and bin occupancy",
        description="DIR is a checkpoint or run directory (its tokenizer is measured on "
                    "the datasets given with --data, which a checkpoint needs) or a dataset "
                    "(a tokenizer is fitted on it with --bins/--mode and measured on it, or "
                    "on --data).",
    )
    r.add_argument("dir", help="checkpoint directory or dataset directory")
    r.add_argument("--data", nargs="*", help="datasets to measure on (required for a "
                   "checkpoint; default for a dataset: DIR itself)")
    r.add_argument("--bins", type=int, default=256, help="bins when fitting (default 256)")
    r.add_argument("--mode", default="uniform", help="uniform | quantile (when fitting)")
    r.add_argument("--json", action="store_true", help="print JSON")
    r.set_defaults(func=run)


def run(args) -> int:
    import json
    from pathlib import Path

    import numpy as np

    from policies.tokenizer import FILENAME, ActionTokenizer
    from vla.data.episodes import iter_episodes

    root = Path(args.dir)
    is_checkpoint = (root / FILENAME).is_file() or (root / "checkpoint" / FILENAME).is_file()
    data = args.data or ([] if is_checkpoint else [str(root)])
    if not data:
        raise ValueError("a checkpoint's tokenizer needs --data DATASET to measure it on")
    actions = np.concatenate([ep.action for d in data for ep in iter_episodes(d, images=False)])
    if is_checkpoint:
        tok_dir = root if (root / FILENAME).is_file() else root / "checkpoint"
        tokenizer = ActionTokenizer.load(tok_dir)
    else:
        from vla.data.store import DatasetDir

        names = DatasetDir.open(root).read_meta()["action_names"]
        tokenizer = ActionTokenizer.fit(actions, names, n_bins=args.bins, mode=args.mode)
    report = tokenizer.report(actions)
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    print(f"{report['mode']} bins: {report['n_bins']}, samples: {report['samples']}")
    print(f"{'dim':10} {'mean err':>10} {'max err':>10} {'bins used':>10} {'top bin':>8} "
          f"{'clipped':>8}  range")
    for name, d in report["dimensions"].items():
        print(f"{name:10} {d['mean_abs_error']:10.5f} {d['max_abs_error']:10.5f} "
              f"{d['bins_used']:10d} {100 * d['most_used_share']:7.1f}% "
              f"{100 * d['clipped_share']:7.2f}%  [{d['range'][0]:.3f}, {d['range'][1]:.3f}]")
    return 0

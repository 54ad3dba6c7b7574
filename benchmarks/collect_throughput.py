"""Collection throughput: N pick demonstrations with 2 workers into a temporary dataset.

Prints one JSON object. Target (issue 2): 1000 pick episodes in at most 10 minutes on
2 cores, i.e. >= 100 episodes per minute.

    python benchmarks/collect_throughput.py [--episodes 1000] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile

from vla.data.collect import collect
from vla.data.info import dataset_info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--task", default="sims/Pick-v0")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vla-collect-bench-") as tmp:
        out = os.path.join(tmp, "data")
        summary = collect(args.task, args.episodes, out, workers=args.workers, progress=False)
        info = dataset_info(out)
    print(json.dumps({
        "benchmark": "collect_throughput",
        "task": summary["env_id"],
        "episodes": summary["committed"],
        "workers": args.workers,
        "seconds": summary["seconds"],
        "episodes_per_min": summary["episodes_per_min"],
        "minutes_per_1000": round(1000 / summary["episodes_per_min"], 2),
        "failures": summary["failures"],
        "frames_per_episode": round(info["frames"] / max(info["episodes"], 1), 1),
        "bytes_per_episode": info["bytes_per_episode"],
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
    }))


if __name__ == "__main__":
    main()

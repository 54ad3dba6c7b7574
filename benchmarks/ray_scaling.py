"""Collection throughput on Ray against the local process pool, on this machine.

For each executor (local, ray) and worker count (1, 2): `vla collect`'s function
collects --episodes expert episodes of --task into a fresh directory; reported are the
episodes per minute, and the overhead per episode of Ray against the local pool with
as many workers (Ray's time minus the pool's, over the episodes). Ray runs on a local
cluster started once before its runs (its start-up, a few seconds, is reported apart).

    python benchmarks/ray_scaling.py --episodes 40 > results/ray_scaling.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--episodes", type=int, default=40)
    ap.add_argument("--task", default="pick")
    ap.add_argument("--workers", default="1,2", help="worker counts, comma-separated")
    args = ap.parse_args(argv)
    import ray

    from vla.data.collect import collect

    counts = [int(w) for w in args.workers.split(",")]
    work = tempfile.mkdtemp(prefix="ray_scaling-")
    runs = []

    def run(executor: str, workers: int) -> None:
        out = os.path.join(work, f"{executor}-{workers}")
        start = time.perf_counter()
        summary = collect(args.task, args.episodes, out, workers=workers, progress=False,
                          executor=executor)
        seconds = time.perf_counter() - start
        runs.append({"executor": executor, "workers": workers, "seconds": round(seconds, 2),
                     "episodes": summary["new"],
                     "episodes_per_min": round(summary["new"] / seconds * 60, 1)})

    for workers in counts:
        run("local", workers)
    start = time.perf_counter()
    ray.init(num_cpus=max(counts), _node_ip_address="127.0.0.1", include_dashboard=False,
             log_to_driver=False, configure_logging=False)
    ray_start = time.perf_counter() - start
    for workers in counts:
        run("ray", workers)
    ray.shutdown()
    local = {r["workers"]: r for r in runs if r["executor"] == "local"}
    overhead = {str(r["workers"]): round((r["seconds"] - local[r["workers"]]["seconds"])
                                         / args.episodes * 1000, 1)
                for r in runs if r["executor"] == "ray"}
    print(json.dumps({
        "benchmark": "ray_scaling", "task": args.task, "episodes": args.episodes,
        "runs": runs, "ray_overhead_ms_per_episode": overhead,
        "ray_cluster_start_s": round(ray_start, 2), "cpus": os.cpu_count(),
        "ray_version": ray.__version__,
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
    }, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

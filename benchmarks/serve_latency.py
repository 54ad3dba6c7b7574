"""Serving latency and throughput: a policy in-process against the same policy over ZeroMQ.

1. `inproc_p50_ms`: `policy.infer(obs)` called directly, on one 128x128 observation of
   the task (a real first frame of `--task`).
2. `zmq_p50_ms` / `zmq_p99_ms`: the same observation sent by one `PolicyClient` to a
   `PolicyServer` running in another process on loopback (raw image, msgpack both ways,
   decoding and validation on the server, batching logic included), request after
   request. `overhead_p50_ms` is the difference of the two medians: what serving costs.
3. `throughput_obs_per_s`: observations answered per second with 1, 4 and 16 clients
   sending at once (client threads spread over `--client-procs` processes), each
   client in lock-step request/reply, as a robot is.

The server runs in its own process so that clients and server do not share a GIL, as in
real use. Prints one JSON object to stdout. Example:

    .venv/bin/python benchmarks/serve_latency.py --policy builtin:hold
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time

import numpy as np

TARGET_OVERHEAD_P50_MS = 0.5
TARGET_SCALING_16 = 1.5


def task_setup(task: str, frame: str | None = None) -> tuple:
    """(contract, observation) of the task's first frame (seed 0), or read from `frame`.

    A frame file (msgpack, written by `--save-frame`) lets the benchmark run where the
    simulator is not installed, e.g. on a GPU machine that has torch but no PyBullet.
    """
    if frame:
        from frames import load_frame

        return load_frame(frame)
    import gymnasium as gym

    from bridges.contract import ActionContract
    from vla.envs import resolve_env_id

    # PyBullet prints `argv[0]=` to stdout on connect; keep stdout for the JSON line.
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        env = gym.make(resolve_env_id(task))
        obs, _ = env.reset(seed=0)
        contract = ActionContract.from_env(env)
        env.close()
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
    return contract, obs


def serve(spec: str, device: str, task: str, frame: str | None, server_kwargs: dict,
          conn) -> None:
    """Server process: serve until the parent says stop, then send back the stats."""
    from vla.serving.policies import load_policy
    from vla.serving.server import PolicyServer, ServerConfig

    contract, _ = task_setup(task, frame)
    policy = load_policy(spec, device=device, contract=contract)
    server = PolicyServer(policy, ServerConfig(bind="tcp://127.0.0.1:*", **server_kwargs),
                          policy_name=spec).start()
    conn.send(server.endpoint)
    conn.recv()
    server.stop()
    conn.send(server.stats.summary())


def timed_requests(endpoint: str, contract, obs: dict, n: int) -> list[float]:
    """Round-trip milliseconds of n sequential requests (after a warm-up)."""
    from vla.serving.client import PolicyClient

    with PolicyClient(endpoint, timeout_s=10.0) as client:
        client.hello(contract, robot="bench")
        for _ in range(min(200, n)):
            client.act(obs)
        times = []
        for _ in range(n):
            start = time.perf_counter()
            client.act(obs)
            times.append((time.perf_counter() - start) * 1e3)
    return times


def client_threads(endpoint: str, contract, obs: dict, n_threads: int, start_at: float,
                   stop_at: float) -> int:
    """Run n_threads lock-step clients between two wall-clock times; count the replies."""
    import threading

    from vla.serving.client import PolicyClient

    counts = [0] * n_threads

    def run(i: int) -> None:
        with PolicyClient(endpoint, timeout_s=10.0) as client:
            client.hello(contract, robot=f"bench-{i}")
            client.act(obs)  # connected and warm before the clock starts
            time.sleep(max(0.0, start_at - time.time()))
            while time.time() < stop_at:
                client.act(obs)
                counts[i] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts)


def _client_proc(endpoint, contract, obs, n_threads, start_at, stop_at, queue) -> None:
    queue.put(client_threads(endpoint, contract, obs, n_threads, start_at, stop_at))


def throughput(endpoint: str, contract, obs: dict, clients: int, procs: int,
               seconds: float) -> float:
    """Replies per second with `clients` concurrent clients over up to `procs` processes."""
    ctx = mp.get_context("spawn")
    procs = max(1, min(procs, clients))
    per_proc = [clients // procs + (i < clients % procs) for i in range(procs)]
    start_at = time.time() + 2.0 + 0.3 * procs  # time for spawned processes to connect
    stop_at = start_at + seconds
    queue = ctx.Queue()
    workers = [ctx.Process(target=_client_proc,
                           args=(endpoint, contract, obs, k, start_at, stop_at, queue))
               for k in per_proc]
    for w in workers:
        w.start()
    total = sum(queue.get(timeout=seconds + 60) for _ in workers)
    for w in workers:
        w.join()
    return total / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policy", default="builtin:hold", help="policy spec to serve")
    parser.add_argument("--task", default="sims/Pick-v0", help="task (contract, observation)")
    parser.add_argument("--frame", help="read the contract and observation from this file "
                        "(written by --save-frame) instead of starting the simulator")
    parser.add_argument("--save-frame", help="write the task's contract and first observation "
                        "to this file")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--requests", type=int, default=3000, help="sequential requests timed")
    parser.add_argument("--seconds", type=float, default=3.0, help="per throughput level")
    parser.add_argument("--clients", default="1,4,16", help="concurrent client counts")
    parser.add_argument("--client-procs", type=int, default=1,
                        help="processes the client threads are spread over (default 1)")
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--max-wait-ms", type=float, default=2.0)
    args = parser.parse_args()

    from vla.serving.policies import load_policy

    contract, obs = task_setup(args.task, args.frame)
    if args.save_frame:
        from frames import save_frame

        save_frame(args.save_frame, contract, obs)
    policy = load_policy(args.policy, device=args.device, contract=contract)
    for _ in range(200):
        policy.infer(obs)
    inproc = []
    for _ in range(args.requests):
        start = time.perf_counter()
        policy.infer(obs)
        inproc.append((time.perf_counter() - start) * 1e3)

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    server_kwargs = {"max_batch": args.max_batch, "max_wait_ms": args.max_wait_ms,
                     "log_every_s": 1e9}
    server = ctx.Process(target=serve, args=(args.policy, args.device, args.task,
                                             args.frame, server_kwargs, child))
    server.start()
    try:
        if not parent.poll(120):
            raise RuntimeError("the server process did not start within 120 s")
        endpoint = parent.recv()
        zmq_ms = timed_requests(endpoint, contract, obs, args.requests)
        rates = {str(n): round(throughput(endpoint, contract, obs, n, args.client_procs,
                                          args.seconds), 1)
                 for n in (int(x) for x in args.clients.split(","))}
        parent.send("stop")
        stats = parent.recv() if parent.poll(30) else {}
    finally:
        server.join(30)
        if server.is_alive():
            server.kill()

    inproc_p50 = float(np.percentile(inproc, 50))
    zmq_p50 = float(np.percentile(zmq_ms, 50))
    overhead = zmq_p50 - inproc_p50
    first, last = rates.get("1"), rates.get("16")
    scaling = last / first if first and last else None
    print(json.dumps({
        "policy": args.policy, "task": args.task,
        "image": f"{obs['images']['front'].shape} raw uint8",
        "inproc_p50_ms": round(inproc_p50, 4),
        "zmq_p50_ms": round(zmq_p50, 4),
        "zmq_p99_ms": round(float(np.percentile(zmq_ms, 99)), 4),
        "overhead_p50_ms": round(overhead, 4),
        "throughput_obs_per_s": rates,
        "scaling_16_over_1": round(scaling, 2) if scaling else None,
        "server_batches": {k: stats.get(k) for k in ("requests", "batches", "max_batch_seen",
                                                     "queue_p50_ms", "inference_p50_ms",
                                                     "total_p50_ms", "errors")},
        "targets": {"overhead_p50_ms": TARGET_OVERHEAD_P50_MS,
                    "scaling_16_over_1": TARGET_SCALING_16},
        "meets_targets": bool(overhead <= TARGET_OVERHEAD_P50_MS
                              and (scaling or 0) >= TARGET_SCALING_16),
        "settings": {"max_batch": args.max_batch, "max_wait_ms": args.max_wait_ms,
                     "client_procs": args.client_procs, "seconds": args.seconds,
                     "requests": args.requests, "cpus": os.cpu_count()},
    }))


if __name__ == "__main__":
    main()

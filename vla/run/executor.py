"""Where parallel episodes run: this machine's process pool, or a Ray cluster.

`vla collect`, `vla eval` and `vla dagger` hand out one episode per job. `pool()` gives
them a `concurrent.futures.Executor` either way, so their loops do not change:

- `local`: a `ProcessPoolExecutor` of spawned interpreters (no inherited simulator state).
- `ray`: `RayPool`, one Ray actor per worker. Each actor runs the pool's initializer
  once (the worker's env cache, a policy), as a local worker does. An actor that dies
  mid-episode (its process killed, its machine lost) is restarted, on another machine if
  need be, and the episode is run again there (`max_restarts`, `max_task_retries`): the
  result is the same, since an episode is a pure function of its job.

Ray moves arguments and results with pickle, inside the cluster: run a cluster only on a
network you trust, as Ray's own security guide says (Ray's token authentication is on by
default; a local cluster listens on this machine only).
"""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import Executor, Future

EXECUTORS = ("local", "ray")
RETRIES = 3  # restarts of a lost actor, and retries of the episode it was running


def pool(executor: str, workers: int, initializer=None, initargs: tuple = (),
         address: str | None = None) -> Executor:
    """A pool of `workers` for `executor` ("local" or "ray"; `address`: a Ray cluster's,
    default a local cluster started for this run)."""
    if executor == "local":
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        ctx = multiprocessing.get_context("spawn")
        return ProcessPoolExecutor(workers, mp_context=ctx, initializer=initializer,
                                   initargs=initargs)
    if executor == "ray":
        return RayPool(workers, initializer, initargs, address)
    raise ValueError(f"executor={executor!r}; expected one of {', '.join(EXECUTORS)}")


class _Worker:
    """One Ray actor: the pool's initializer once, then any function it is given."""

    def __init__(self, initializer, initargs) -> None:
        if initializer is not None:
            initializer(*initargs)

    def call(self, fn, args, kwargs):
        return fn(*args, **kwargs)

    def pid(self) -> int:
        import os

        return os.getpid()


class RayPool(Executor):
    """A `concurrent.futures.Executor` over Ray actors; at most one job per actor at a
    time, the rest queued here (so `workers` bounds the episodes in flight, as locally)."""

    def __init__(self, workers: int, initializer=None, initargs: tuple = (),
                 address: str | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise ValueError("executor='ray' needs Ray: pip install 'vla[ray]' (or "
                             "pip install ray) on this machine and every worker") from None
        if workers < 1:
            raise ValueError(f"workers={workers}; expected at least 1")
        self._ray, self._started = ray, False
        if not ray.is_initialized():
            # No address: a cluster of this machine's, started for this run, stopped after.
            local = {} if address else {"num_cpus": workers, "_node_ip_address": "127.0.0.1"}
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     configure_logging=False, **local)
            self._started = True
        actor = ray.remote(_Worker).options(num_cpus=1, max_restarts=RETRIES,
                                            max_task_retries=RETRIES)
        self.actors = [actor.remote(initializer, initargs) for _ in range(workers)]
        self._free = deque(self.actors)
        self._queue: deque = deque()
        self._running: dict = {}  # ObjectRef -> (actor, future)
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._collect, name="ray-pool", daemon=True)
        self._thread.start()

    def submit(self, fn, /, *args, **kwargs) -> Future:
        if self._closed.is_set():
            raise RuntimeError("cannot submit to a RayPool that is shut down")
        future: Future = Future()
        with self._lock:
            self._queue.append((fn, args, kwargs, future))
            self._dispatch()
        return future

    def _dispatch(self) -> None:
        """Hand queued jobs to free actors (the lock held)."""
        while self._free and self._queue and not self._closed.is_set():
            fn, args, kwargs, future = self._queue.popleft()
            if not future.set_running_or_notify_cancel():
                continue
            actor = self._free.popleft()
            self._running[actor.call.remote(fn, args, kwargs)] = (actor, future)

    def _collect(self) -> None:
        """Settle each finished job's future and give its actor the next job."""
        ray = self._ray
        while not self._closed.is_set() or self._running:
            with self._lock:
                refs = list(self._running)
            if not refs:
                self._closed.wait(0.02)
                continue
            done, _ = ray.wait(refs, num_returns=1, timeout=0.1)
            for ref in done:
                with self._lock:
                    actor, future = self._running.pop(ref)
                try:
                    future.set_result(ray.get(ref))
                except Exception as err:  # the job's own error, or Ray's after the retries
                    future.set_exception(err)
                with self._lock:
                    self._free.append(actor)
                    self._dispatch()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if cancel_futures or not wait:
            with self._lock:
                while self._queue:
                    self._queue.popleft()[3].cancel()
        if wait:
            while True:
                with self._lock:
                    if not self._running and not self._queue:
                        break
                self._closed.wait(0.02)
        self._closed.set()
        for actor in self.actors:
            self._ray.kill(actor)
        self._thread.join(timeout=5)  # killed actors' jobs settle with Ray's error
        if self._started:
            self._ray.shutdown()

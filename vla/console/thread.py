"""`ConsoleThread`: a console served from a background thread (its own event loop), for
notebooks, tests and benchmarks: `with ConsoleThread(policy) as c: open(c.url())`."""

from __future__ import annotations

import asyncio
import threading

from vla.console.server import ConsoleServer


class ConsoleThread:
    def __init__(self, policy, host: str = "127.0.0.1", port: int = 0, **kwargs) -> None:
        self.server = ConsoleServer(policy, host, port, **kwargs)
        self.loop = asyncio.new_event_loop()
        started = threading.Event()

        async def main() -> None:
            ready = asyncio.Event()
            task = asyncio.create_task(self.server.serve(ready))
            await ready.wait()
            started.set()
            await task

        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(main(),),
                                       daemon=True, name="vla-console")
        self.thread.start()
        if not started.wait(120):
            raise RuntimeError("the console did not start within 120 s")

    def url(self, path: str = "/") -> str:
        """The page (or `path`) on loopback, with the token when one is needed."""
        query = f"?token={self.server.token}" if self.server.token else ""
        return f"http://127.0.0.1:{self.server.port}{path}{query}"

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.server.stopped.set)
        self.thread.join(30)

    def __enter__(self) -> ConsoleThread:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

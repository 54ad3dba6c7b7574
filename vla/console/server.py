"""`ConsoleServer`: one web page to command the simulated robot in words and watch it.

HTTP and the WebSocket share one port (the `websockets` package; no web framework):

    GET /            the page (vla/console/page.html; no build step)
    GET /video.mp4   the last episode, as the policy saw it, with the attention drawn
    WS  /ws          browser -> server: JSON {"type": "command", "text", "scene"},
                     {"type": "reset", "task", "split", "seed"}, {"type": "stop"};
                     server -> browser: JSON events (welcome, driver, scene, understood,
                     refused, stopped, verdict, error) and binary frames: a 4-byte
                     big-endian length, that many bytes of JSON metadata, then a JPEG

Many browsers may watch; one drives at a time (the first to send a command or reset,
until it leaves); another's command gets an error naming the driver. Anyone may press
stop: safety before ownership. The driver leaving (page closed, socket lost) holds the
robot. Bound to loopback unless told otherwise; any other address needs the token given
in the URL printed at start, on every request.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import secrets
import struct
import tempfile
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from vla.console.driver import AUTO, ConsoleDriver

log = logging.getLogger("vla.console")
PAGE = Path(__file__).with_name("page.html")
MAX_MESSAGE = 4096  # bytes a browser may send in one message
MAX_TEXT = 300  # characters of a command


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ConsoleServer:
    def __init__(self, policy, host: str = "127.0.0.1", port: int = 8765,
                 fps: float = 10.0, seed: int = 0, task: str = "pick",
                 token: str | None = None, policy_name: str = "", driver=None) -> None:
        """`policy` runs here on the simulator (`ConsoleDriver`); or `driver` is given,
        e.g. a `RobotConsoleDriver` on a robot's control loop (then `policy` is unused)."""
        self.host, self.port, self.task = host, port, task
        # Off loopback every request must carry the token (a fresh one unless given).
        self.token = token if token is not None else (
            None if is_loopback(host) else secrets.token_urlsafe(16))
        self.policy_name = policy_name or type(driver or policy).__name__
        self.clients: dict = {}  # websocket -> viewer name
        self.driver = None  # the websocket that drives, or None
        self.busy = False  # an episode (or reset) is running
        self._names = 0
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="console-robot")
        self._loop: asyncio.AbstractEventLoop | None = None
        self.robot = driver or ConsoleDriver(policy, self._emit_threadsafe, fps=fps, seed=seed)
        self.robot.emit = self._emit_threadsafe
        self.stopped = asyncio.Event()

    # -- lifecycle --------------------------------------------------------------------
    @property
    def url(self) -> str:
        query = f"?token={self.token}" if self.token else ""
        return f"http://{self.host}:{self.port}/{query}"

    async def serve(self, ready: asyncio.Event | None = None) -> None:
        from websockets.asyncio.server import serve

        self._loop = asyncio.get_running_loop()
        await self._loop.run_in_executor(self._pool, self.robot.reset, self.task)
        async with serve(self._session, self.host, self.port, max_size=MAX_MESSAGE,
                         process_request=self._http) as server:
            self.port = server.sockets[0].getsockname()[1]  # port 0: the one chosen
            if ready is not None:
                ready.set()
            await self.stopped.wait()
        self.robot.stop()
        self._pool.shutdown(wait=True)

    # -- HTTP -------------------------------------------------------------------------
    async def _http(self, connection, request):
        url = urlsplit(request.path)
        if self.token is not None:
            given = parse_qs(url.query).get("token", [""])[0]
            if not hmac.compare_digest(given, self.token):
                return connection.respond(HTTPStatus.FORBIDDEN,
                                          "a token is required: open the URL vla console "
                                          "printed (it ends in ?token=...)\n")
        if url.path == "/ws":
            return None  # the WebSocket handshake goes on
        if url.path == "/":
            return _response(PAGE.read_bytes(), "text/html; charset=utf-8")
        if url.path == "/video.mp4":  # encoding takes a while: not on the event loop
            return await asyncio.to_thread(self._video, connection)
        return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")

    def _video(self, connection):
        import numpy as np

        from vla.data.video import write_video

        frames = list(self.robot.frames)
        if not frames:
            return connection.respond(HTTPStatus.NOT_FOUND, "no episode yet\n")
        with tempfile.TemporaryDirectory() as tmp:
            path = write_video(Path(tmp) / "episode.mp4", np.stack(frames), self.robot.fps
                               or 10.0, text=self.robot.last_instruction)
            body = path.read_bytes()
        return _response(body, "video/mp4",
                         ("Content-Disposition", 'attachment; filename="episode.mp4"'))

    # -- the WebSocket ----------------------------------------------------------------
    async def _session(self, ws) -> None:
        self._names += 1
        self.clients[ws] = f"viewer {self._names}"
        await ws.send(json.dumps({
            "type": "welcome", "you": self.clients[ws], "driver": self._driver_name(),
            "policy": self.policy_name, "tasks": _tasks(), "splits": _splits(),
            "threshold": self.robot.presence_threshold,
            "fps": self.robot.fps, "scene": self.robot.env_id, "seed": self.robot.seed}))
        try:
            async for raw in ws:
                await self._on_message(ws, raw)
        finally:
            del self.clients[ws]
            if ws is self.driver:  # the driver left: hold the robot, free the seat
                self.robot.stop()
                self.driver = None
                self._broadcast({"type": "driver", "driver": None})

    async def _on_message(self, ws, raw) -> None:
        try:
            msg = json.loads(raw) if isinstance(raw, str) else None
            if not isinstance(msg, dict):
                raise ValueError("expected a JSON object")
            kind = msg.get("type")
            if kind == "stop":
                self.robot.stop()
                return
            if kind not in ("command", "reset"):
                raise ValueError(f"type={kind!r}; expected command, reset or stop")
            job = self._job(kind, msg)
        except (ValueError, TypeError) as err:
            await ws.send(json.dumps({"type": "error", "reason": str(err)}))
            return
        if self.driver is not None and ws is not self.driver:
            await ws.send(json.dumps({"type": "error", "reason":
                                      f"{self._driver_name()} is driving; watch, or press "
                                      f"stop"}))
            return
        if self.busy:
            await ws.send(json.dumps({"type": "error",
                                      "reason": "the robot is busy: press stop first"}))
            return
        if self.driver is None:
            self.driver = ws
            self._broadcast({"type": "driver", "driver": self.clients[ws]})
        self.busy = True
        future = self._loop.run_in_executor(self._pool, job)
        future.add_done_callback(self._done)

    def _job(self, kind: str, msg: dict):
        """The driver call a message asks for, its fields checked first."""
        if kind == "command":
            text = msg.get("text")
            if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
                raise ValueError(f"text={str(text)[:40]!r}: expected what the robot should "
                                 f"do, 1 to {MAX_TEXT} characters")
            scene = msg.get("scene", AUTO)
            if scene != AUTO and scene not in _tasks():
                raise ValueError(f"scene={scene!r}; expected auto or one of {_tasks()}")
            return lambda: self.robot.command(text, scene)
        task, split, seed = msg.get("task", self.task), msg.get("split", "L1"), msg.get("seed")
        if task not in _tasks():
            raise ValueError(f"task={task!r}; expected one of {_tasks()}")
        if split not in _splits():
            raise ValueError(f"split={split!r}; expected one of {_splits()}")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)
                                 or not 0 <= seed < 2**31):
            raise ValueError(f"seed={seed!r}; expected a whole number >= 0")
        return lambda: self.robot.reset(task, split, seed)

    def _done(self, future) -> None:
        self.busy = False
        error = future.exception()
        if error is not None:  # a bug or a scene that cannot be made: say it, keep serving
            log.exception("console: the robot's job failed", exc_info=error)
            self._broadcast({"type": "error", "reason": f"{type(error).__name__}: {error}"})

    # -- events to every browser ------------------------------------------------------
    def _emit_threadsafe(self, event) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._broadcast, event)

    def _broadcast(self, event) -> None:
        from websockets.asyncio.server import broadcast

        if isinstance(event, tuple):  # ("frame", jpeg, meta)
            _, jpeg, meta = event
            header = json.dumps({"type": "frame", **meta}).encode()
            message = struct.pack(">I", len(header)) + header + jpeg
        else:
            message = json.dumps(event)
        broadcast(list(self.clients), message)

    def _driver_name(self) -> str | None:
        return self.clients.get(self.driver) if self.driver is not None else None


def _response(body: bytes, content_type: str, *headers: tuple[str, str]):
    from websockets.datastructures import Headers
    from websockets.http11 import Response

    return Response(HTTPStatus.OK.value, HTTPStatus.OK.phrase,
                    Headers([("Content-Type", content_type),
                             ("Content-Length", str(len(body))), *headers]), body)


def _tasks() -> list[str]:
    from sims.tasks import TASKS

    return list(TASKS)


def _splits() -> list[str]:
    from sims.splits import SPLITS

    return list(SPLITS)

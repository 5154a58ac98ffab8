"""How the tester's Twilio reaches the server: over the network in real time, or in process on a virtual clock.

Both wires carry exactly what Twilio sends (signed webhooks, a signed websocket upgrade, the stream's JSON
messages) into the same FastAPI app and its routes. They differ in the socket and the clock:

- `NetworkWire`: real HTTP and a real websocket to a server on a URL; frames are paced by the wall clock
  (`speed` 1 is real time, 10 is ten times faster), as a phone line would pace them.
- `VirtualWire`: the app is called in process through ASGI (no socket); after each frame the wire waits until
  the call has settled (recognition, the dialog, prompts sent, the decision stored), then the next frame
  follows at once. The media clock stays exact and nothing depends on how fast the machine is, so a replay
  takes well under a second of wall time per minute of call and comes out the same on every run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Protocol
from urllib.parse import urlsplit

import httpx
import websockets
from starlette.types import ASGIApp, Message, Scope
from websockets.asyncio.client import ClientConnection

from telephony.replay.errors import ReplayError
from voice.codec import FRAME_MS

Settle = Callable[[str], Awaitable[None]]
"""Wait until the server has done everything a call (by SID) started; only an in-process server can say."""


class StreamConnection(Protocol):
    """One media stream, as the tester's Twilio holds it."""

    @property
    def closed(self) -> bool:
        """The server closed the stream (or it dropped)."""

    async def send(self, text: str) -> None:
        """Send one message, as Twilio sends it."""

    def take(self) -> list[str]:
        """The server's messages that arrived since the last call, in order."""

    async def next_frame(self) -> None:
        """Wait until the next 20 ms frame is due."""

    async def drop(self) -> None:
        """The network drops the socket: no `stop`, the call itself goes on."""

    async def finish(self) -> None:
        """Wait until the server is done with the stream (its handler has returned)."""


class Wire(Protocol):
    """Webhooks and streams into one server."""

    base_url: str
    clock: str  # "virtual" or "wall"

    def http(self) -> httpx.AsyncClient: ...
    async def open_stream(self, url: str, headers: dict[str, str], call_sid: str) -> StreamConnection: ...


# --- over the network, paced by the wall clock ---------------------------------------------------------------


class NetworkStream:
    """A real websocket; a background task collects what the server sends."""

    def __init__(self, ws: ClientConnection, speed: float) -> None:
        self._ws = ws
        self._inbox: list[str] = []
        self._period = FRAME_MS / 1000 / speed
        self._next_at = time.perf_counter()
        self._receiver = asyncio.create_task(self._receive())

    async def _receive(self) -> None:
        with suppress(websockets.ConnectionClosed):
            async for message in self._ws:
                self._inbox.append(message if isinstance(message, str) else message.decode())

    @property
    def closed(self) -> bool:
        return self._receiver.done()

    async def send(self, text: str) -> None:
        with suppress(websockets.ConnectionClosed):
            await self._ws.send(text)

    def take(self) -> list[str]:
        taken, self._inbox = self._inbox, []
        return taken

    async def next_frame(self) -> None:
        self._next_at += self._period
        await asyncio.sleep(max(self._next_at - time.perf_counter(), 0))

    async def drop(self) -> None:
        await self._ws.close(code=1001)
        await self.finish()

    async def finish(self) -> None:
        await self._ws.close()
        with suppress(asyncio.CancelledError, websockets.ConnectionClosed):
            await self._receiver


class NetworkWire:
    """A server reached over HTTP and websockets at `base_url` (http://127.0.0.1:8000, say)."""

    clock = "wall"

    def __init__(self, base_url: str, speed: float = 1.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.speed = speed

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=httpx.Timeout(15.0))

    async def open_stream(self, url: str, headers: dict[str, str], call_sid: str) -> StreamConnection:
        try:
            ws = await websockets.connect(url, additional_headers=headers, max_size=2**22)
        except websockets.InvalidStatus as exc:
            raise ReplayError(
                f"the media stream upgrade to {url} was refused: HTTP {exc.response.status_code}"
            ) from exc
        return NetworkStream(ws, self.speed)


# --- in process, on a virtual clock ------------------------------------------------------------------------


class AsgiStream:
    """A websocket into an ASGI app in this process: the app's own route runs; no socket, no wall clock."""

    def __init__(self, app: ASGIApp, scope: Scope, settle: Callable[[], Awaitable[None]]) -> None:
        self._app = app
        self._scope = scope
        self._settle = settle
        self._inbound: asyncio.Queue[Message] = asyncio.Queue()
        self._waiting = asyncio.Event()  # the route is back, asking for the next message
        self._inbox: list[str] = []
        self._accepted = asyncio.Event()
        self._refused: int | None = None
        self._server_closed = False
        self._task: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        self._task = asyncio.create_task(self._serve())
        await self._inbound.put({"type": "websocket.connect"})
        accepted = asyncio.create_task(self._accepted.wait())
        await asyncio.wait({accepted, self._task}, return_when=asyncio.FIRST_COMPLETED)
        accepted.cancel()
        if self._refused is not None or not self._accepted.is_set():
            await self.finish()
            raise ReplayError(f"the media stream upgrade was refused (close code {self._refused})")

    async def _serve(self) -> None:
        await self._app(self._scope, self._receive, self._send)

    async def _receive(self) -> Message:
        if self._inbound.empty():
            self._waiting.set()
        return await self._inbound.get()

    async def _send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "websocket.accept":
            self._accepted.set()
        elif kind == "websocket.send":
            self._inbox.append(message.get("text") or (message.get("bytes") or b"").decode())
        elif kind == "websocket.close":
            if not self._accepted.is_set():
                self._refused = int(message.get("code", 1000))
            self._server_closed = True

    @property
    def closed(self) -> bool:
        return self._server_closed or (self._task is not None and self._task.done())

    async def send(self, text: str) -> None:
        if self.closed:
            return
        self._waiting.clear()
        await self._inbound.put({"type": "websocket.receive", "text": text})
        await self._until_handled()

    async def _until_handled(self) -> None:
        """The route has taken the message and come back for the next one (or ended); then the call settles."""
        if self._task is None:
            raise RuntimeError("the wire is not connected: open it before sending")
        waiting = asyncio.create_task(self._waiting.wait())
        await asyncio.wait({waiting, self._task}, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        await self._settle()

    def take(self) -> list[str]:
        taken, self._inbox = self._inbox, []
        return taken

    async def next_frame(self) -> None:
        await self._settle()

    async def drop(self) -> None:
        await self._inbound.put({"type": "websocket.disconnect", "code": 1001})
        await self.finish()

    async def finish(self) -> None:
        if self._task is None:
            return
        if not self._task.done():
            await self._inbound.put({"type": "websocket.disconnect", "code": 1000})
        with suppress(asyncio.CancelledError):
            await self._task


class VirtualWire:
    """A server app in this process, called through ASGI: webhooks and the stream on a virtual clock."""

    clock = "virtual"

    def __init__(self, app: ASGIApp, settle: Settle, host: str = "testserver") -> None:
        self.app = app
        self.base_url = f"http://{host}"
        self._host = host
        self._settle = settle

    def http(self) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app)
        return httpx.AsyncClient(transport=transport, base_url=self.base_url, timeout=httpx.Timeout(15.0))

    async def open_stream(self, url: str, headers: dict[str, str], call_sid: str) -> StreamConnection:
        parts = urlsplit(url)
        scope: Scope = {
            "type": "websocket",
            "asgi": {"version": "3.0"},
            "scheme": parts.scheme or "ws",
            "server": (parts.hostname or self._host, parts.port or 80),
            "client": ("127.0.0.1", 50000),
            "root_path": "",
            "path": parts.path,
            "raw_path": parts.path.encode(),
            "query_string": parts.query.encode(),
            "headers": [(b"host", (parts.netloc or self._host).encode())]
            + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
            "subprotocols": [],
            "state": {},
        }
        stream = AsgiStream(self.app, scope, lambda: self._settle(call_sid))
        await stream.connect()
        return stream

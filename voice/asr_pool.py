"""Recognition in worker processes: an engine fault ends the recognition of the calls it served, not the server.

vosk ends its whole process on some misuse (a grammar changed mid-utterance aborts with a Kaldi fatal
error that no `except` can catch). So the server never loads vosk itself: a recognition host process loads
the model once and forks workers that share it (`voice.asr_host`); each call is served by one worker over a
socket. When a worker dies, each call it served gets `RecognizerFailed` (the session hands the caller on
with what they already said), the other workers' calls go on, and a replacement worker is forked.

Everything here runs on the server's event loop; the workers do the decoding, one request at a time each,
so `workers` is how many cores recognition may use.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import pickle
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voice.asr_host import MAX_FRAME, recv_packet, send_packet
from voice.errors import ModelNotFound
from voice.recognition import CallRecognition, Recognised, RecognitionOp, RecognizerFailed
from voice.stt import VOSK_SAMPLE_RATE

log = logging.getLogger(__name__)

_HEADER_BYTES = 4
START_TIMEOUT_S = 120.0  # loading a large model takes seconds; a host that says nothing for this long is stuck


class WorkerLink:
    """The server's end of one worker: requests out, answers in, matched by id."""

    def __init__(self, pid: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.pid = pid
        self.calls: set[int] = set()
        self._reader = reader
        self._writer = writer
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self.alive = True
        self.gone = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._read(), name=f"asr-worker-{pid}")

    async def request(self, kind: str, channel: int, *payload: object) -> Any:
        """Send a request and wait for its answer; RecognizerFailed when the worker dies or refuses it."""
        if not self.alive:
            raise RecognizerFailed(f"recognition worker {self.pid} is gone")
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        data = pickle.dumps((request_id, kind, channel, *payload), protocol=pickle.HIGHEST_PROTOCOL)
        try:
            self._writer.write(len(data).to_bytes(_HEADER_BYTES, "big") + data)
            await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            self._pending.pop(request_id, None)
            self._died(f"cannot write to it ({exc})")
            raise RecognizerFailed(f"recognition worker {self.pid} is gone") from exc
        return await future

    async def _read(self) -> None:
        try:
            while True:
                header = await self._reader.readexactly(_HEADER_BYTES)
                size = int.from_bytes(header, "big")
                if size > MAX_FRAME:
                    raise OSError(f"a frame of {size} bytes")
                request_id, status, payload = pickle.loads(await self._reader.readexactly(size))
                future = self._pending.pop(request_id, None)
                if future is None or future.done():
                    continue
                if status == "ok":
                    future.set_result(payload)
                else:
                    future.set_exception(RecognizerFailed(f"recognition worker {self.pid}: {payload}"))
        except (asyncio.IncompleteReadError, ConnectionError, OSError) as exc:
            self._died(f"its connection closed ({type(exc).__name__})")

    def _died(self, why: str) -> None:
        if not self.alive:
            return
        self.alive = False
        log.error("recognition worker %s died: %s; %d calls handed on", self.pid, why, len(self.calls))
        for future in self._pending.values():
            if not future.done():
                future.set_exception(RecognizerFailed(f"recognition worker {self.pid} died"))
        self._pending.clear()
        if not self.gone.done():
            self.gone.set_result(None)
        self._writer.close()

    async def aclose(self) -> None:
        self.alive = False
        self._writer.close()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
            await self._task
            await self._writer.wait_closed()


class RemoteCall:
    """One call's recognition on a worker."""

    def __init__(self, link: WorkerLink, channel: int, on_close: Callable[[], None] = lambda: None) -> None:
        self._link = link
        self._channel = channel
        self._on_close = on_close

    @property
    def worker_pid(self) -> int:
        return self._link.pid

    async def run(self, ops: Sequence[RecognitionOp]) -> list[Recognised]:
        results: list[Recognised] = await self._link.request("run", self._channel, list(ops))
        return results

    async def close(self) -> None:
        self._link.calls.discard(self._channel)
        self._on_close()
        if self._link.alive:
            with contextlib.suppress(RecognizerFailed):
                await self._link.request("close", self._channel)


@dataclass(frozen=True, slots=True)
class WorkerStats:
    """One recognition worker, for operators: its calls, and its vosk decoders (made, and warm ones idle)."""

    pid: int
    calls: int
    decoders_made: int
    warm_idle: int


class PooledRecognition:
    """vosk in `workers` processes forked from one host that loaded the model once (and warmed `prewarm`
    decoders on speech, so every worker starts with that many warm ones: see `voice.stt.VoskEngines`)."""

    name = "vosk"

    def __init__(
        self,
        model_path: Path,
        workers: int | None = None,
        sample_rate: int = VOSK_SAMPLE_RATE,
        *,
        prewarm: int = 0,
        warmup_audio: Path | None = None,
    ) -> None:
        self.model_path = model_path.expanduser().resolve()
        self.size = max(1, workers or len(os.sched_getaffinity(0)) or 1)
        self.sample_rate = sample_rate
        self.prewarm = prewarm
        self.warmup_audio = warmup_audio
        self.links: list[WorkerLink] = []
        self._host: asyncio.subprocess.Process | None = None
        self._control: socket.socket | None = None
        self._control_lock = asyncio.Lock()
        self._channels = itertools.count(1)
        self._calls: dict[str, RemoteCall] = {}
        self._watchers: set[asyncio.Task[None]] = set()
        self._started = False
        self._closing = False

    async def start(self) -> None:
        """Start the host, wait for the model, and fork the workers; ModelNotFound when vosk cannot load it."""
        if self._started:
            return
        self._started = True
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        command = [
            sys.executable, "-m", "voice.asr_host",
            "--model", str(self.model_path), "--rate", str(self.sample_rate), "--control-fd", str(theirs.fileno()),
            "--prewarm", str(self.prewarm),
            *(["--warmup-audio", str(self.warmup_audio)] if self.warmup_audio is not None else []),
        ]  # fmt: skip
        self._host = await asyncio.create_subprocess_exec(*command, pass_fds=[theirs.fileno()])
        theirs.close()
        self._control = ours
        message, _ = await asyncio.wait_for(asyncio.to_thread(recv_packet, ours), START_TIMEOUT_S)
        if message is None or message[0] != "ready":
            detail = message[1] if message is not None else "the recognition host exited while loading the model"
            await self.aclose()
            raise ModelNotFound(str(detail))
        log.info("recognition host %s loaded %s; forking %d workers", message[1], self.model_path, self.size)
        for _ in range(self.size):
            await self._spawn()

    async def _spawn(self) -> None:
        control = self._control
        if control is None or self._closing:
            return
        async with self._control_lock:
            await asyncio.to_thread(send_packet, control, ("spawn",))
            message, fds = await asyncio.wait_for(asyncio.to_thread(recv_packet, control), START_TIMEOUT_S)
        if message is None or message[0] != "worker" or not fds:
            raise RecognizerFailed("the recognition host did not fork a worker")
        sock = socket.socket(fileno=fds[0])
        reader, writer = await asyncio.open_unix_connection(sock=sock)
        link = WorkerLink(int(message[1]), reader, writer)
        self.links.append(link)
        watcher = asyncio.create_task(self._replace_when_gone(link))
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)

    async def _replace_when_gone(self, link: WorkerLink) -> None:
        await link.gone
        if link in self.links:
            self.links.remove(link)
        if not self._closing:
            try:
                await self._spawn()
            except (RecognizerFailed, OSError, TimeoutError) as exc:
                log.error("could not replace recognition worker %s: %s", link.pid, exc)

    async def open(self, call_sid: str) -> CallRecognition:
        if not self._started:
            await self.start()
        live = [link for link in self.links if link.alive]
        if not live:
            raise RecognizerFailed(f"no recognition worker is running for call {call_sid}")
        link = min(live, key=lambda candidate: len(candidate.calls))
        channel = next(self._channels)
        link.calls.add(channel)
        try:
            await link.request("open", channel)
        except RecognizerFailed:
            link.calls.discard(channel)
            raise
        call = RemoteCall(link, channel, lambda: self._forget(call_sid))
        self._calls[call_sid] = call
        return call

    def _forget(self, call_sid: str) -> None:
        self._calls.pop(call_sid, None)

    async def stats(self) -> list[WorkerStats]:
        """Each live worker's calls and decoders (a worker that dies while asked is left out)."""
        out: list[WorkerStats] = []
        for link in [link for link in self.links if link.alive]:
            try:
                made, idle = await link.request("stats", 0)
            except RecognizerFailed:
                continue
            out.append(WorkerStats(link.pid, len(link.calls), int(made), int(idle)))
        return out

    def worker_of(self, call_sid: str) -> int | None:
        """The process id of the worker recognising a call (for operators, and for tests that kill it)."""
        call = self._calls.get(call_sid)
        return call.worker_pid if call is not None else None

    async def aclose(self) -> None:
        self._closing = True
        for watcher in list(self._watchers):
            watcher.cancel()
        for link in self.links:
            await link.aclose()
        self.links.clear()
        if self._control is not None:
            self._control.close()
            self._control = None
        if self._host is not None:
            host = self._host
            self._host = None
            try:
                await asyncio.wait_for(host.wait(), 5.0)
            except TimeoutError:
                host.kill()
                await host.wait()

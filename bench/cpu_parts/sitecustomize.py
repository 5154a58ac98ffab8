"""Where a `handoff serve` under `bench/load.py --cpu-parts` spends its CPU: thread CPU time per part of the server.

Python imports this file at start-up when its folder is on PYTHONPATH (`bench/load.py --cpu-parts` puts it there
for the server only). It does nothing unless `BENCH_CPU_PARTS_DIR` names a folder. Then, once the server's
modules are loaded, it wraps the functions in `PARTS` so that each call adds the thread CPU time it took
(`time.thread_time_ns`: this thread's CPU, so a coroutine's time waiting is not counted), and writes `armed` in
the folder. Each SIGUSR1 writes the totals so far to `snapshot-<n>.json`, n counting from 1: the benchmark takes
one at the start of its CPU window and one at the end, and reports the difference.

Coroutines are timed step by step: each time the event loop runs one of them, up to its next `await` that
waits. A part called inside another (a dialog turn inside a socket read) is counted in both: `PARTS` says
which parts are disjoint (`top`), so that the server's CPU less their sum is what no part covers.

The timing itself costs CPU (two clock reads a call, about 1 µs), so a run with parts reports more CPU than one
without: compare parts within a run, never its µs per frame with an uninstrumented run's.
"""

from __future__ import annotations

import functools
import importlib
import itertools
import json
import os
import signal
import sys
import threading
import time
import types
from collections.abc import Callable, Coroutine, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OUT_ENV = "BENCH_CPU_PARTS_DIR"


@dataclass(frozen=True)
class Part:
    """One function to time: its module, its qualified name, whether it is a coroutine function, and whether it
    is one of the disjoint parts (`top`) or a part inside one of them."""

    name: str
    module: str
    qualname: str
    coroutine: bool = False
    top: bool = False


PARTS = (
    Part("websocket reads (the media short path, and handshakes)", "telephony.server.frames",
         "MediaWebSocketProtocol.data_received", top=True),
    Part("media stream coroutines (start, events left by the short path, the end)",
         "uvicorn.protocols.websockets.websockets_sansio_impl", "WebSocketsSansIOProtocol.run_asgi",
         coroutine=True, top=True),
    Part("HTTP requests (webhooks and API)", "uvicorn.protocols.http.httptools_impl",
         "RequestResponseCycle.run_asgi", coroutine=True, top=True),
    Part("call action tasks (prompts, tools, moving the call)", "telephony.calls.session",
         "CallSession._run_actions", coroutine=True, top=True),
    Part("recognition results to the dialog", "telephony.calls.hearing", "RecognitionWorker._report_now", top=True),
    Part("recognition tasks", "telephony.calls.hearing", "RecognitionWorker._run", coroutine=True, top=True),
    Part("desk: the record kept (its start, each turn, the decision)", "telephony.desk.desk", "HandoffDesk.keep",
         top=True),
    Part("desk: a decision's save and package", "telephony.desk.desk", "HandoffDesk.decided", coroutine=True,
         top=True),
    Part("sweeps of quiet sockets", "telephony.server.frames", "_QuietSweeper._sweep", top=True),
    Part("store: call record writes (worker threads)", "telephony.store.repository", "Store.save_call", top=True),
    Part("store: outbox writer task", "telephony.desk.outbox", "Outbox._drain", coroutine=True, top=True),
    Part("inside: media messages heard", "telephony.calls.session", "CallSession.receive_now"),
    Part("inside: dialog events", "dialogs.manager", "DialogManager.handle"),
    Part("inside: prompts sent", "telephony.calls.session", "CallSession._say", coroutine=True),
    Part("inside: record snapshots spooled and queued", "telephony.desk.outbox", "Outbox._queue_record"),
)  # fmt: skip
FIRST_OF_READ = "inside: media messages heard, the first of each read"


class _Totals:
    """CPU nanoseconds and calls per part (updated from any thread; read whole by the signal handler)."""

    def __init__(self) -> None:
        self.ns: dict[str, int] = {}
        self.calls: dict[str, int] = {}
        self.messages_this_read = 0  # media messages heard since the socket read that is running began

    def add(self, name: str, ns: int, calls: int = 1) -> None:
        self.ns[name] = self.ns.get(name, 0) + ns
        self.calls[name] = self.calls.get(name, 0) + calls


TOTALS = _Totals()


def _timed_function(part: Part, function: Callable[..., Any]) -> Callable[..., Any]:
    clock = time.thread_time_ns
    depth = threading.local()
    reads = part.qualname.endswith("data_received")
    heard = part.qualname.endswith("receive_now")

    @functools.wraps(function)
    def timed(*args: Any, **kwargs: Any) -> Any:
        if reads:
            TOTALS.messages_this_read = 0
        if getattr(depth, "n", 0):  # a recursive call is in its caller's time already
            return function(*args, **kwargs)
        depth.n = 1
        started = clock()
        try:
            return function(*args, **kwargs)
        finally:
            spent = clock() - started
            depth.n = 0
            TOTALS.add(part.name, spent)
            if heard:
                if TOTALS.messages_this_read == 0:
                    TOTALS.add(FIRST_OF_READ, spent)
                TOTALS.messages_this_read += 1

    return timed


@types.coroutine
def _timed_steps(name: str, coroutine: Coroutine[Any, Any, Any]) -> Generator[Any, Any, Any]:
    """Run `coroutine`, adding the thread CPU of each of its steps to `name` (and one call, for the first)."""
    clock = time.thread_time_ns
    value: Any = None
    error: BaseException | None = None
    first = 1
    while True:
        started = clock()
        try:
            step = coroutine.send(value) if error is None else coroutine.throw(error)
        except StopIteration as stop:
            TOTALS.add(name, clock() - started, first)
            return stop.value
        except BaseException:
            TOTALS.add(name, clock() - started, first)
            raise
        TOTALS.add(name, clock() - started, first)
        first = 0
        try:
            value, error = (yield step), None
        except BaseException as thrown:  # cancellation, or the loop closing the coroutine: passed on to it
            value, error = None, thrown


def _timed_coroutine(part: Part, function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    async def timed(*args: Any, **kwargs: Any) -> Any:
        return await _timed_steps(part.name, function(*args, **kwargs))

    return timed


def _install(part: Part) -> None:
    owner: Any = sys.modules[part.module]
    *path, attribute = part.qualname.split(".")
    for name in path:
        owner = getattr(owner, name)
    function = getattr(owner, attribute)
    wrap = _timed_coroutine if part.coroutine else _timed_function
    setattr(owner, attribute, wrap(part, function))


def _arm(folder: Path) -> None:
    """Wrap every part once its module is loaded (the server imports them at start-up), then say so."""
    deadline = time.monotonic() + 600
    said = ""
    while missing := ", ".join(sorted({part.module for part in PARTS} - set(sys.modules))):
        if time.monotonic() > deadline:
            return
        if missing != said:  # what the benchmark names if it waits in vain
            said = missing
            (folder / "waiting").write_text(missing)
        time.sleep(0.02)
    for module in {part.module for part in PARTS}:
        importlib.import_module(module)  # wait for a module still being imported by the main thread
    try:
        for part in PARTS:
            _install(part)
    except AttributeError as exc:  # a part renamed: the benchmark sees no `armed` and says so
        (folder / "error").write_text(f"cannot time a part: {exc}")
        return
    (folder / "armed").write_text("")


def _start(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    snapshots = itertools.count(1)

    def snapshot(signum: int, frame: object) -> None:
        path = folder / f"snapshot-{next(snapshots)}.json"
        parts = {name: {"ns": ns, "calls": TOTALS.calls.get(name, 0)} for name, ns in list(TOTALS.ns.items())}
        top = [part.name for part in PARTS if part.top]
        path.with_suffix(".tmp").write_text(json.dumps({"parts": parts, "top": top}))
        path.with_suffix(".tmp").rename(path)

    signal.signal(signal.SIGUSR1, snapshot)
    threading.Thread(target=_arm, args=(folder,), name="bench-cpu-parts", daemon=True).start()


if os.environ.get(OUT_ENV):
    _start(Path(os.environ[OUT_ENV]))

"""What one inbound websocket message costs the server before any call work: the floor under `bench/load.py`.

A bare app on loopback, in its own process, takes 100 connections that each send a Twilio-sized media message
every 20 ms of wall time (as `bench/load.py`'s callers do), and does nothing with them. The server's CPU over the
steady part, divided by the messages, is the cost of the websocket layer alone. Four layers:

* `uvicorn`: uvicorn's websockets-sansio protocol, read through Starlette's `receive()`;
* `short`: the server's own protocol (`telephony/server/frames.py`), still read through `receive()`;
* `direct`: the same protocol, the app reading each message from the socket's callback;
* `batched`: `direct` with the server's default `media_read_batch`, as `handoff serve` reads media: the floor
  under `bench/load.py`'s figure.

Each layer's messages per socket read are reported too (the server counts its reads), so a batching that
stopped working shows as one message a read.

Run it from the repository root::

    python bench/ws_floor.py
    taskset -c 1 python bench/ws_floor.py --server-cpus 0 --seconds 20
    python bench/ws_floor.py --layers direct,batched --warmup 5 --json /tmp/ws_floor.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from fastapi import FastAPI, WebSocket

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

LAYERS = ("uvicorn", "short", "direct", "batched")
MESSAGE = (
    '{"event":"media","sequenceNumber":"12","streamSid":"MZ0123","media":{"track":"inbound","chunk":"11",'
    '"timestamp":"220","payload":"' + "A" * 216 + '"}}'
)


@dataclass(frozen=True)
class Floor:
    """One layer's figures: server CPU a message, and messages a socket read."""

    us_per_message: float
    messages_per_read: float


def serve(layer: str, port: int) -> None:
    """The server process: a bare app under `layer`; "cpu" answers with its CPU seconds, messages and reads."""
    import uvicorn
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

    from telephony.server.frames import DIRECT_EXTENSION, uvicorn_config
    from telephony.server.settings import Settings

    app = FastAPI()
    count = [0]
    reads = [0]

    def take(text: str) -> str | None:
        if text == "cpu":
            return text  # for the loop below, which answers it
        count[0] += 1
        return None

    @app.websocket("/ws")
    async def endpoint(ws: WebSocket) -> None:
        await ws.accept()
        if layer in ("direct", "batched"):
            ws.scope["extensions"][DIRECT_EXTENSION]["register"](take)
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") == "cpu":
                await ws.send_text(f"{time.process_time()} {count[0]} {reads[0]}")
            else:
                count[0] += 1

    options = {"host": "127.0.0.1", "port": port, "log_level": "warning"}
    if layer == "uvicorn":
        config = uvicorn.Config(app, ws=WebSocketsSansIOProtocol, ws_per_message_deflate=False, **options)
    else:
        batch = Settings.model_fields["media_read_batch"].default if layer == "batched" else 1
        config = uvicorn_config(app, read_batch=batch, **options)
    layer_protocol = config.ws

    class Counted(layer_protocol):  # type: ignore[misc, valid-type]
        def data_received(self, data: bytes) -> None:
            reads[0] += 1
            super().data_received(data)

    config.ws = Counted
    uvicorn.Server(config).run()


async def measure(port: int, calls: int, seconds: float, warmup_s: float = 2.0) -> Floor:
    """Server CPU per message and messages per read, over `seconds` of steady sending by `calls` connections."""
    import websockets

    url = f"ws://127.0.0.1:{port}/ws"
    control = await websockets.connect(url, compression=None)
    stop = asyncio.Event()

    async def caller(index: int) -> None:
        async with websockets.connect(url, compression=None, ping_interval=None) as ws:
            await asyncio.sleep(index * 0.02 / calls)  # spread over the 20 ms, as calls arrive
            due = time.perf_counter()
            while not stop.is_set():
                await ws.send(MESSAGE)
                due += 0.02
                await asyncio.sleep(max(0.0, due - time.perf_counter()))

    tasks = [asyncio.create_task(caller(i)) for i in range(calls)]
    await asyncio.sleep(warmup_s)  # all connected and sending, their reads settled
    await control.send("cpu")
    cpu_before, count_before, reads_before = map(float, (await control.recv()).split())
    await asyncio.sleep(seconds)
    await control.send("cpu")
    cpu_after, count_after, reads_after = map(float, (await control.recv()).split())
    stop.set()
    await asyncio.gather(*tasks)
    await control.close()
    messages = max(1.0, count_after - count_before)
    reads = max(1.0, reads_after - reads_before - 1)  # the control connection's second "cpu" was a read
    return Floor(round((cpu_after - cpu_before) / messages * 1e6, 2), round(messages / reads, 2))


def wait_until_listening(port: int, server: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    """Return once the server takes connections; raise if it exits or never does."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with code {server.returncode}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"the server took no connections on port {port} in {timeout_s:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of sending before the CPU is measured")
    parser.add_argument("--layers", default=",".join(LAYERS), help=f"comma-separated, of {', '.join(LAYERS)}")
    parser.add_argument("--server-cpus", default=None, help="taskset CPU list for the server")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here too")
    parser.add_argument("--serve", choices=LAYERS, help=argparse.SUPPRESS)  # the server process itself
    parser.add_argument("--port", type=int, default=8790)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.port)
        return 0
    layers = [name.strip() for name in args.layers.split(",") if name.strip()]
    unknown = sorted(set(layers) - set(LAYERS))
    if unknown:
        parser.error(f"unknown layers: {', '.join(unknown)} (known: {', '.join(LAYERS)})")
    floors: dict[str, Floor] = {}
    for layer in layers:
        command = [sys.executable, __file__, "--serve", layer, "--port", str(args.port)]
        if args.server_cpus:
            command = ["taskset", "-c", args.server_cpus, *command]
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        server = subprocess.Popen(command, env=env)
        try:
            wait_until_listening(args.port, server)
            floor = floors[layer] = asyncio.run(measure(args.port, args.calls, args.seconds, args.warmup))
            print(
                f"{layer:8} {floor.us_per_message:6.1f} µs of server CPU a message, "
                f"{floor.messages_per_read:5.2f} messages a read ({args.calls} connections, 50 a second)"
            )
        finally:
            server.terminate()
            server.wait(timeout=10)
    if args.json is not None:
        figures = {"calls": args.calls, "seconds": args.seconds, "layers": {k: asdict(v) for k, v in floors.items()}}
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

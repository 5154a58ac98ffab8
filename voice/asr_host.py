"""The recognition host: a process that loads the vosk model once and forks recognition workers on demand.

Run by `voice.asr_pool.PooledRecognition` as `python -m voice.asr_host --model DIR --rate N --control-fd FD`.
The host is single-threaded, so forking it is safe at any time, and every worker it forks shares the loaded
model's pages with it (copy-on-write: the model's memory is not multiplied by the number of workers).

The host and the server speak over the control socket (a SOCK_SEQPACKET pair: one pickled message a packet):

- host → server `("ready", pid)` once the model is loaded, or `("failed", message)`;
- server → host `("spawn",)`: the host forks a worker and sends back `("worker", pid)` with the worker's end
  of a fresh socket pair attached (SCM_RIGHTS), which the server then talks to directly.

A worker serves the calls the server assigns to it, one request at a time, over its own socket:

- `(request_id, "open", channel)`, `(request_id, "run", channel, ops)`, `(request_id, "close", channel)`,
  `(request_id, "stats", 0)` (decoders made, and warm ones idle);
- answers `(request_id, "ok", payload)` or `(request_id, "error", message)`.

A worker whose engine aborts (vosk ends the process on some misuse) takes down only the calls it served: the
server sees its socket close, hands those calls on, and asks the host for a replacement. Everyone exits when
the server goes away (their sockets close).
"""

from __future__ import annotations

import argparse
import os
import pickle
import signal
import socket
import struct
import sys
from pathlib import Path
from typing import Any

_HEADER = struct.Struct(">I")
MAX_FRAME = 64 << 20


def send_frame(sock: socket.socket, message: object) -> None:
    """One length-prefixed pickled message (both ends are this program: pickle is safe here)."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    sock.sendall(_HEADER.pack(len(data)) + data)


def recv_frame(sock: socket.socket) -> Any:
    """The next message, or None when the other end has gone."""
    header = _recv_exactly(sock, _HEADER.size)
    if header is None:
        return None
    (size,) = _HEADER.unpack(header)
    if size > MAX_FRAME:
        raise OSError(f"a recognition frame of {size} bytes is not ours")
    data = _recv_exactly(sock, size)
    return None if data is None else pickle.loads(data)


def send_packet(sock: socket.socket, message: object, fds: list[int] | None = None) -> None:
    """One control message, with file descriptors attached when given."""
    socket.send_fds(sock, [pickle.dumps(message)], fds or [])


def recv_packet(sock: socket.socket) -> tuple[Any, list[int]]:
    """The next control message and the descriptors that came with it; (None, []) when the other end has gone."""
    data, fds, _flags, _address = socket.recv_fds(sock, 65536, 4)
    if not data:
        return None, fds
    return pickle.loads(data), fds


def _recv_exactly(sock: socket.socket, size: int) -> bytes | None:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            return None
        chunks += chunk
    return bytes(chunks)


def serve_worker(sock: socket.socket, factory: Any) -> None:
    """A worker's whole life: answer requests until the server goes away."""
    from voice.recognition import UtteranceRunner

    runners: dict[int, UtteranceRunner] = {}
    while True:
        request = recv_frame(sock)
        if request is None:
            return
        request_id, kind, channel = request[0], request[1], request[2]
        try:
            if kind == "open":
                runners[channel] = UtteranceRunner(factory.new_recognizer(f"channel-{channel}"))
                payload: object = None
            elif kind == "run":
                payload = runners[channel].apply(request[3])
            elif kind == "stats":
                engines = factory.engines
                payload = (engines.made, engines.idle_free_form)
            elif kind == "close":
                runner = runners.pop(channel, None)
                if runner is not None:
                    runner.recognizer.close()
                payload = None
            else:
                raise ValueError(f"unknown request {kind!r}")
        except Exception as exc:  # reported to that call; the worker and its other calls go on
            send_frame(sock, (request_id, "error", f"{type(exc).__name__}: {exc}"))
            continue
        send_frame(sock, (request_id, "ok", payload))


def serve_host(control: socket.socket, model: Path, rate: int, prewarm: int = 0, warmup: Path | None = None) -> int:
    """The host's whole life: load the model, warm `prewarm` decoders, then fork a worker each time the server
    asks (each worker starts with copies of the warm decoders)."""
    from voice.errors import ModelNotFound, VoiceError
    from voice.stt import VoskRecognizerFactory

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # workers that end are reaped by the kernel: no zombies
    try:
        factory = VoskRecognizerFactory(model, sample_rate=rate)
        if prewarm:
            factory.warm(prewarm, warmup_speech(warmup))
    except (ModelNotFound, VoiceError) as exc:
        send_packet(control, ("failed", str(exc)))
        return 1
    send_packet(control, ("ready", os.getpid()))
    while True:
        request, _fds = recv_packet(control)
        if request is None:
            return 0
        if request[0] != "spawn":
            continue
        ours, theirs = socket.socketpair()
        pid = os.fork()
        if pid == 0:  # the worker
            control.close()
            ours.close()
            try:
                serve_worker(theirs, factory)
            finally:
                os._exit(0)
        theirs.close()
        send_packet(control, ("worker", pid), [ours.fileno()])
        ours.close()


def warmup_speech(path: Path | None) -> bytes:
    """8 kHz PCM16 speech to warm decoders on: the given μ-law WAV, or the bundled one."""
    from importlib.resources import as_file, files

    from voice.codec import ulaw_to_pcm16
    from voice.errors import AudioFormatError
    from voice.wavfile import read_ulaw_wav

    if path is not None:
        try:
            return ulaw_to_pcm16(read_ulaw_wav(path))
        except OSError as exc:
            raise AudioFormatError(f"{path}: cannot read the warm-up recording ({exc.strerror or exc})") from exc
    with as_file(files("voice.assets").joinpath("warmup.wav")) as bundled:
        return ulaw_to_pcm16(read_ulaw_wav(bundled))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="handoff's recognition host (started by the server)")
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--rate", type=int, default=16000)
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--prewarm", type=int, default=0)
    parser.add_argument("--warmup-audio", type=Path)
    args = parser.parse_args(argv)
    control = socket.socket(fileno=args.control_fd)
    try:
        return serve_host(control, args.model, args.rate, args.prewarm, args.warmup_audio)
    finally:
        control.close()


if __name__ == "__main__":
    sys.exit(main())

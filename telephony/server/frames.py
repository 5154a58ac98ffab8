"""Twilio's media messages read straight off the socket: the one kind of websocket frame a media stream carries.

A Twilio media stream sends 50 small text messages a second per call, each one whole, unfragmented, masked
frame. The websockets library parses every frame with a generator per read, and uvicorn stops and restarts
reading the socket after each message; together that was about half of the server's CPU per inbound frame
(`bench/load.py`). Here the common frame is read in a few operations, and the socket is paused only when the
application falls behind.

Only frames this module fully understands take the short path: FIN set, no reserved bits, masked, text or
binary, at most 65,535 bytes, within the size limit. A whole, masked control frame (ping, pong, close) is
handed to websockets on its own, which answers it as usual. The first frame that is anything else (a fragment,
a huge or an unmasked frame, reserved bits, text that is not UTF-8) and every byte after it go to websockets,
which then parses the connection to its end with all of RFC 6455's checks. Both parsers see the stream from a
frame boundary, so nothing is parsed twice or skipped.

Reads can also be batched (`read_batch`, the server's `media_read_batch`): once a stream's media flows, its
socket's receive low-water mark (SO_RCVLOWAT) is raised so that the kernel reports it readable only when about
`read_batch` media messages wait, and one read takes them all. A read costs the server about as much CPU as
the message it carries, so ten messages a read save nine tenths of that part, for at most 180 ms more delay.
The application asks for prompt reads where a message must not wait (`promptly`: the frames that may end a
caller's utterance, and the caller's voice over the bot, which may be a barge-in). A socket that goes quiet
for a sweep (`read_sweep_s`, or two batches' time if longer: the last message before a pause, a `stop`, a
close) has the mark lowered at once, so nothing is held for a partner that never comes.

The application may also write a run of text messages in one write (`send_now`: a prompt's audio and its
mark), framed here as websockets frames them, when the connection is open and its buffer takes writes.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import uvicorn
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - websockets built without its C extension
    from websockets.utils import apply_mask

_FIN_NO_RSV = 0x80  # first byte: FIN set and the three reserved bits clear
_TEXT, _BINARY = 0x1, 0x2
_CONTROL = 0x8  # close 0x8, ping 0x9, pong 0xA: at most 125 bytes, never fragmented
_MASKED = 0x80
_LENGTH_16 = 126  # the 7-bit length field says: a 16-bit length follows
_LENGTH_64 = 127  # ... a 64-bit length follows
log = logging.getLogger(__name__)

# The application may take text messages straight from the socket's callback, while it waits for the next one:
# scope["extensions"][DIRECT_EXTENSION]["register"](reader). `reader(text)` handles the message at once and
# returns None, or returns what is left to do; that comes to the application's next receive() as the message's
# DIRECT_LEFT value (DIRECT_ERROR if the reader raised), in order with every other message.
# While reads are batched, scope["extensions"][DIRECT_EXTENSION]["promptly"](True) has each message read as it
# comes (the application expects one that must not wait), and (False) lets them batch again.
DIRECT_EXTENSION = "handoff.direct_receive"
DIRECT_LEFT = "handoff.left"
DIRECT_ERROR = "handoff.error"
DirectReader = Callable[[str], object | None]
QUEUE_HIGH_WATER = 64  # messages waiting for the application (1.3 s of audio) before the socket is paused
READ_SWEEP_S = 0.1  # how often batched sockets are checked for having gone quiet, at the most
MEDIA_MESSAGE_S = 0.02  # Twilio sends a media message every 20 ms
STEADY_READS = 10  # reads of one message each, of about one size, before reads are batched (200 ms of media)


@dataclass(slots=True)
class FrameSplit:
    """What `split_frames` found in a buffer: whole messages, how far it read, and whether the rest is foreign."""

    messages: list[str | bytes] = field(default_factory=list)  # text frames decoded, binary frames as bytes
    consumed: int = 0  # bytes of the buffer that made those messages
    control_end: int = 0  # when not 0: a whole control frame lies from `consumed` to here, for websockets
    foreign: bool = False  # the bytes from `consumed` on start with a frame to leave to websockets


def split_frames(buffer: bytes | bytearray, max_size: int | None) -> FrameSplit:
    """Read the whole, simple, masked text and binary frames at the start of `buffer` (sans I/O).

    Stops at a frame that is not whole yet (read again when more bytes come), at a whole control frame
    (`control_end`), or at a frame it leaves to a full parser (`foreign`): a fragment, reserved bits, no mask,
    a 64-bit length, a payload over `max_size`, or text that is not UTF-8.
    """
    split = FrameSplit()
    size = len(buffer)
    at = 0
    while size - at >= 2:
        first, second = buffer[at], buffer[at + 1]
        opcode = first & 0x0F
        length = second & 0x7F
        if first & 0xF0 != _FIN_NO_RSV or not second & _MASKED or length > 126:
            split.foreign = True
            break
        if opcode not in (_TEXT, _BINARY):
            if opcode >= _CONTROL and length <= 125:
                if at + 6 + length <= size:
                    split.control_end = at + 6 + length
            else:
                split.foreign = True
            break
        if length == _LENGTH_16:
            if size - at < 4:
                break
            length = buffer[at + 2] << 8 | buffer[at + 3]
            start = at + 8
        else:
            start = at + 6
        if max_size is not None and length > max_size:
            split.foreign = True
            break
        end = start + length
        if end > size:
            break
        payload = apply_mask(buffer[start:end], buffer[start - 4 : start])
        if opcode == _TEXT:
            try:
                split.messages.append(payload.decode())
            except UnicodeDecodeError:
                split.foreign = True
                break
        else:
            split.messages.append(payload)
        at = end
    split.consumed = at
    return split


class MediaWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets protocol with the short path for simple frames (see the module's docstring)."""

    read_batch = 1  # media messages a read waits for once media flows; 1 reads each as it comes
    read_sweep_s = READ_SWEEP_S

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._short_path = True  # False once websockets has seen frame bytes: it parses the rest of the stream
        self._pending = bytearray()  # the start of a frame not yet whole
        self._direct: DirectReader | None = None  # the application's reader of messages, if it registered one
        self._app_waiting = False  # the application is waiting in receive(): a message may go straight to it
        self.read_lately = False  # read since the sweeper last looked: its sign of life
        self._steady_bytes = 0  # the size of the last run of reads of one message each, about the same size
        self._steady_reads = 0  # reads in that run
        self.batched = False  # the socket's low-water mark is raised now: reads wait for `read_batch` messages
        self._prompt_reads = False  # the application asked for each message as it comes, for now

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:  # the upgrade was accepted by websockets: offer the direct path with the scope
            scope["extensions"][DIRECT_EXTENSION] = {
                "register": self._register_direct,
                "promptly": self._promptly,
                "send_now": self._send_now,
            }

    def _register_direct(self, reader: DirectReader) -> None:
        self._direct = reader

    def _promptly(self, promptly: bool) -> None:
        self._prompt_reads = promptly
        if promptly:
            self.unbatch()

    def _send_now(self, texts: Sequence[str]) -> bool:
        """Write text messages in one write, framed here as websockets frames them (a server's frames are not
        masked, and no extension is in use); False, with nothing written, unless the connection is open and
        its buffer takes writes now: the application then sends them the usual way, waiting as it must."""
        transport = self.transport
        if (
            self.close_sent
            or not self.handshake_complete
            or self.conn.state is not State.OPEN
            or not self.writable.is_set()
            or transport is None
            or transport.is_closing()
        ):
            return False
        parts: list[bytes] = []
        for text in texts:
            data = text.encode()
            size = len(data)
            if size < _LENGTH_16:
                parts.append(bytes((_FIN_NO_RSV | _TEXT, size)))
            elif size <= 0xFFFF:
                parts.append(struct.pack("!BBH", _FIN_NO_RSV | _TEXT, _LENGTH_16, size))
            else:
                parts.append(struct.pack("!BBQ", _FIN_NO_RSV | _TEXT, _LENGTH_64, size))
            parts.append(data)
        transport.write(b"".join(parts))
        return True

    async def receive(self) -> Any:
        self._app_waiting = True
        try:
            return await super().receive()
        finally:
            self._app_waiting = False

    def data_received(self, data: bytes) -> None:
        self.read_lately = True
        if self._short_path:
            if not self._pending and self._read_whole(data):  # the usual read: asks nothing more of the connection
                if not self.batched and self.read_batch > 1 and not self._prompt_reads:
                    self._note_steady(len(data))
                return
            if self.handshake_complete and self.conn.state is State.OPEN:
                self._read_short(data)
                return
            if self.handshake_initiated:  # closing, or bytes before our 101: websockets reads on from here
                self._short_path = False
                data = bytes(self._pending) + data
                self._pending = bytearray()
        was_initiated = self.handshake_initiated
        super().data_received(data)
        if not was_initiated and self.handshake_initiated and not data.endswith(b"\r\n\r\n"):
            # Frame bytes came with the upgrade request (a client must wait for our 101, RFC 6455 4.1):
            # websockets may hold part of a frame, so it parses this connection to its end.
            self._short_path = False

    def _read_whole(self, data: bytes) -> bool:
        """The usual read of a media stream: whole, masked, final text frames (one, or a batch), for the
        application's reader while it waits with nothing queued. Taken straight to the reader; False (nothing
        read) when any part of the read is anything else.

        Only an open connection has a reader: it registers after the handshake, and a close (sent, received, or
        at shutdown) sets `close_sent`, queues a disconnect, or leaves the short path, each of which stops this.

        Twilio's media messages arrive 50 a second per call; on a loaded server each is read from cold caches,
        so the fewer steps between the socket and the reader the better (`bench/load.py`)."""
        reader = self._direct
        if reader is None or not self._app_waiting or self.close_sent or not self.queue.empty():
            return False
        size = len(data)
        max_size = self.conn.max_message_size
        texts: list[str] = []
        at = 0
        while at < size:
            if size - at < 6 or data[at] != _FIN_NO_RSV | _TEXT:
                return False
            length = data[at + 1] ^ _MASKED  # the mask bit set leaves the 7-bit length; clear, 128 or more
            start = at + 6
            if length == _LENGTH_16 and size - at >= 8:
                length = data[at + 2] << 8 | data[at + 3]
                start = at + 8
            elif length >= _LENGTH_16:
                return False
            at = start + length
            if at > size or (max_size is not None and length > max_size):
                return False
            try:
                texts.append(apply_mask(data[start:at], data[start - 4 : start]).decode())
            except UnicodeDecodeError:
                return False  # the full path finds it foreign and leaves it to websockets
        self._read_run(reader, texts)
        return True

    def _read_run(self, reader: DirectReader, texts: list[str]) -> None:
        """A read's messages to the reader, one after the other, until one leaves work queued: the rest then
        wait behind it, in order. Nothing the reader does from this callback can close the connection or end
        the application's wait, so what `_deliver` asks of each message was settled once, by `_read_whole`."""
        for index, text in enumerate(texts):
            if self._read_direct(reader, text):
                for later in texts[index + 1 :]:
                    self._deliver(later)
                return

    def _note_steady(self, size: int) -> None:
        """Batch reads once they have settled into one message each of about the same size: media flowing."""
        if abs(size - self._steady_bytes) <= self._steady_bytes // 8:
            self._steady_reads += 1
            if self._steady_reads >= STEADY_READS:
                self._batch_reads(self._steady_bytes)
        else:
            self._steady_bytes, self._steady_reads = size, 1

    def _batch_reads(self, message_bytes: int) -> None:
        """Have the socket gather `read_batch` messages of about this size before it is read."""
        if self.close_sent or not self._set_low_water(message_bytes * (self.read_batch - 1) + message_bytes // 2):
            return
        self.batched = True
        # A batched socket is read once a batch has come: a sweep must wait for two, or it would find streams
        # that are flowing quiet, and unbatch them.
        _QuietSweeper.watch(self, max(self.read_sweep_s, 2 * self.read_batch * MEDIA_MESSAGE_S))

    def unbatch(self) -> None:
        """Read whatever the socket holds at once again (the sweeper found it quiet, or the application asked);
        batched again as media flows on."""
        if self.batched:
            self.batched = False
            self._set_low_water(1)

    def _set_low_water(self, size: int) -> bool:
        sock = self.transport.get_extra_info("socket") if self.transport is not None else None
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, size)
        except (AttributeError, OSError) as exc:  # no socket, or a platform without it: read each message
            log.debug("media reads are not batched: %s", exc)
            self.read_batch = 1
            return False
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.batched = False
        super().connection_lost(exc)

    def _read_short(self, data: bytes) -> None:
        buffer: bytes | bytearray = self._pending + data if self._pending else data
        while True:
            split = split_frames(buffer, self.conn.max_message_size)
            for message in split.messages:
                self._deliver(message)
            if split.control_end:  # a ping, pong or close: websockets answers it from a frame boundary
                super().data_received(bytes(buffer[split.consumed : split.control_end]))
                buffer = buffer[split.control_end :]
                if self.conn.state is State.OPEN and self.conn.parser_exc is None:
                    continue
                split.foreign, split.consumed = True, 0  # closing: websockets reads the rest
            if split.foreign:
                self._short_path = False
                self._pending = bytearray()
                if split.consumed < len(buffer):
                    super().data_received(bytes(buffer[split.consumed :]))
            elif split.consumed < len(buffer) or self._pending:  # the usual frame leaves nothing to keep
                self._pending = bytearray(buffer[split.consumed :])
            return

    def _deliver(self, message: str | bytes) -> None:
        if self.close_sent:  # the application has closed: discard, as uvicorn does, until the peer's close
            return
        if isinstance(message, str):
            if self._direct is not None and self._app_waiting and self.queue.empty():
                self._read_direct(self._direct, message)
                return
            self.queue.put_nowait({"type": "websocket.receive", "text": message})
        else:
            self.queue.put_nowait({"type": "websocket.receive", "bytes": message})
        if not self.read_paused and self.queue.qsize() >= QUEUE_HIGH_WATER:
            self.read_paused = True  # resumed by receive() once the application has read the queue empty
            self.transport.pause_reading()

    def _read_direct(self, reader: DirectReader, message: str) -> bool:
        """The application reads `message` now; what it leaves, or its failure, waits in the queue in order
        (True: something was queued, and later messages must wait behind it)."""
        try:
            left = reader(message)
        except Exception as exc:  # the application's to handle, in its own task, as if receive() had raised
            log.debug("a direct read failed; the application gets the error with the message", exc_info=True)
            self._queue_with(message, DIRECT_ERROR, exc)
            return True
        if left is None:
            return False
        self._queue_with(message, DIRECT_LEFT, left)
        return True

    def _queue_with(self, message: str, key: str, value: object) -> None:
        """A receive event with one more key than ASGI's (an application that does not know it ignores it)."""
        event: Any = {"type": "websocket.receive", "text": message, key: value}
        self.queue.put_nowait(event)


class _QuietSweeper:
    """Lowers the mark of each batched socket not read since the last sweep: a message alone (the last before a
    pause, a `stop`, a close frame) is read within two sweeps, not held for a partner that never comes.

    One per event loop; it holds neither its loop nor its sockets' protocols, so a loop that stops with streams
    still watched (a test's) is not kept alive by it."""

    _by_loop: ClassVar[weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _QuietSweeper]] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self, every_s: float) -> None:
        self._every_s = every_s
        self._watched: weakref.WeakSet[MediaWebSocketProtocol] = weakref.WeakSet()
        self._timer: asyncio.TimerHandle | None = None

    @classmethod
    def watch(cls, protocol: MediaWebSocketProtocol, every_s: float) -> None:
        """Watch a socket just batched, with the running loop's sweeper."""
        loop = asyncio.get_running_loop()
        sweeper = cls._by_loop.get(loop)
        if sweeper is None:
            sweeper = cls._by_loop[loop] = cls(every_s)
        protocol.read_lately = False
        sweeper._watched.add(protocol)
        if sweeper._timer is None:
            sweeper._timer = loop.call_later(sweeper._every_s, sweeper._sweep)

    def _sweep(self) -> None:
        self._timer = None
        for protocol in list(self._watched):  # a flag on each socket: no weak reference made afresh each sweep
            if not protocol.batched:  # closed, or lowered already
                self._watched.discard(protocol)
            elif protocol.read_lately:
                protocol.read_lately = False
            else:
                self._watched.discard(protocol)
                protocol.unbatch()
        if self._watched:
            self._timer = asyncio.get_running_loop().call_later(self._every_s, self._sweep)


def uvicorn_config(app: Any, *, read_batch: int = 1, **options: Any) -> uvicorn.Config:
    """uvicorn's settings for a handoff server: media streams on the short path, no per-message deflate, and
    `read_batch` media messages a read (1: each read as it comes)."""
    protocol: type[MediaWebSocketProtocol] = MediaWebSocketProtocol
    if read_batch > 1:
        protocol = type("BatchedMediaWebSocketProtocol", (MediaWebSocketProtocol,), {"read_batch": read_batch})
    return uvicorn.Config(app, ws=protocol, ws_per_message_deflate=False, **options)

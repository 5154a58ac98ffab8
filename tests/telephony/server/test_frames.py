"""The short path for media frames: it reads what websockets would, and leaves everything else to websockets."""

from __future__ import annotations

import asyncio
import os
import struct
from collections.abc import AsyncIterator

import pytest
import websockets
from fastapi import FastAPI, WebSocket
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode
from websockets.protocol import SERVER, Protocol
from websockets.utils import apply_mask

from telephony.replay.in_process import serve_in_process
from telephony.server.frames import (
    DIRECT_ERROR,
    DIRECT_EXTENSION,
    DIRECT_LEFT,
    STEADY_READS,
    MediaWebSocketProtocol,
    split_frames,
)


def masked_frame(opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0, mask: bool = True) -> bytes:
    """One client frame as RFC 6455 puts it on the wire."""
    first = (0x80 if fin else 0) | rsv << 4 | opcode
    size = len(payload)
    if size < 126:
        header = bytes([first, (0x80 if mask else 0) | size])
    elif size < 1 << 16:
        header = bytes([first, (0x80 if mask else 0) | 126]) + struct.pack("!H", size)
    else:
        header = bytes([first, (0x80 if mask else 0) | 127]) + struct.pack("!Q", size)
    if not mask:
        return header + payload
    key = os.urandom(4)
    return header + key + apply_mask(payload, key)


messages = st.one_of(st.text(max_size=300), st.binary(max_size=300), st.text(min_size=130, max_size=400))


def frame_of(message: str | bytes) -> bytes:
    if isinstance(message, str):
        return masked_frame(Opcode.TEXT, message.encode())
    return masked_frame(Opcode.BINARY, message)


@settings(max_examples=200, deadline=None)
@given(st.lists(messages, max_size=8), st.data())
def test_split_frames_reads_what_websockets_reads_and_waits_for_the_rest(
    sent: list[str | bytes], data: st.DataObject
) -> None:
    wire = b"".join(frame_of(m) for m in sent)
    whole = split_frames(wire, 1 << 20)
    assert whole.messages == sent
    assert whole.consumed == len(wire) and not whole.foreign and not whole.control_end

    reference = Protocol(SERVER, max_size=1 << 20)  # websockets' own parser on the same bytes
    reference.receive_data(wire)
    frames = [e for e in reference.events_received() if isinstance(e, Frame)]
    assert [f.data.decode() if f.opcode is Opcode.TEXT else f.data for f in frames] == sent

    cut = data.draw(st.integers(0, len(wire)))
    part = split_frames(wire[:cut], 1 << 20)
    assert part.messages == sent[: len(part.messages)]  # a frame cut short is not read until it is whole
    assert part.consumed <= cut and not part.foreign
    assert split_frames(wire[part.consumed :], 1 << 20).messages == sent[len(part.messages) :]


@pytest.mark.parametrize(
    "frame",
    [
        masked_frame(Opcode.TEXT, b"a fragment", fin=False),
        masked_frame(Opcode.CONT, b"the end of one"),
        masked_frame(Opcode.TEXT, b"reserved bits", rsv=4),
        masked_frame(Opcode.TEXT, b"not masked", mask=False),
        masked_frame(Opcode.TEXT, b"\xff\xfe not UTF-8"),
        masked_frame(Opcode.BINARY, bytes(70_000)),  # a 64-bit length
        masked_frame(Opcode.TEXT, b"x" * 2_000),  # over the size limit below
    ],
    ids=["fragment", "continuation", "rsv", "unmasked", "bad-utf8", "64-bit-length", "too-big"],
)
def test_frames_it_does_not_fully_understand_are_left_to_websockets(frame: bytes) -> None:
    before = masked_frame(Opcode.TEXT, b'{"event":"media"}')
    split = split_frames(before + frame + before, 1_000)
    assert split.messages == ['{"event":"media"}']
    assert split.foreign and split.consumed == len(before)


def test_a_whole_control_frame_is_marked_for_websockets_and_a_partial_one_waits() -> None:
    ping = masked_frame(Opcode.PING, b"are you there")
    split = split_frames(ping + frame_of("after"), None)
    assert split.messages == [] and split.control_end == len(ping) and not split.foreign
    waiting = split_frames(ping[:-3], None)
    assert waiting.control_end == 0 and not waiting.foreign and waiting.consumed == 0


# --- through uvicorn on loopback ----------------------------------------------------------------------------


def echo_app() -> FastAPI:
    """Echoes every message back, then the close code it saw."""
    app = FastAPI()

    @app.websocket("/ws")
    async def echo(ws: WebSocket) -> None:
        await ws.accept()
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await ws.send_text(message["text"])
            else:
                await ws.send_bytes(message["bytes"])

    return app


@pytest.fixture
async def echo_url() -> AsyncIterator[str]:
    async with serve_in_process(echo_app()) as base:  # the server's own uvicorn settings
        yield base.replace("http://", "ws://") + "/ws"


async def test_messages_pings_fragments_and_close_all_work_through_the_short_path(echo_url: str) -> None:
    async with websockets.connect(echo_url, compression=None) as client:
        for i in range(200):
            await client.send(f'{{"event":"media","n":{i}}}')
        assert [await client.recv() for _ in range(200)] == [f'{{"event":"media","n":{i}}}' for i in range(200)]
        await asyncio.wait_for(await client.ping(b"keepalive"), 2)  # answered: websockets took the ping
        await client.send("after the ping")
        assert await client.recv() == "after the ping"
        await client.send(["frag", "mented"])  # one message in two frames: websockets reads on from here
        assert await client.recv() == "fragmented"
        await client.send(b"\x00\x01binary")
        assert await client.recv() == b"\x00\x01binary"
    assert client.close_code == 1000


async def raw_stream(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A websocket opened by hand, so the test can put any bytes on the wire."""
    host, port = url.removeprefix("ws://").split("/")[0].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    await reader.readuntil(b"\r\n\r\n")
    return reader, writer


async def server_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """The opcode and payload of the server's next (unmasked) frame."""
    first, second = await asyncio.wait_for(reader.readexactly(2), 3)
    size = second & 0x7F
    if size == 126:
        size = struct.unpack("!H", await reader.readexactly(2))[0]
    return first & 0x0F, await reader.readexactly(size)


async def close_code_of(reader: asyncio.StreamReader) -> int:
    """Read server frames until its close frame; returns the close code."""
    while True:
        opcode, payload = await server_frame(reader)
        if opcode == Opcode.CLOSE:
            return int(struct.unpack("!H", payload[:2])[0])


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (masked_frame(Opcode.TEXT, b"\xff\xfe"), 1007),  # invalid UTF-8
        (masked_frame(Opcode.TEXT, b"plain", mask=False), 1002),  # a client must mask
        (masked_frame(Opcode.CONT, b"nothing to continue"), 1002),
    ],
    ids=["bad-utf8", "unmasked", "stray-continuation"],
)
async def test_a_bad_frame_after_good_ones_closes_with_websockets_own_code(
    echo_url: str, frame: bytes, code: int
) -> None:
    reader, writer = await raw_stream(echo_url)
    # the good frame and the bad one in one segment, split mid-frame: both parsers see part of the stream
    wire = masked_frame(Opcode.TEXT, b"good") + frame
    writer.write(wire[:9])
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.write(wire[9:])
    assert await close_code_of(reader) == code
    writer.close()


async def test_a_message_over_the_size_limit_closes_with_1009(echo_url: str) -> None:
    reader, writer = await raw_stream(echo_url)
    huge = bytes([0x82, 0x80 | 127]) + struct.pack("!Q", 1 << 30) + os.urandom(4)  # a 1 GiB frame's header
    writer.write(masked_frame(Opcode.TEXT, b"good") + huge)
    assert await close_code_of(reader) == 1009
    writer.close()


async def test_frames_split_across_segments_and_packed_into_one_arrive_whole(echo_url: str) -> None:
    reader, writer = await raw_stream(echo_url)
    texts = [f"message {i} " + "x" * (i * 37 % 300) for i in range(40)]
    wire = b"".join(masked_frame(Opcode.TEXT, t.encode()) for t in texts)
    for at in range(0, len(wire), 97):  # segments that cut headers, masks and payloads anywhere
        writer.write(wire[at : at + 97])
        await writer.drain()
    echoed = [(await server_frame(reader))[1].decode() for _ in texts]
    assert echoed == texts
    writer.write(masked_frame(Opcode.CLOSE, struct.pack("!H", 1000)))
    assert await close_code_of(reader) == 1000
    writer.close()


# --- the direct path: messages read from the socket's callback --------------------------------------------


def direct_app(seen: list[str], direct: list[str]) -> FastAPI:
    """Reads "now:" messages from the socket's callback while it waits; the rest come to its loop as what the
    reader left (or its error), and any message that came while the loop was busy comes as it was sent, and is
    read there the same way: the media route's shape."""
    app = FastAPI()

    def reader(text: str) -> object | None:
        if text == "fail":
            raise ValueError("the reader failed")
        if text.startswith("now:"):
            seen.append(text)
            return None
        return f"left:{text}"

    @app.websocket("/ws")
    async def endpoint(ws: WebSocket) -> None:
        await ws.accept()

        def from_the_socket(text: str) -> object | None:
            direct.append(text)
            return reader(text)

        ws.scope["extensions"][DIRECT_EXTENSION]["register"](from_the_socket)
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            try:
                if DIRECT_ERROR in message:
                    raise message[DIRECT_ERROR]
                left = message[DIRECT_LEFT] if DIRECT_LEFT in message else reader(message["text"])
            except ValueError as exc:
                await ws.send_text(f"error:{exc}")
                continue
            if left is None:
                continue
            seen.append(str(left))
            if left == "left:slow":
                await asyncio.sleep(0.05)  # meanwhile "now:" messages must wait their turn in the queue
            await ws.send_text("ok")

    return app


async def test_direct_reads_keep_the_order_of_messages_whichever_path_each_takes() -> None:
    seen: list[str] = []
    direct: list[str] = []
    async with serve_in_process(direct_app(seen, direct)) as base:
        client = await websockets.connect(base.replace("http://", "ws://") + "/ws", compression=None)
        long = "now:" + "y" * 300  # a media message's size: its length takes the 16-bit field
        sent = ["now:1", long, "now:2", "later", "now:3", "slow", "now:4", "now:5", "later2", "now:6", long]
        for text in sent:
            await client.send(text)
        assert [await client.recv() for _ in range(3)] == ["ok"] * 3  # later, slow, later2
        await client.send("fail")
        assert await client.recv() == "error:the reader failed"
        await client.close()
    expected = [t if t.startswith("now:") else f"left:{t}" for t in sent]
    assert seen == expected
    assert "now:1" in direct  # the first came while the loop waited: read from the socket's callback
    assert long in direct


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (masked_frame(Opcode.TEXT, b"\xff\xfe" * 100), 1007),  # invalid UTF-8, in the 16-bit length form
        (masked_frame(Opcode.TEXT, b"now:plain", mask=False), 1002),  # a client must mask
        (bytes([0x81, 0x80 | 127]) + struct.pack("!Q", 1 << 30) + os.urandom(4), 1009),  # a 1 GiB frame's header
    ],
    ids=["bad-utf8", "unmasked", "64-bit-length"],
)
async def test_a_bad_frame_alone_in_its_read_is_left_to_websockets_even_while_the_app_reads_directly(
    frame: bytes, code: int
) -> None:
    seen: list[str] = []
    direct: list[str] = []
    async with serve_in_process(direct_app(seen, direct)) as base:
        reader, writer = await raw_stream(base.replace("http://", "ws://") + "/ws")
        writer.write(masked_frame(Opcode.TEXT, b"now:" + b"y" * 300))  # one whole frame a read: the short cut
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(frame)
        assert await close_code_of(reader) == code
        writer.close()
    assert direct == ["now:" + "y" * 300]
    assert seen == direct


async def test_several_whole_frames_in_one_read_go_to_the_reader_in_order() -> None:
    seen: list[str] = []
    direct: list[str] = []
    async with serve_in_process(direct_app(seen, direct)) as base:
        reader, writer = await raw_stream(base.replace("http://", "ws://") + "/ws")
        long = "now:" + "y" * 300
        sent = ["now:1", long, "later", "now:2", long + "z"]
        writer.write(b"".join(masked_frame(Opcode.TEXT, text.encode()) for text in sent))  # one segment, one read
        await writer.drain()
        assert await server_frame(reader) == (Opcode.TEXT, b"ok")  # "later" was answered by the app's loop
        writer.write(masked_frame(Opcode.CLOSE, struct.pack("!H", 1000)))
        assert await close_code_of(reader) == 1000
        writer.close()
    assert seen == [t if t.startswith("now:") else f"left:{t}" for t in sent]
    assert direct[:3] == ["now:1", long, "later"]  # read from the socket's callback until work was left queued


def media_like(tag: str) -> bytes:
    """A frame the size of a Twilio media message (its length in the 16-bit field)."""
    return masked_frame(Opcode.TEXT, f"now:{tag}:".encode().ljust(300, b"y"))


async def settle_into_media(writer: asyncio.StreamWriter, direct: list[str]) -> None:
    """Send media-sized frames one read at a time, as Twilio does, until the stream's reads are batched."""
    for index in range(STEADY_READS):
        writer.write(media_like(f"m{index}"))
        await writer.drain()
        assert await wait_for_count(direct, index + 1, 2.0)


async def wait_for_count(direct: list[str], count: int, timeout_s: float) -> bool:
    for _ in range(int(timeout_s / 0.01)):
        if len(direct) >= count:
            return True
        await asyncio.sleep(0.01)
    return len(direct) >= count


async def test_batched_reads_hold_a_media_message_until_the_next_and_read_both_together(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(MediaWebSocketProtocol, "read_sweep_s", 30.0)  # no sweep during the test: the kernel alone
    seen: list[str] = []
    direct: list[str] = []
    async with serve_in_process(direct_app(seen, direct), read_batch=2) as base:
        _reader, writer = await raw_stream(base.replace("http://", "ws://") + "/ws")
        await settle_into_media(writer, direct)
        writer.write(media_like("held"))
        await writer.drain()
        assert not await wait_for_count(direct, STEADY_READS + 1, 0.3)  # one message: below the socket's low-water mark
        writer.write(media_like("partner"))
        await writer.drain()
        assert await wait_for_count(direct, STEADY_READS + 2, 2.0)
        writer.close()
    assert [text.split(":")[1] for text in direct[-2:]] == ["held", "partner"]
    assert seen == direct


async def test_a_batched_stream_that_goes_quiet_is_read_at_the_next_sweeps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(MediaWebSocketProtocol, "read_sweep_s", 0.05)
    seen: list[str] = []
    direct: list[str] = []
    async with serve_in_process(direct_app(seen, direct), read_batch=2) as base:
        reader, writer = await raw_stream(base.replace("http://", "ws://") + "/ws")
        await settle_into_media(writer, direct)
        writer.write(media_like("last"))  # the last message before a pause: no partner comes
        await writer.drain()
        assert await wait_for_count(direct, STEADY_READS + 1, 1.0)  # and it was batched again as it was read
        writer.write(masked_frame(Opcode.CLOSE, struct.pack("!H", 1000)))  # so a close frame alone waits a sweep
        assert await asyncio.wait_for(close_code_of(reader), 2.0) == 1000
        writer.close()
    assert direct[-1].startswith("now:last:")


# --- writes of several messages at once ------------------------------------------------------------------


def sending_app(accepted: list[bool]) -> FastAPI:
    """On any message: three messages written at once (7-bit, 16-bit and 64-bit lengths), one sent the usual
    way, then a close, and a write at once tried after it."""
    app = FastAPI()

    @app.websocket("/ws")
    async def endpoint(ws: WebSocket) -> None:
        await ws.accept()
        send_now = ws.scope["extensions"][DIRECT_EXTENSION]["send_now"]
        await ws.receive()
        accepted.append(send_now(["short", "é" * 600, "x" * 70_000]))
        await ws.send_text("after")
        await ws.close()
        accepted.append(send_now(["too late"]))

    return app


async def test_messages_written_at_once_reach_a_real_client_whole_and_in_order_and_none_once_closed() -> None:
    accepted: list[bool] = []
    async with (
        serve_in_process(sending_app(accepted)) as base,
        websockets.connect(base.replace("http://", "ws://") + "/ws", compression=None) as client,
    ):
        await client.send("go")
        got = [await client.recv() for _ in range(4)]
        with pytest.raises(websockets.ConnectionClosedOK):
            await client.recv()
    assert got == ["short", "é" * 600, "x" * 70_000, "after"]
    assert accepted == [True, False]  # after the close nothing is written: the app is told to send the usual way

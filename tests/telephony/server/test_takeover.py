"""No stream can take over a call: a stream speaks for a call only with the single-use ticket the voice
webhook issued for it, and only one stream does (issue 11, takeover).

Against the real app on a loopback socket, with correctly signed upgrades: the upgrade's signature covers
only the URL, so an attacker who captured one can open as many streams as they like.
"""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET

import websockets

from telephony.calls.admission import TICKET_PARAMETER
from tests.telephony.conftest import CALL_SID, StreamScript
from tests.telephony.server.harness import call_params, open_media, post


async def ticket_for(base: str, call_sid: str = CALL_SID) -> str:
    """Answer the call as Twilio would, and read the stream ticket out of the TwiML."""
    response = await post(base, "/twilio/voice", call_params(CallSid=call_sid))
    stream = ET.fromstring(response.text).find("Connect/Stream")
    assert stream is not None
    tickets = [p.get("value") for p in stream.findall("Parameter") if p.get("name") == TICKET_PARAMETER]
    assert len(tickets) == 1 and tickets[0]
    return str(tickets[0])


async def open_stream(base: str, call_sid: str, params: dict[str, str]) -> websockets.ClientConnection:
    ws = await open_media(base, "ws://{host}/twilio/media".format(host=base.split("//")[1]))
    script = StreamScript(call_sid=call_sid, stream_sid="MZ" + call_sid[2:])
    await ws.send(script.connected())
    await ws.send(script.start({"caller": "+15551230000", **params}))
    return ws


async def refused(ws: websockets.ClientConnection) -> int | None:
    """The close code the server ends the stream with (None: it stayed open)."""
    try:
        async with asyncio.timeout(3):
            async for _ in ws:
                pass
    except TimeoutError:
        await ws.close()
        return None
    except websockets.ConnectionClosed:
        pass
    return ws.close_code


async def test_a_forged_start_naming_a_live_call_is_refused_and_changes_nothing(server) -> None:  # type: ignore[no-untyped-def]
    base, services = server
    ticket = await ticket_for(base)
    victim = await open_stream(base, CALL_SID, {TICKET_PARAMETER: ticket})
    await asyncio.sleep(0.2)
    record = services.registry.get(CALL_SID)
    assert record is not None and record.status == "streaming"
    forged = await open_stream(base, CALL_SID, {})  # a valid upgrade, the victim's SID, no ticket
    assert await refused(forged) == 1008
    assert record.decision is None and services.streams.get(CALL_SID) is not None  # the victim's call goes on
    await victim.close()


async def test_a_replayed_ticket_opens_no_second_stream(server) -> None:  # type: ignore[no-untyped-def]
    base, services = server
    ticket = await ticket_for(base)
    first = await open_stream(base, CALL_SID, {TICKET_PARAMETER: ticket})
    await asyncio.sleep(0.2)
    replayed = await open_stream(base, CALL_SID, {TICKET_PARAMETER: ticket})
    assert await refused(replayed) == 1008
    assert services.registry.get(CALL_SID).decision is None  # type: ignore[union-attr]
    await first.close()


async def test_another_calls_ticket_does_not_open_this_call(server) -> None:  # type: ignore[no-untyped-def]
    base, services = server
    other = "CA" + "7" * 32
    ticket = await ticket_for(base, other)
    await ticket_for(base)  # the victim's call is answered too
    stolen = await open_stream(base, CALL_SID, {TICKET_PARAMETER: ticket})
    assert await refused(stolen) == 1008
    assert services.registry.get(CALL_SID).stream_sid is None  # type: ignore[union-attr]


async def test_a_stream_for_a_call_this_server_never_answered_is_refused(server) -> None:  # type: ignore[no-untyped-def]
    base, services = server
    stranger = "CA" + "9" * 32
    ws = await open_stream(base, stranger, {TICKET_PARAMETER: "1.2.3"})
    assert await refused(ws) == 1008
    assert services.registry.get(stranger) is None  # no record, not even one named "unknown"
    assert services.registry.get("unknown") is None


async def test_an_invalid_start_files_nothing_on_a_shared_record(server) -> None:  # type: ignore[no-untyped-def]
    base, services = server
    ws = await open_media(base, "ws://{host}/twilio/media".format(host=base.split("//")[1]))
    await ws.send('{"event": "start", "sequenceNumber": "1", "start": {"callSid": 42}}')
    assert await refused(ws) == 1008
    assert services.registry.get("unknown") is None and services.registry.all() == []

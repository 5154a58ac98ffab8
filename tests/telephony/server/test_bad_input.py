"""Bad input gets a clear 4xx or a graceful answer, never a 500 or a traceback in the log (issue 11, items 4–6):
oversized counters, out-of-range API parameters, unreadable form fields, a `start` that names no call, and a
GET that must only read.
"""

from __future__ import annotations

import asyncio
import json
import logging

import httpx
import pytest

from telephony.calls.admission import TICKET_PARAMETER
from telephony.server.services import Services
from tests.telephony.conftest import CALL_SID, StreamScript
from tests.telephony.server.harness import HEADERS, call_params, open_media, post
from tests.telephony.server.test_takeover import open_stream, refused, ticket_for

Served = tuple[str, Services]


async def api(base: str, method: str, path: str) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.request(method, base + path, headers=HEADERS)


@pytest.mark.parametrize("limit", ["0", "-1", "1001", "99999999999999999999", "ten"])
async def test_an_out_of_range_limit_is_a_422(server: Served, limit: str) -> None:
    base, _ = server
    for path in ("/api/handoffs", "/api/callbacks", "/api/deliveries"):
        response = await api(base, "GET", f"{path}?limit={limit}")
        assert response.status_code == 422, (path, response.text)


@pytest.mark.parametrize("callback_id", ["99999999999999999999999", "0", "-5", "abc"])
async def test_a_callback_id_the_database_cannot_hold_is_a_422(server: Served, callback_id: str) -> None:
    base, _ = server
    response = await api(base, "POST", f"/api/callbacks/{callback_id}/done")
    assert response.status_code == 422, response.text


async def test_a_missing_callback_is_a_404(server: Served) -> None:
    base, _ = server
    response = await api(base, "POST", "/api/callbacks/123456/done")
    assert response.status_code == 404, response.text


@pytest.mark.parametrize(
    ("path", "query", "form"),
    [
        ("/twilio/voicemail", "", {"RecordingDuration": "abc", "RecordingUrl": "https://api.twilio.com/r/RE1"}),
        ("/twilio/voicemail", "", {"RecordingDuration": "9" * 30}),
        ("/twilio/dial-status", "&attempt=" + "9" * 20, {"DialCallStatus": "completed", "DialCallDuration": "x"}),
        ("/twilio/whisper", "&attempt=" + "9" * 20, {}),
        ("/twilio/accept", "&attempt=-1", {"Digits": "1"}),
        ("/twilio/callback/result", "&callback=" + "9" * 40, {}),
    ],
)
async def test_unreadable_form_fields_answer_without_a_traceback(
    server: Served, caplog: pytest.LogCaptureFixture, path: str, query: str, form: dict[str, str]
) -> None:
    base, _ = server
    caplog.set_level(logging.WARNING)
    response = await post(base, f"{path}?call={CALL_SID}{query}", call_params(**form))
    assert response.status_code < 500, response.text
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records]


async def test_a_start_without_a_call_sid_files_nothing_under_unknown(server: Served) -> None:
    base, services = server
    ws = await open_media(base, "ws://{host}/twilio/media".format(host=base.split("//")[1]))
    script = StreamScript(call_sid="")
    await ws.send(script.connected())
    await ws.send(script.start({}))
    assert await refused(ws) is not None  # the server closes a stream that names no call
    for sid in ("unknown", ""):
        assert services.registry.get(sid) is None
    response = await api(base, "GET", "/api/calls/unknown")
    assert response.status_code == 404


@pytest.mark.parametrize("field", ["timestamp", "chunk"])
async def test_a_huge_media_counter_never_becomes_the_call_clock(server: Served, field: str) -> None:
    base, services = server
    ticket = await ticket_for(base)
    ws = await open_stream(base, CALL_SID, {TICKET_PARAMETER: ticket})
    script = StreamScript(call_sid=CALL_SID, stream_sid="MZ" + CALL_SID[2:])
    huge = json.loads(script.media(b"\xff" * 160))
    huge["media"][field] = "9" * 20
    await ws.send(json.dumps(huge))
    await ws.send(script.media(b"\xff" * 160))
    await asyncio.sleep(0.3)
    session = services.streams.get(CALL_SID)
    assert session is not None and session.clock_ms < 10**9
    await ws.close()
    await asyncio.sleep(0.3)
    assert await services.desk.ledger.outbox.flush(5)
    stored = await api(base, "GET", f"/api/calls/{CALL_SID}")
    assert stored.status_code == 200 and stored.json()["call_sid"] == CALL_SID


async def test_reading_a_live_call_writes_nothing(server: Served) -> None:
    base, services = server
    ticket = await ticket_for(base)
    ws = await open_stream(base, CALL_SID, {TICKET_PARAMETER: ticket})
    await asyncio.sleep(0.3)
    writes: list[str] = []
    store = services.store
    for name in ("save_call", "log_event", "set_final_outcome"):
        original = getattr(store, name)

        def counting(*args: object, _name: str = name, _original: object = original, **kwargs: object) -> object:
            writes.append(_name)
            return _original(*args, **kwargs)  # type: ignore[operator]

        setattr(store, name, counting)
    for _ in range(3):
        assert (await api(base, "GET", f"/api/calls/{CALL_SID}")).status_code == 200
    assert writes == []
    await ws.close()

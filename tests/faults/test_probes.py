"""Signature and token probes on every endpoint and on the stream: missing, tampered, replayed, valid for another
URL, extra parameters after signing, another call's SID. Nothing is accepted that Twilio (or the API token
holder) did not send, and nothing answers 500."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
import websockets

from telephony.calls.admission import TICKET_PARAMETER
from telephony.replay.in_process import serve_in_process
from telephony.server.app import create_app
from tests.telephony.conftest import CALL_SID, StreamScript
from tests.telephony.server.harness import API, SIGNER, call_params, make_services, open_media, post

WEBHOOKS = [
    "/twilio/voice", "/twilio/stream-ended", "/twilio/whisper", "/twilio/accept", "/twilio/dial-status",
    "/twilio/enqueue-status", "/twilio/fallback-choice", "/twilio/voicemail", "/twilio/recording-status",
    "/twilio/callback/agent", "/twilio/callback/agent-accept", "/twilio/callback/customer",
    "/twilio/callback/result", "/twilio/callback/agent-status",
    "/twilio/conference/agent", "/twilio/conference/accept", "/twilio/conference/agent-status",
    "/twilio/conference/events", "/twilio/conference/caller-done", "/twilio/conference/wait",
]  # fmt: skip
API_ROUTES = [
    ("GET", f"/api/calls/{CALL_SID}"), ("GET", "/api/handoffs"), ("GET", "/api/callbacks"),
    ("POST", "/api/callbacks/1/done"), ("GET", "/api/deliveries"), ("POST", "/api/deliveries/abc/resend"),
    ("POST", f"/api/oracle/{CALL_SID}"),  # on oracle (test) servers only
    ("GET", "/api/wrapups"), ("GET", "/api/handoffs/H1/wrapup"), ("GET", "/api/analytics"),
]  # fmt: skip
GUARDED_LIKE_THE_API = [("GET", "/metrics")]


@pytest.fixture
async def base(tmp_path: Path):  # type: ignore[no-untyped-def]
    services = make_services(data_dir=tmp_path / "data")
    async with serve_in_process(create_app(services)) as url:
        yield url


def test_every_twilio_route_is_probed() -> None:
    app = create_app(make_services())
    paths = set(app.openapi()["paths"])
    assert {p for p in paths if p.startswith("/twilio/")} == set(WEBHOOKS)
    assert {p for p in paths if p.startswith("/api/")} == {
        p.replace(CALL_SID, "{call_sid}")
        .replace("/1/", "/{callback_id}/")
        .replace("/abc/", "/{delivery_id}/")
        .replace("/H1/", "/{handoff_id}/")
        for _, p in API_ROUTES
    }


async def signed_post(url: str, params: dict[str, str], signature: str | None) -> httpx.Response:
    headers = {"X-Twilio-Signature": signature} if signature is not None else {}
    async with httpx.AsyncClient() as http:
        return await http.post(url, data=params, headers=headers)


@pytest.mark.parametrize("path", WEBHOOKS)
async def test_every_webhook_refuses_forged_signatures(base: str, path: str) -> None:
    url = base + path + "?call=" + CALL_SID
    params = call_params()
    valid = SIGNER.sign(url, params)
    other_url = SIGNER.sign(base + "/twilio/elsewhere?call=" + CALL_SID, params)
    tampered = valid[:-2] + ("AA" if not valid.endswith("AA") else "BB")
    probes = {
        "missing": await signed_post(url, params, None),
        "tampered": await signed_post(url, params, tampered),
        "another URL": await signed_post(url, params, other_url),
        "extra param after signing": await signed_post(url, {**params, "Digits": "1"}, valid),
        "another call's SID": await signed_post(url, {**params, "CallSid": "CA" + "8" * 32}, valid),
    }
    assert {name: r.status_code for name, r in probes.items()} == dict.fromkeys(probes, 403)


async def test_a_replayed_webhook_changes_nothing_twice(base: str) -> None:
    """Twilio retries: a replay of a valid request is answered the same, never as a new call."""
    first = await post(base, "/twilio/voice", call_params())
    second = await post(base, "/twilio/voice", call_params())
    assert first.status_code == second.status_code == 200


@pytest.mark.parametrize(("method", "path"), API_ROUTES + GUARDED_LIKE_THE_API)
@pytest.mark.parametrize("token", [None, "", "Bearer wrong", f"Basic {API}", f"Bearer {API}x"])
async def test_every_api_route_needs_the_bearer_token(base: str, method: str, path: str, token: str | None) -> None:
    headers = {"Authorization": token} if token is not None else {}
    async with httpx.AsyncClient() as http:
        response = await http.request(method, base + path, headers=headers)
    assert response.status_code == 401


async def test_upgrades_signed_for_another_url_or_with_a_query_are_refused(base: str) -> None:
    host = base.split("//")[1]
    for signed in (None, f"ws://{host}/twilio/elsewhere", f"ws://{host}/twilio/media?call={CALL_SID}"):
        with pytest.raises(websockets.InvalidStatus) as refused:
            await open_media(base, signed)
        assert refused.value.response.status_code == 403


async def test_a_stream_replaying_another_calls_ticket_is_refused(base: str) -> None:
    answered = await post(base, "/twilio/voice", call_params(CallSid="CA" + "5" * 32))
    ticket = answered.text.split(f'name="{TICKET_PARAMETER}" value="')[1].split('"')[0]
    ws = await open_media(base, "ws://{host}/twilio/media".format(host=base.split("//")[1]))
    script = StreamScript(call_sid=CALL_SID)
    await ws.send(script.connected())
    await ws.send(script.start({TICKET_PARAMETER: ticket}))
    with pytest.raises(websockets.ConnectionClosed):
        async with asyncio.timeout(3):
            async for _ in ws:
                pass
    assert ws.close_code == 1008

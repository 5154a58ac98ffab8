"""The FastAPI app on a real loopback socket: webhooks, signatures on webhooks and the websocket upgrade,
the TwiML each route answers, and the token-protected API."""

from __future__ import annotations

import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest
import websockets
from pydantic import SecretStr

from telephony.replay.in_process import serve_in_process
from telephony.server.app import create_app
from telephony.server.services import build_services, oracle_of
from telephony.server.settings import Settings
from tests.telephony.conftest import CALL_SID, FixedSynthesizer
from tests.telephony.server.harness import API, AUTH, SIGNER, call_params, make_services, open_media, post


async def test_voice_webhook_answers_connect_stream_with_the_call_data_as_parameters(server) -> None:  # type: ignore[no-untyped-def]
    base, _ = server
    response = await post(base, "/twilio/voice", call_params())
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/xml")
    root = ET.fromstring(response.text)
    connect = root.find("Connect")
    assert connect is not None and connect.get("action") == base + "/twilio/stream-ended"
    stream = connect.find("Stream")
    assert stream is not None and stream.get("url") == base.replace("http://", "ws://") + "/twilio/media"
    params = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    assert params["call_sid"] == CALL_SID and params["caller"] == "+15551230000"


async def test_public_url_makes_the_stream_url_wss(server) -> None:  # type: ignore[no-untyped-def]
    services = make_services(public_url="https://bot.example.com")
    async with serve_in_process(create_app(services)) as base:
        params = call_params()
        signature = SIGNER.sign("https://bot.example.com/twilio/voice", params)
        async with httpx.AsyncClient() as http:
            response = await http.post(base + "/twilio/voice", data=params, headers={"X-Twilio-Signature": signature})
    stream = ET.fromstring(response.text).find("Connect/Stream")
    assert stream is not None and stream.get("url") == "wss://bot.example.com/twilio/media"


@pytest.mark.parametrize("signature", [None, "", "bm90IGEgc2lnbmF0dXJl", "tampered"])
async def test_webhooks_without_a_valid_signature_get_403(server, signature: str | None) -> None:  # type: ignore[no-untyped-def]
    base, services = server
    if signature == "tampered":
        signature = SIGNER.sign(base + "/twilio/voice", call_params(From="+15550000000"))
    for path in ("/twilio/voice", "/twilio/stream-ended", "/twilio/whisper", "/twilio/dial-status"):
        response = await post(base, path, call_params(), signature)
        assert response.status_code == 403, path
    assert services.registry.get(CALL_SID) is None


async def test_signature_checking_can_be_turned_off_only_explicitly() -> None:
    services = make_services(validate_signatures=False)
    async with serve_in_process(create_app(services)) as base:
        response = await post(base, "/twilio/voice", call_params(), None)
    assert response.status_code == 200


@pytest.mark.parametrize(
    "form", ["ws://{host}/twilio/media", "ws://{host}/twilio/media/", "http://{host}/twilio/media"]
)
async def test_media_upgrade_accepts_each_url_form_twilio_may_sign(server, form: str) -> None:  # type: ignore[no-untyped-def]
    base, _ = server
    ws = await open_media(base, form.format(host=base.split("//")[1]))
    await ws.close()


@pytest.mark.parametrize("signed", [None, "ws://evil.example.com/twilio/media", "ws://{host}/twilio/media?x=1"])
async def test_media_upgrade_without_a_valid_signature_is_refused_with_403(server, signed: str | None) -> None:  # type: ignore[no-untyped-def]
    base, _ = server
    with pytest.raises(websockets.InvalidStatus) as refused:
        await open_media(base, signed.format(host=base.split("//")[1]) if signed else None)
    assert refused.value.response.status_code == 403


async def test_stream_ended_with_no_record_of_the_call_sends_it_to_a_person(server) -> None:  # type: ignore[no-untyped-def]
    base, services = server
    response = await post(base, "/twilio/stream-ended", call_params(CallStatus="in-progress"))
    root = ET.fromstring(response.text)
    assert [child.tag for child in root] == ["Say", "Dial"]  # nothing after <Dial>
    dial = root.find("Dial")
    assert dial is not None and dial.get("answerOnBridge") == "true"
    number = dial.find("Number")
    assert number is not None and number.text == services.settings.transfer_number
    record = services.registry.get(CALL_SID)
    assert record is not None and record.decision is not None
    assert record.decision.package.reason.trigger == "stream_lost"


async def test_whisper_speaks_the_package_then_asks_the_agent_to_press_one(server) -> None:  # type: ignore[no-untyped-def]
    base, _ = server
    await post(base, "/twilio/stream-ended", call_params(CallStatus="in-progress"))
    agent = call_params(CallSid="CA" + "9" * 32, ParentCallSid=CALL_SID)
    root = ET.fromstring((await post(base, f"/twilio/whisper?call={CALL_SID}&attempt=0", agent)).text)
    gather = root.find("Gather")
    assert gather is not None and gather.get("numDigits") == "1"
    spoken = [e.text or "" for e in gather.findall("Say")]
    assert "Incoming call for general" in spoken[0] and "Press 1" in spoken[1]
    accepted = ET.fromstring(
        (await post(base, f"/twilio/accept?call={CALL_SID}&attempt=0", {**agent, "Digits": "1"})).text
    )
    assert len(accepted) == 0  # an empty response ends the whisper and bridges the call


@pytest.mark.parametrize(
    ("status", "accept", "verbs"),
    [
        ("completed", True, ["Hangup"]),  # bridged, and the call has ended
        ("completed", False, ["Gather", "Redirect"]),  # the whisper was declined: offer a callback or voicemail
        ("busy", False, ["Gather", "Redirect"]),
        ("no-answer", False, ["Gather", "Redirect"]),
        ("failed", False, ["Gather", "Redirect"]),
    ],
)
async def test_every_dial_status_has_a_next_step(server, status: str, accept: bool, verbs: list[str]) -> None:  # type: ignore[no-untyped-def]
    base, _ = server
    await post(base, "/twilio/stream-ended", call_params(CallStatus="in-progress"))
    if accept:
        await post(base, f"/twilio/accept?call={CALL_SID}&attempt=0", call_params(Digits="1"))
    response = await post(base, f"/twilio/dial-status?call={CALL_SID}&attempt=0", call_params(DialCallStatus=status))
    assert [child.tag for child in ET.fromstring(response.text)] == verbs


async def test_a_caller_who_hung_up_gets_hangup_not_a_transfer(server) -> None:  # type: ignore[no-untyped-def]
    base, _ = server
    response = await post(base, "/twilio/stream-ended", call_params(CallStatus="completed"))
    assert [child.tag for child in ET.fromstring(response.text)] == ["Hangup"]


@pytest.mark.parametrize(("header", "status"), [(None, 401), ("Bearer wrong", 401), ("Basic " + API, 401)])
async def test_the_api_needs_the_bearer_token(server, header: str | None, status: int) -> None:  # type: ignore[no-untyped-def]
    base, _ = server
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{base}/api/calls/{CALL_SID}", headers={"Authorization": header} if header else {})
    assert response.status_code == status


async def test_the_api_returns_the_call_record(server) -> None:  # type: ignore[no-untyped-def]
    base, _ = server
    await post(base, "/twilio/voice", call_params())
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{base}/api/calls/{CALL_SID}", headers={"Authorization": f"Bearer {API}"})
        missing = await http.get(f"{base}/api/calls/CAnope", headers={"Authorization": f"Bearer {API}"})
    assert response.status_code == 200 and response.json()["caller"] == "+15551230000"
    assert missing.status_code == 404


async def test_the_api_is_off_until_a_token_is_configured() -> None:
    services = make_services(api_token=SecretStr(""))
    async with serve_in_process(create_app(services)) as base, httpx.AsyncClient() as http:
        response = await http.get(f"{base}/api/calls/{CALL_SID}", headers={"Authorization": "Bearer anything"})
    assert response.status_code == 503 and "HANDOFF_API_TOKEN" in response.text


class NamedRecognizers:
    """A recogniser factory that is not oracle ASR; no call is placed, so it never makes a recogniser."""

    name = "vosk"

    def new_recognizer(self, call_sid: str) -> object:
        raise AssertionError("no call expected")


async def test_the_oracle_script_route_exists_only_on_an_oracle_server() -> None:
    settings = Settings(
        twilio_auth_token=SecretStr(AUTH), api_token=SecretStr(API), data_dir=Path(tempfile.mkdtemp()), _env_file=None
    )  # type: ignore[call-arg]
    services = build_services(settings, recognizers=NamedRecognizers(), synthesizer=FixedSynthesizer())  # type: ignore[arg-type]
    async with serve_in_process(create_app(services)) as base, httpx.AsyncClient() as http:
        response = await http.post(
            f"{base}/api/oracle/{CALL_SID}", json={"utterances": []}, headers={"Authorization": f"Bearer {API}"}
        )
        schema = (await http.get(base + "/openapi.json")).json()
    assert response.status_code == 404
    assert not any("oracle" in path for path in schema["paths"])


async def test_an_oracle_server_takes_a_script_for_a_coming_call(server) -> None:  # type: ignore[no-untyped-def]
    base, services = server
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{base}/api/oracle/{CALL_SID}",
            json={"utterances": [{"text": "agent"}]},
            headers={"Authorization": f"Bearer {API}"},
        )
    assert response.status_code == 200 and response.json()["utterances"] == 1
    oracle = oracle_of(services.recognition)
    assert oracle is not None
    recognizer = oracle.new_recognizer(CALL_SID)
    recognizer.start_utterance(0)
    final = recognizer.finish_utterance(0, 400)
    assert final is not None and final.text == "agent"


async def test_openapi_schema_describes_the_routes(server) -> None:  # type: ignore[no-untyped-def]
    base, _ = server
    async with httpx.AsyncClient() as http:
        schema = (await http.get(base + "/openapi.json")).json()
    for path in (
        "/twilio/voice",
        "/twilio/stream-ended",
        "/twilio/whisper",
        "/twilio/dial-status",
        "/api/calls/{call_sid}",
    ):
        assert path in schema["paths"]


async def test_a_draining_instance_fails_its_health_check_and_refuses_new_streams_with_503(server) -> None:  # type: ignore[no-untyped-def]
    base, services = server
    async with httpx.AsyncClient() as http:
        assert (await http.get(base + "/healthz")).status_code == 200
        services.draining = True  # what SIGTERM sets first (telephony/server/drain.py)
        health = await http.get(base + "/healthz")
    assert health.status_code == 503 and health.json()["status"] == "draining"
    with pytest.raises(websockets.InvalidStatus) as refused:
        await open_media(base, "ws://{host}/twilio/media".format(host=base.split("//")[1]))
    assert refused.value.response.status_code == 503  # nginx tries the next instance
    response = await post(base, "/twilio/voice", call_params())
    assert response.status_code == 200  # webhooks are still answered while the calls drain

"""The JSON API and what it serves after real calls: handoffs, callbacks, deliveries, and the stored record
surviving a server restart. Real app, real SQLite file, real websocket, Twilio's REST API faked on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from telephony.calls.records import CallDecision
from telephony.replay.in_process import serve_in_process, virtual_wire
from telephony.replay.player import ReplayOptions, TwilioPlayer, caller_audio
from telephony.replay.scenario import load_scenario
from telephony.replay.twilio_fake import TwilioFake
from telephony.server.app import create_app
from telephony.server.services import build_services
from tests.telephony.conftest import FixedSynthesizer
from tests.telephony.server.harness import API, AUTH, HEADERS, SCENARIOS, SECRET, Receiver, Server, settings_for
from voice.oracle import OracleRecognizerFactory
from voice.recognition import LocalRecognition


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    hook = Receiver()
    async with serve_in_process(hook.app()) as base:
        yield hook, base + "/hook"


@pytest.fixture
async def server(tmp_path: Path, receiver: tuple[Receiver, str]) -> AsyncIterator[Server]:
    _, hook_url = receiver
    async with TwilioFake.running(auth_token=AUTH) as fake:
        settings = settings_for(tmp_path / "data", fake, webhook_urls=[hook_url], webhook_secret=SecretStr(SECRET))
        services = build_services(settings, recognizers=OracleRecognizerFactory(), synthesizer=FixedSynthesizer(600))
        services.deliverer.backoff_initial_s = 0.01  # type: ignore[union-attr]
        app = create_app(services)
        async with serve_in_process(app) as base:
            yield Server(base, services, fake, app)


async def test_handoffs_are_listed_by_status_and_queue(server: Server, tmp_path: Path) -> None:
    await server.replay("reject_whisper_next_target.yaml", tmp_path / "tts")
    await server.replay("caller_hangs_up_during_whisper.yaml", tmp_path / "tts")
    everything = await server.get("/api/handoffs")
    assert len(everything) == 2
    bridged = await server.get("/api/handoffs?status=bridged")
    assert [h["queue"] for h in bridged] == ["accounts"]
    assert await server.get("/api/handoffs?queue=orders") and not await server.get("/api/handoffs?queue=sales")


async def test_callbacks_are_listed_and_marked_done(server: Server, tmp_path: Path) -> None:
    result = await server.replay("caller_hangs_up_during_whisper.yaml", tmp_path / "tts")
    (callback,) = await server.get("/api/callbacks?status=requested")
    assert callback["call_sid"] == result.call_sid and callback["number"] == "+15551230003"
    assert callback["window"] == "soon" and callback["due_at"]
    async with httpx.AsyncClient() as http:
        done = await http.post(
            f"{server.base}/api/callbacks/{callback['id']}/done",
            headers=HEADERS,
            json={"notes": "called back, resolved"},
        )
        missing = await http.post(f"{server.base}/api/callbacks/9999/done", headers=HEADERS)
    assert done.status_code == 200 and missing.status_code == 404
    assert await server.get("/api/callbacks?status=requested") == []
    assert (await server.get("/api/callbacks?status=done"))[0]["notes"] == "called back, resolved"


async def test_the_call_record_has_transcript_package_routing_attempts_and_outcome(
    server: Server, tmp_path: Path
) -> None:
    result = await server.replay("agent_busy_voicemail.yaml", tmp_path / "tts")
    record = await server.get(f"/api/calls/{result.call_sid}")
    assert [t["speaker"] for t in record["transcript"]][:2] == ["bot", "caller"]
    assert record["handoff"]["package"]["reason"]["trigger"] == "explicit_request"
    assert record["handoff"]["routing"]["queue"] == "accounts" and record["handoff"]["routing"]["reasons"]
    assert [a["outcome"] for a in record["dial_attempts"]] == ["busy", "busy"]
    assert record["voicemails"][0]["recording_sid"].startswith("RE")
    assert record["handoff"]["status"] == "voicemail"
    assert record["writes_pending"] == 0  # everything the call wrote is stored: what is shown is the stored state


async def test_each_package_is_delivered_signed_to_the_help_desk(
    server: Server, receiver: tuple[Receiver, str], tmp_path: Path
) -> None:
    hook, _ = receiver
    result = await server.replay("billing_dispute.yaml", tmp_path / "tts")
    await server.services.deliverer.drain()  # type: ignore[union-attr]
    (delivery,) = hook.received
    assert delivery["ok"]  # the HMAC-SHA256 signature verifies
    assert delivery["body"]["package"]["call_sid"] == result.call_sid
    assert "risk_compliance" in delivery["body"]["ticket_note"]
    (stored,) = await server.get("/api/deliveries?status=delivered")
    assert stored["delivery_id"] == delivery["id"]


async def test_a_failed_delivery_is_kept_and_can_be_sent_again(
    server: Server, receiver: tuple[Receiver, str], tmp_path: Path
) -> None:
    hook, _ = receiver
    hook.failing = True
    await server.replay("cancellation.yaml", tmp_path / "tts")
    await server.services.deliverer.drain()  # type: ignore[union-attr]
    (failed,) = await server.get("/api/deliveries?status=failed")
    assert failed["attempts"] == 5 and "500" in failed["last_error"]
    hook.failing = False
    async with httpx.AsyncClient() as http:
        resent = await http.post(f"{server.base}/api/deliveries/{failed['delivery_id']}/resend", headers=HEADERS)
    assert resent.json() == {"delivery_id": failed["delivery_id"], "delivered": True}
    assert hook.received[-1]["id"] == failed["delivery_id"] and hook.received[-1]["ok"]


async def test_a_restart_mid_call_loses_nothing(tmp_path: Path) -> None:
    """The first server decides a handoff and dies before Twilio asks <Connect action>; the second carries it out."""
    async with TwilioFake.running(auth_token=AUTH) as fake:
        settings = settings_for(tmp_path / "data", fake, rest_transfers=False)
        first = build_services(settings, recognizers=OracleRecognizerFactory(), synthesizer=FixedSynthesizer(400))
        async with virtual_wire(create_app(first), first) as wire:
            scenario = load_scenario(SCENARIOS / "websocket_drop_mid_handoff.yaml")
            player = TwilioPlayer(wire, auth_token=AUTH, api_token=API, options=ReplayOptions())
            audio = await caller_audio(scenario, FixedSynthesizer(1500).synthesize)
            call_sid = "CA" + "5" * 32
            params = await player.stream_only(scenario, audio, call_sid)
            decided = first.registry.get(call_sid)
            assert decided is not None and isinstance(decided.decision, CallDecision)
        # the first server is gone; a new one opens the same database
        second = build_services(settings, recognizers=OracleRecognizerFactory(), synthesizer=FixedSynthesizer(400))
        async with serve_in_process(create_app(second)) as base:
            signer = player.signer
            url = base + "/twilio/stream-ended"
            form = {**params, "CallStatus": "in-progress"}
            async with httpx.AsyncClient() as http:
                answer = await http.post(url, data=form, headers={"X-Twilio-Signature": signer.sign(url, form)})
                assert "<Dial" in answer.text and "+15005550002" in answer.text
                whisper_url = base + f"/twilio/whisper?call={call_sid}&attempt=0"
                leg = {**params, "CallSid": "CA" + "6" * 32}
                whisper = await http.post(
                    whisper_url, data=leg, headers={"X-Twilio-Signature": signer.sign(whisper_url, leg)}
                )
            assert "order" in whisper.text.lower()  # the package came back from the database


class HeardSeconds:
    """A recogniser (the real interface) that reports how much audio it was given: proves the recording
    was fetched from Twilio and decoded, without needing a vosk model on this machine."""

    name = "test"

    def new_recognizer(self, key: str) -> Any:
        from voice.stt import Transcript

        class Recognizer:
            fed = 0

            def start_utterance(self, t_ms: int) -> None: ...

            def accept(self, pcm8k: bytes) -> None:
                self.fed += len(pcm8k)

            def settle(self) -> None: ...

            def finish_utterance(self, start_ms: int, end_ms: int) -> Transcript:
                return Transcript(f"heard {self.fed // 16000} seconds", 0.9, start_ms, end_ms, (), True, "test")

            def set_phrases(self, phrases: tuple[str, ...]) -> None: ...

            def close(self) -> None: ...

        return Recognizer()


async def test_a_voicemail_is_fetched_from_twilio_and_transcribed_offline(server: Server, tmp_path: Path) -> None:
    server.services.desk.voicemail.transcriber = LocalRecognition(HeardSeconds())  # type: ignore[arg-type]
    result = await server.replay("agent_busy_voicemail.yaml", tmp_path / "tts")
    (voicemail,) = (await server.get(f"/api/calls/{result.call_sid}"))["voicemails"]
    seconds = result.outcome["voicemail"]["duration_s"]
    assert voicemail["transcript"].startswith("heard ") and abs(int(voicemail["transcript"].split()[1]) - seconds) <= 1
    assert server.fake.requests_to("/Recordings/", "GET")

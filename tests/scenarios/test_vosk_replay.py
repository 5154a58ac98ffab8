"""Whole calls recognised by real vosk (no oracle anywhere): Korean callers with the Korean test model and the
Korean test pack, through the server's recognition workers; and a worker that dies mid-call hands its call on
while another call on the same server completes. English content runs when an English model is present."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
from pathlib import Path

import pytest
from pydantic import SecretStr

from telephony.replay.checks import check
from telephony.replay.player import ReplayOptions, TwilioPlayer, caller_audio
from telephony.replay.result import ReplayResult
from telephony.replay.scenario import Scenario, load_scenario
from telephony.replay.twilio_fake import TwilioFake
from telephony.replay.wires import VirtualWire
from telephony.server.app import create_app
from telephony.server.services import Services, build_services
from telephony.server.settings import Settings
from tests.scenarios.conftest import load, replay, timeline
from voice.asr_pool import PooledRecognition
from voice.tts import SpeechSynthesizer

PACKS = Path(__file__).resolve().parents[1] / "packs"
KOREAN = PACKS / "scenarios_ko" / "agent_then_login.yaml"
KOREAN_AUDIO = PACKS.parent.parent / "audio_fixtures" / "ko"

pytestmark = pytest.mark.vosk


@pytest.fixture(scope="module")
def korean(settings: Settings, korean_model_path: Path) -> Settings:
    return settings.model_copy(
        update={
            "bot_pack": PACKS / "hanbit_ko.yaml",
            "vosk_model_path": korean_model_path,
            "asr_workers": 2,
            "asr_prewarm": 0,
        }
    )


@pytest.mark.language("ko")
async def test_a_korean_caller_is_recognised_by_vosk_and_handed_off_with_their_words(korean: Settings) -> None:
    scenario = load_scenario(KOREAN)
    result = await replay(scenario, korean, asr="vosk")
    assert result.asr == "vosk" and result.passed, timeline(result)
    caller = [t for t in result.transcript if t["speaker"] == "caller"]
    assert len(caller) == 2 and "상담원" in caller[0]["text"] and "로그인" in caller[1]["text"]
    assert all(0.0 < (t["confidence"] or 0) <= 1.0 for t in caller)
    handoff = result.handoff
    assert handoff is not None and handoff["reason"]["trigger"] == "explicit_request"
    assert "상담원" in handoff["primary_issue"]  # the package carries what vosk recognised
    assert [t["text"] for t in handoff["transcript"] if t["speaker"] == "caller"] == [t["text"] for t in caller]


@pytest.mark.language("ko")
async def test_each_sentence_of_a_call_is_heard_whole_and_a_plain_yes_is_not_taken_for_distress(
    korean: Settings,
) -> None:
    fixtures = KOREAN_AUDIO
    steps: list[dict[str, object]] = [
        {"say": "로그인 이 안 돼요", "audio": str(fixtures / "login.wav")}, {"silence_ms": 1500},
        {"say": "네", "audio": str(fixtures / "yes.wav")}, {"silence_ms": 3000}, {"hangup": True},
    ]  # fmt: skip
    scenario = Scenario.model_validate({"name": "two-sentences", "call": {"from": "+15551230007"}, "caller": steps})
    result = await replay(scenario, korean, asr="vosk")
    # the end of the first sentence once opened the second ("로그인 이 안" then "돼요 네"): vosk's Result leaves
    # its last half second undecoded in a decoder the next utterance reuses
    assert [t["text"] for t in result.transcript if t["speaker"] == "caller"] == ["로그인 이 안 돼요", "네"]
    handoff = result.handoff
    assert handoff is None or handoff["reason"]["trigger"] != "distress_marker", timeline(result)


async def play(services: Services, wire: VirtualWire, fake: TwilioFake, scenario: Scenario, sid: str) -> ReplayResult:
    synth = SpeechSynthesizer(services.settings.tts_cache_dir, rate=165)
    try:
        audio = await caller_audio(scenario, synth.synthesize)
    finally:
        synth.close()
    token = services.settings.twilio_auth_token.get_secret_value()
    api = services.settings.api_token.get_secret_value()
    player = TwilioPlayer(wire, auth_token=token, api_token=api, options=ReplayOptions(asr="vosk"), fake=fake)
    result = await player.run(
        scenario.model_copy(update={"call": scenario.call.model_copy(update={"call_sid": sid})}), audio
    )
    result.checks = [c.as_dict() for c in check(result, scenario.expect)]
    result.passed = all(c["ok"] for c in result.checks)
    return result


@pytest.mark.language("ko")
async def test_a_recognition_worker_that_dies_hands_its_call_on_while_another_call_completes(
    korean: Settings, tmp_path: Path
) -> None:
    scenario = load_scenario(KOREAN)
    doomed, survivor = "CA" + "d" * 32, "CA" + "5" * 32
    async with TwilioFake.running(korean.twilio_account_sid) as fake:
        settings = korean.model_copy(
            update={
                "twilio_auth_token": SecretStr(fake.auth_token),
                "api_token": SecretStr(secrets.token_hex(8)),
                "twilio_api_base_url": fake.base_url,
                "data_dir": tmp_path,
                "asr": "vosk",
            }
        )
        services = build_services(settings)
        assert isinstance(services.recognition, PooledRecognition)
        killed: list[int] = []

        async def settle(call_sid: str) -> None:
            session = services.streams.get(call_sid)
            if session is not None:
                await session.settle()
            record = services.registry.get(doomed)
            heard = [t for t in record.turns if t.speaker == "caller"] if record else []
            if call_sid == doomed and heard and not killed:  # the caller has said one thing: its engine aborts
                pid = services.recognition.worker_of(doomed)  # type: ignore[attr-defined]
                assert pid is not None and pid != services.recognition.worker_of(survivor)  # type: ignore[attr-defined]
                os.kill(pid, signal.SIGABRT)
                killed.append(pid)

        app = create_app(services)
        async with app.router.lifespan_context(app):
            wire = VirtualWire(app, settle)
            failed, completed = await asyncio.gather(
                play(services, wire, fake, scenario, doomed), play(services, wire, fake, scenario, survivor)
            )
    assert killed, "the doomed call's worker was never found"
    assert failed.handoff is not None, timeline(failed)
    assert (failed.handoff["reason"]["category"], failed.handoff["reason"]["trigger"]) == (
        "confidence_gap",
        "recognizer_failed",
    )
    assert "상담원" in failed.handoff["primary_issue"]  # handed on with what the caller had already said
    assert failed.outcome["kind"] == "transfer", (failed.outcome, timeline(failed))  # the caller reached a person
    assert completed.passed, timeline(completed)  # the other call on the same server went on to its handoff


@pytest.mark.language("en")
async def test_an_english_caller_asking_for_a_person_is_recognised_by_vosk_and_transferred(
    english_model_path: Path, settings: Settings
) -> None:
    vosk_settings = settings.model_copy(
        update={"vosk_model_path": english_model_path, "asr_workers": 1, "asr_prewarm": 0}
    )
    result = await replay(load("talk_to_a_person.yaml"), vosk_settings, asr="vosk")
    assert result.asr == "vosk"
    assert result.outcome.get("kind") == "transfer", timeline(result)
    caller = [t for t in result.transcript if t["speaker"] == "caller"]
    assert caller and "person" in caller[0]["text"]
    assert result.handoff is not None and result.handoff["reason"]["trigger"] == "explicit_request", timeline(result)

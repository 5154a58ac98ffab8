"""Abrupt drops at random points: whenever the media websocket drops, Twilio's `<Connect action>` gets the
caller to a person with what they had said by then, and the call is stored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telephony.replay.scenario import Scenario
from tests.faults.conftest import running

SENTENCES = [
    "Hi, I need some help with an order I placed.",
    "Where is my order? The number is 4 8 1 5 2 3.",
    "My last delivery never came and nobody called me back.",
]


def _said_in_full(events: list[dict[str, Any]]) -> list[str]:
    """The sentences the caller finished before the line closed (a transfer can end the stream sooner)."""
    said: list[str] = []
    speaking: str | None = None
    for event in events:
        if event.get("source") != "line":
            continue
        if event["kind"] == "caller_speech_start":
            speaking = event["detail"]["text"]
        elif event["kind"] == "caller_speech_end" and speaking is not None:
            said.append(speaking)
            speaking = None
    return said


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(said=st.integers(0, 2), before_ms=st.integers(20, 6000), barge=st.booleans())
async def test_a_drop_anywhere_hands_the_caller_on_with_what_they_said(
    tmp_path: Path, said: int, before_ms: int, barge: bool
) -> None:
    steps: list[dict[str, object]] = [{"say": text} for text in SENTENCES[:said]]
    steps.append({"silence_ms": before_ms, "wait_for_bot": not barge})
    steps.append({"drop": True})
    scenario = Scenario.model_validate({"name": "random-drop", "call": {"from": "+15551230003"}, "caller": steps})
    async with running(tmp_path / f"data-{said}-{before_ms}-{barge}") as server:
        result = await server.replay_scenario(scenario, tmp_path / "tts")
        assert result.handoff is not None, result.outcome  # a person takes it (or calls back), with a package
        transcript = " ".join(t["text"] for t in result.handoff["transcript"] if t["speaker"] == "caller")
        spoken = _said_in_full(result.events)
        assert len(spoken) >= min(said, 1)  # the first sentence is always said in full
        for text in spoken:
            assert text.rstrip(".") in transcript  # nothing the caller said is lost
        assert await server.services.desk.ledger.outbox.flush(10)
        stored = await server.get(f"/api/calls/{result.call_sid}")
        assert stored["call_sid"] == result.call_sid and stored.get("stored", True) is not False

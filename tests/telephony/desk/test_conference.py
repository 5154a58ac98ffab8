"""The conference transfer's desk side without Twilio: who is rung, when the caller is moved in, the short brief,
and a caller who hangs up first (issue 12, the warm transfer that briefs in parallel).

Whole calls through the replay harness and the Twilio fake are the `conference_*` scenarios.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from dialogs.pack import load_pack
from dialogs.package import EscalationReason, HandoffPackage
from dialogs.routing import RoutingDecision, Target
from dialogs.summary import brief
from telephony.calls.metrics import Metrics
from telephony.calls.records import CallDecision, CallRecord
from telephony.calls.registry import CallRegistry
from telephony.desk.callbacks import Callbacks
from telephony.desk.conference import ConferenceTransfers
from telephony.desk.ledger import Ledger
from telephony.desk.outbox import Outbox
from telephony.desk.targets import TransferConfig
from telephony.replay.conference import spoken_ms
from telephony.store.notices import Notice

PACK = load_pack()
CALL_SID = "CA" + "4" * 32
PHONE = Target(kind="phone", number="+15005550001")


def decided() -> CallRecord:
    package = HandoffPackage(
        handoff_id=f"{CALL_SID}-h1", call_sid=CALL_SID,
        primary_issue="Cannot sign in to the Larkspur account or patient portal.\nIn the caller's words: \"locked\"",
        user_goal="Get back into the account", recommended_queue="accounts", urgency="high",
        reason=EscalationReason(category="distress", trigger="repeated_failure", detail="tried twice"),
    )  # fmt: skip
    record = CallRecord(call_sid=CALL_SID)
    record.decision = CallDecision(
        kind="handoff", reason="repeated_failure", decided_ms=1000, package=package,
        routing=RoutingDecision(queue="accounts", mode="transfer", targets=(PHONE,), reasons=()),
    )  # fmt: skip
    return record


class Rest:
    """The REST calls the conference makes, recorded."""

    def __init__(self) -> None:
        self.created: list[dict[str, object]] = []
        self.cancelled: list[tuple[str, bool]] = []

    def create_call(self, to: str, from_: str, url: str, **kwargs: object) -> str:
        self.created.append({"to": to, "url": url, **kwargs})
        return "CA" + str(len(self.created)) * 32

    def cancel_leg(self, sid: str, in_progress: bool) -> None:
        self.cancelled.append((sid, in_progress))

    def redirect_call(self, sid: str, twiml: str) -> None: ...


def conference(rest: Rest, registry: CallRegistry) -> ConferenceTransfers:
    ledger = Ledger(registry, None, Outbox())
    callbacks = Callbacks(ledger, PACK, lambda: datetime.now(UTC))
    config = TransferConfig("+15005550006", "+15005550000", 20, conference=True)
    return ConferenceTransfers(ledger, PACK, config, callbacks, rest, Metrics(), lambda d: [PHONE])  # type: ignore[arg-type]


async def test_the_agent_is_rung_with_the_brief_url_and_a_status_callback() -> None:
    rest, registry = Rest(), CallRegistry()
    desk = conference(rest, registry)
    record = decided()
    registry.adopt(record)
    assert await desk.ring(record, [PHONE], 0, "https://h.example")
    (call,) = rest.created
    assert call["to"] == "+15005550001" and "/twilio/conference/agent?" in str(call["url"])
    assert "/twilio/conference/agent-status?" in str(call["status_callback"])
    assert record.progress.agent_legs == {0: "CA" + "1" * 32} and record.progress.conference


async def test_the_caller_is_moved_in_as_soon_as_the_agent_takes_the_call() -> None:
    rest, registry = Rest(), CallRegistry()
    desk = conference(rest, registry)
    record = decided()
    record.progress.agent_legs[0] = "CA" + "1" * 32
    registry.adopt(record)  # the live call, as the webhooks find it
    announcement = asyncio.Event()  # never set: a long announcement still playing
    moving = asyncio.create_task(desk.ready_to_move(record, announcement.wait()))
    await asyncio.sleep(0.05)
    assert not moving.done()  # nobody has taken the call: the caller keeps hearing what happens next
    answer = await desk.accept(CALL_SID, 0, {"Digits": "1"})
    await asyncio.wait_for(moving, 1)  # ... until an agent presses 1: then at once
    assert "<Conference" in answer and f"handoff-{CALL_SID}" in answer


async def test_without_an_agent_waiting_the_announcement_plays_to_its_end() -> None:
    desk = conference(Rest(), CallRegistry())
    record = decided()
    record.progress.agent_legs[0] = "CA" + "1" * 32
    announcement = asyncio.Event()
    moving = asyncio.create_task(desk.ready_to_move(record, announcement.wait()))
    await asyncio.sleep(0.05)
    assert not moving.done()
    announcement.set()
    await asyncio.wait_for(moving, 1)


def test_the_brief_is_short_enough_to_bridge_within_seconds() -> None:
    record = decided()
    package = record.decision.package  # type: ignore[union-attr]
    said = brief(package, PACK.agent) + " " + PACK.agent.press_one_short  # type: ignore[arg-type]
    assert said.startswith("Accounts call. Urgent.")
    assert spoken_ms(said) <= 5000  # about 12 words; the card on the console has the rest


async def test_word_from_another_instance_that_an_agent_took_the_call_moves_the_caller_in() -> None:
    desk = conference(Rest(), CallRegistry())  # the instance with the caller's stream
    record = decided()
    record.progress.agent_legs[0] = "CA" + "1" * 32
    announcement = asyncio.Event()
    moving = asyncio.create_task(desk.ready_to_move(record, announcement.wait()))
    await asyncio.sleep(0.05)
    desk.heard(Notice("taken", "CA" + "9" * 32))  # another call's news: nothing here moves
    desk.heard(Notice("ringing", CALL_SID))
    await asyncio.sleep(0.05)
    assert not moving.done()
    desk.heard(Notice("taken", CALL_SID))  # the agent pressed 1 on another instance (LISTEN/NOTIFY)
    await asyncio.wait_for(moving, 1)


class HungEventLog:
    """A store whose event log does not answer (a lock, a slow disk): reads of it hang for seconds."""

    def events(self, call_sid: str, kind: str | None = None) -> list[dict[str, object]]:
        time.sleep(3)
        return []


async def test_a_look_at_what_other_instances_logged_gives_up_within_half_a_second() -> None:
    ledger = Ledger(CallRegistry(), HungEventLog(), Outbox())  # type: ignore[arg-type]  (the method it needs)
    started = time.perf_counter()
    assert await ledger.logged(CALL_SID, "whisper_accepted") == []  # the webhook answers from memory
    assert time.perf_counter() - started < 1.0  # a full read would wait READ_DEADLINE_S (1.5 s)

"""The callback dialer: agent first (with the summary), then the caller with answering-machine detection;
a machine gets a message, never the agent. Real store, real twilio client against the loopback fake."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dialogs.pack import load_pack
from dialogs.package import EscalationReason, HandoffPackage
from telephony.desk.dialer import CallbackDialer
from telephony.replay.twilio_fake import TwilioFake
from telephony.store import Store, sqlite_url
from telephony.twilio.rest import TwilioRest

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
CALL = "CA" + "7" * 32


@pytest.fixture
async def dialer(tmp_path: Path) -> AsyncIterator[tuple[CallbackDialer, TwilioFake, int]]:
    store = Store(sqlite_url(tmp_path))
    store.migrate()
    package = HandoffPackage(
        handoff_id=f"{CALL}-h1",
        call_sid=CALL,
        primary_issue="Asking where an order is.",
        user_goal="Find the order.",
        reason=EscalationReason(category="capability_gap", trigger="explicit_request", detail="Asked for a person."),
        recommended_queue="orders",
    )
    store.save_handoff(CALL, package, {"queue": "orders", "mode": "callback"}, "callback")
    callback_id, _ = store.add_callback(CALL, package.handoff_id, "+15551230003", "soon", NOW - timedelta(minutes=1))
    async with TwilioFake.running(auth_token="dialer-token") as fake:
        rest = TwilioRest(fake.account_sid, "dialer-token", fake.base_url)
        pack = load_pack()
        yield (
            CallbackDialer(
                store,
                rest,
                "https://bot.example.com",
                caller_id="+15005550000",
                default_agent="+15005550099",
                pack=pack,
                clock=lambda: NOW,
            ),
            fake,
            callback_id,
        )
        rest.close()
    store.close()


async def test_a_due_callback_rings_the_queues_agent_first(dialer: tuple[CallbackDialer, TwilioFake, int]) -> None:
    dial, fake, callback_id = dialer
    assert await dial.run_once() == 1
    (created,) = fake.requests_to("/Calls.json", "POST")
    assert created.form["To"] == "+15005550002"  # the orders queue's first phone target, not the caller
    assert created.form["Url"].endswith(f"/twilio/callback/agent?callback={callback_id}")
    assert dial.store.list_callbacks("dialing")
    assert await dial.run_once() == 0  # not dialled twice


async def test_the_agent_hears_the_summary_then_the_caller_is_dialled_with_machine_detection(
    dialer: tuple[CallbackDialer, TwilioFake, int],
) -> None:
    dial, _, callback_id = dialer
    agent = ET.fromstring(dial.agent_twiml(callback_id))
    spoken = " ".join(s.text or "" for s in agent.iter("Say"))
    assert "where an order is" in spoken and "Press 1" in spoken
    accepted = ET.fromstring(dial.agent_accept_twiml(callback_id, "1"))
    number = accepted.find("Dial/Number")
    assert number is not None and number.text == "+15551230003" and number.get("machineDetection") == "Enable"
    assert next(iter(ET.fromstring(dial.agent_accept_twiml(callback_id, "9")))).tag == "Hangup"


async def test_a_person_is_bridged_and_the_callback_is_done(dialer: tuple[CallbackDialer, TwilioFake, int]) -> None:
    dial, _, callback_id = dialer
    assert len(ET.fromstring(dial.customer_twiml(callback_id, "human"))) == 0  # empty: bridge to the agent
    await dial.result(callback_id, "completed")
    assert [c["status"] for c in dial.store.list_callbacks()] == ["done"]


async def test_a_machine_gets_a_message_not_the_agent_and_is_tried_again_later(
    dialer: tuple[CallbackDialer, TwilioFake, int],
) -> None:
    dial, _, callback_id = dialer
    machine = ET.fromstring(dial.customer_twiml(callback_id, "machine_end_beep"))
    assert [child.tag for child in machine] == ["Say", "Hangup"]
    assert "returning your call" in (machine[0].text or "")
    await dial.result(callback_id, "completed")
    (callback,) = dial.store.list_callbacks()
    assert callback["status"] == "requested" and "machine" in callback["notes"]
    assert await dial.run_once() == 0  # waits before the next try

"""Transfer TwiML and dial outcomes: every DialCallStatus maps to an outcome with a next step, every document is
parsed back with xml.etree (nothing follows <Dial>/<Enqueue>, every URL absolute, Twilio's size limits kept), and a
card number the caller read out never reaches an agent, a SIP header or a task.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialogs.pack import load_pack
from dialogs.package import EscalationReason, HandoffPackage, KeyFact, TranscriptTurn
from dialogs.redaction import CARD_MASK, luhn_valid
from dialogs.routing import Target
from dialogs.summary import whisper
from telephony.calls.records import CallDecision
from telephony.calls.registry import CallRegistry
from telephony.desk.callbacks import Callbacks
from telephony.desk.ledger import Ledger
from telephony.desk.outcomes import NextStep, Outcome, next_step, outcome_of
from telephony.desk.targets import (
    SIP_HEADERS_MAX,
    TASK_ATTRIBUTES_MAX,
    TransferConfig,
    client_parameters,
    sip_uri,
    task_attributes,
    transfer_twiml,
)
from telephony.desk.transfers import Transfers, record_message
from telephony.twilio.twiml import PARAMETER_MAX_CHARS as PARAMETER_MAX
from telephony.twilio.twiml import Urls
from telephony.twilio.twiml import say_and_hang_up as goodbye_twiml

BASE = "https://handoff.example.com"
RING = TransferConfig("+15005550006", None, 20)
RING_WITH_ID = TransferConfig("+15005550006", "+15550000000", 25)
RING_WITH_ID_20 = TransferConfig("+15005550006", "+15550000000", 20)
CALL_SID = "CA" + "7" * 32
URLS = Urls(base=BASE, call_sid=CALL_SID)
CARD = "4111 1111 1111 1111"
CARD_DIGITS = CARD.replace(" ", "")
URL_ATTRIBUTES = frozenset(
    {"action", "url", "recordingStatusCallback", "statusCallback", "amdStatusCallback", "waitUrl", "transcribeCallback"}
)

PHONE = Target(kind="phone", number="+15005550001")
SIP = Target(kind="sip", uri="sip:billing@pbx.example", headers={"X-Queue": "billing"}, username="bot", password="pw")
CLIENT = Target(kind="client", identity="appointments_desk")
TASKROUTER = Target(kind="taskrouter", workflow_sid="WW" + "1" * 32)
TARGETS = (PHONE, SIP, CLIENT, TASKROUTER)


def make_package(**overrides: object) -> HandoffPackage:
    fields: dict[str, object] = {
        "handoff_id": f"{CALL_SID}-h1",
        "call_sid": CALL_SID,
        "primary_issue": 'Charged twice for order 481523.\nIn the caller\'s words: "I was billed twice"',
        "user_goal": "Get the duplicate charge refunded.",
        "key_facts": (KeyFact(kind="order_number", value="481523"),),
        "reason": EscalationReason(
            category="risk_compliance", trigger="billing_dispute", detail="Disputes need a person."
        ),
        "recommended_queue": "billing",
        "urgency": "high",
        "caller": "+15551230003",
        "transcript": (
            TranscriptTurn(speaker="bot", text="How can I help?", start_ms=0, end_ms=1200),
            TranscriptTurn(speaker="caller", text="I was billed twice.", start_ms=1500, end_ms=3000, confidence=0.9),
        ),
    }
    fields.update(overrides)
    return HandoffPackage.model_validate(fields)


def card_package() -> HandoffPackage:
    """A package whose caller read a Luhn-valid card number aloud, in every free-text field."""
    assert luhn_valid(CARD_DIGITS)
    return make_package(
        primary_issue=f"Wants to pay with card {CARD} today.",
        user_goal=f"Pay the bill with {CARD_DIGITS}.",
        key_facts=(KeyFact(kind="card", value=CARD), KeyFact(kind="order_number", value="481523")),
        reason=EscalationReason(category="risk_compliance", trigger="payment", detail=f"Card {CARD} read out."),
        transcript=(
            TranscriptTurn(speaker="caller", text=f"my card is {CARD}", start_ms=0, end_ms=3000, confidence=0.9),
            TranscriptTurn(speaker="caller", text=f"that's {CARD_DIGITS}", start_ms=3500, end_ms=6000),
        ),
    )


def parse(twiml: str) -> ET.Element:
    root = ET.fromstring(twiml.encode("utf-8"))
    assert root.tag == "Response"
    return root


def tags(element: ET.Element) -> list[str]:
    return [child.tag for child in element]


def query_of(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def sip_headers(uri: str) -> tuple[str, str, dict[str, str]]:
    """The URI before `?`, the raw header part, and the decoded headers."""
    address, _, header_part = uri.partition("?")
    return (
        address,
        header_part,
        {name: unquote(value) for name, _, value in (item.partition("=") for item in header_part.split("&"))},
    )


# --- outcomes and next steps ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "accepted", "whisper", "caller_gone", "answered_by", "expected"),
    [
        pytest.param("completed", True, True, False, None, Outcome.BRIDGED, id="completed-accepted"),
        pytest.param("completed", False, True, False, None, Outcome.DECLINED, id="completed-declined"),
        pytest.param("completed", False, False, False, None, Outcome.BRIDGED, id="completed-no-whisper"),
        pytest.param("completed", True, True, False, "human", Outcome.BRIDGED, id="completed-human"),
        pytest.param("completed", True, True, True, None, Outcome.BRIDGED, id="completed-then-gone"),
        pytest.param("answered", True, True, False, None, Outcome.BRIDGED, id="answered-accepted"),
        pytest.param("answered", False, True, False, None, Outcome.DECLINED, id="answered-declined"),
        pytest.param("answered", False, False, False, None, Outcome.BRIDGED, id="answered-no-whisper"),
        pytest.param("busy", False, True, False, None, Outcome.BUSY, id="busy"),
        pytest.param("no-answer", False, True, False, None, Outcome.NO_ANSWER, id="no-answer"),
        pytest.param("no-answer", False, False, False, None, Outcome.NO_ANSWER, id="no-answer-no-whisper"),
        pytest.param("failed", False, True, False, None, Outcome.FAILED, id="failed"),
        pytest.param("failed", False, False, False, None, Outcome.FAILED, id="failed-no-whisper"),
        pytest.param("canceled", False, True, False, None, Outcome.CALLER_HUNG_UP, id="canceled"),
        pytest.param("something-new", False, True, False, None, Outcome.FAILED, id="unknown-status"),
        pytest.param("", False, True, False, None, Outcome.FAILED, id="empty-status"),
        pytest.param("completed", False, True, True, None, Outcome.CALLER_HUNG_UP, id="gone-completed"),
        pytest.param("no-answer", False, True, True, None, Outcome.CALLER_HUNG_UP, id="gone-no-answer"),
        pytest.param("busy", False, False, True, None, Outcome.CALLER_HUNG_UP, id="gone-busy"),
        pytest.param("completed", False, True, False, "machine_start", Outcome.VOICEMAIL_REACHED, id="machine-start"),
        pytest.param("completed", False, True, False, "machine_end_beep", Outcome.VOICEMAIL_REACHED, id="machine-beep"),
        pytest.param(
            "completed", False, True, False, "machine_end_silence", Outcome.VOICEMAIL_REACHED, id="machine-silence"
        ),
        pytest.param(
            "completed", False, True, False, "machine_end_other", Outcome.VOICEMAIL_REACHED, id="machine-other"
        ),
        pytest.param("answered", False, True, False, "machine_start", Outcome.VOICEMAIL_REACHED, id="answered-machine"),
        pytest.param("completed", False, True, False, "unknown", Outcome.DECLINED, id="answered-by-unknown"),
    ],
)
def test_outcome_of_maps_each_dial_call_status_to_a_typed_outcome(
    status: str, accepted: bool, whisper: bool, caller_gone: bool, answered_by: str | None, expected: Outcome
) -> None:
    got = outcome_of(status, accepted=accepted, whisper=whisper, caller_gone=caller_gone, answered_by=answered_by)
    assert got is expected


@pytest.mark.parametrize(
    ("outcome", "attempt", "targets", "expected"),
    [
        (Outcome.BRIDGED, 0, 3, NextStep.DONE),
        (Outcome.BRIDGED, 2, 3, NextStep.DONE),
        (Outcome.CALLER_HUNG_UP, 0, 3, NextStep.SCHEDULE_CALLBACK),
        (Outcome.CALLER_HUNG_UP, 2, 3, NextStep.SCHEDULE_CALLBACK),
        *[
            (o, 0, 2, NextStep.NEXT_TARGET)
            for o in (Outcome.DECLINED, Outcome.BUSY, Outcome.NO_ANSWER, Outcome.FAILED, Outcome.VOICEMAIL_REACHED)
        ],
        *[
            (o, 1, 2, NextStep.OFFER_CALLBACK_OR_VOICEMAIL)
            for o in (Outcome.DECLINED, Outcome.BUSY, Outcome.NO_ANSWER, Outcome.FAILED, Outcome.VOICEMAIL_REACHED)
        ],
        (Outcome.NO_ANSWER, 0, 1, NextStep.OFFER_CALLBACK_OR_VOICEMAIL),
        (Outcome.BUSY, 1, 3, NextStep.NEXT_TARGET),
        (Outcome.BUSY, 2, 3, NextStep.OFFER_CALLBACK_OR_VOICEMAIL),
    ],
)
def test_next_step_tries_the_next_target_while_any_remain_then_offers_a_callback(
    outcome: Outcome, attempt: int, targets: int, expected: NextStep
) -> None:
    assert next_step(outcome, attempt, targets) is expected


def test_every_outcome_has_a_next_step_at_every_attempt() -> None:
    for outcome in Outcome:
        for targets in (1, 2, 4):
            for attempt in range(targets):
                assert next_step(outcome, attempt, targets) in NextStep


# --- transfer TwiML per target kind --------------------------------------------------------------------------


def test_urls_are_absolute_and_carry_the_call_and_query() -> None:
    url = URLS.of("/twilio/dial-status", attempt=2)
    assert url.startswith(f"{BASE}/twilio/dial-status?")
    assert query_of(url) == {"call": CALL_SID, "attempt": "2"}


@pytest.mark.parametrize("attempt", [0, 1, 3])
def test_a_phone_target_is_dialled_with_a_whisper_and_a_dial_status_action(attempt: int) -> None:
    root = parse(transfer_twiml(PHONE, attempt, make_package(), URLS, RING_WITH_ID))
    assert tags(root) == ["Dial"]
    dial = root[0]
    assert dial.get("action") == URLS.of("/twilio/dial-status", attempt=attempt)
    assert query_of(dial.get("action", "")) == {"call": CALL_SID, "attempt": str(attempt)}
    assert (dial.get("answerOnBridge"), dial.get("timeout"), dial.get("callerId")) == ("true", "25", "+15550000000")
    assert dial.get("method") == "POST"
    assert tags(dial) == ["Number"]
    number = dial[0]
    assert number.text == "+15005550001"
    assert number.get("url") == URLS.of("/twilio/whisper", attempt=attempt)


def test_without_a_caller_id_the_dial_has_no_caller_id_attribute() -> None:
    dial = parse(transfer_twiml(PHONE, 0, make_package(), URLS, RING))[0]
    assert "callerId" not in dial.attrib


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.kind)
@pytest.mark.parametrize("say_first", [None, "Connecting you now."])
def test_nothing_follows_dial_or_enqueue(target: Target, say_first: str | None) -> None:
    root = parse(transfer_twiml(target, 0, make_package(), URLS, RING, say_first=say_first))
    last = "Enqueue" if target.kind == "taskrouter" else "Dial"
    assert tags(root) == (["Say", last] if say_first else [last])
    if say_first:
        assert root[0].text == say_first


def test_a_sip_target_carries_the_handoff_and_its_own_x_headers_url_encoded() -> None:
    package = make_package()
    root = parse(transfer_twiml(SIP, 1, package, URLS, RING))
    dial = root[0]
    assert dial.get("action") == URLS.of("/twilio/dial-status", attempt=1)
    assert tags(dial) == ["Sip"]
    sip = dial[0]
    assert (sip.get("username"), sip.get("password")) == ("bot", "pw")
    assert sip.get("url") == URLS.of("/twilio/whisper", attempt=1)
    address, header_part, headers = sip_headers(sip.text or "")
    assert address == "sip:billing@pbx.example"
    assert headers["X-Queue"] == "billing"
    assert headers["X-Handoff-Id"] == package.handoff_id
    assert headers["X-Handoff-Reason"] == "risk_compliance/billing_dispute"
    assert headers["X-Handoff-Urgency"] == "high"
    assert headers["X-Handoff-Summary"].startswith("Charged twice for order 481523.")
    assert "billing_dispute" in headers["X-Handoff-Summary"]
    assert all(name.startswith("X-") for name in headers)
    assert not re.search(r"[ \n\"<>]", header_part), header_part  # encoded: no raw spaces, newlines or quotes
    assert len(header_part) < SIP_HEADERS_MAX


@pytest.mark.parametrize(
    "issue",
    ["Charged twice " * 500, "Doppelt belastet, bitte prüfen ü é ñ " * 80, "电话账单重复扣费" * 300, "%&=?" * 400],
    ids=["ascii", "accents", "cjk", "reserved"],
)
def test_sip_headers_stay_under_1024_characters_with_a_very_long_issue(issue: str) -> None:
    uri = sip_uri(SIP, make_package(primary_issue=issue))
    _, header_part, headers = sip_headers(uri)
    assert len(header_part) < SIP_HEADERS_MAX
    assert headers["X-Handoff-Id"] == f"{CALL_SID}-h1"
    assert headers["X-Handoff-Urgency"] == "high"
    assert headers["X-Handoff-Summary"], "some of the summary still fits"
    assert issue.split()[0][:4] in headers["X-Handoff-Summary"]


def test_a_sip_uri_that_already_has_headers_gets_more_with_an_ampersand() -> None:
    target = Target(kind="sip", uri="sip:desk@pbx.example?X-Pre=1")
    uri = sip_uri(target, make_package())
    assert uri.count("?") == 1
    assert uri.startswith("sip:desk@pbx.example?X-Pre=1&X-Handoff-Id=")


def test_a_client_target_gets_its_identity_and_the_handoff_as_parameters() -> None:
    package = make_package()
    root = parse(transfer_twiml(CLIENT, 0, package, URLS, RING))
    client = root[0][0]
    assert client.tag == "Client"
    assert client.get("url") == URLS.of("/twilio/whisper", attempt=0)
    assert tags(client)[0] == "Identity" and client[0].text == "appointments_desk"
    params = {p.get("name"): p.get("value") for p in client.iter("Parameter")}
    assert params == client_parameters(package)
    assert params["handoff_id"] == package.handoff_id
    assert params["call_sid"] == CALL_SID
    assert params["reason"] == "risk_compliance/billing_dispute"
    assert (params["queue"], params["urgency"]) == ("billing", "high")


def test_client_parameters_stay_under_500_characters_each_with_huge_values() -> None:
    package = make_package(handoff_id="h" * 900, primary_issue="x" * 5000)
    client = parse(transfer_twiml(CLIENT, 0, package, URLS, RING))[0][0]
    parameters = list(client.iter("Parameter"))
    assert {p.get("name") for p in parameters} == set(client_parameters(package))
    for p in parameters:
        assert len(p.get("name", "")) + len(p.get("value", "")) <= PARAMETER_MAX < 500


def test_a_taskrouter_target_enqueues_the_whole_package_as_task_attributes() -> None:
    package = make_package()
    root = parse(transfer_twiml(TASKROUTER, 0, package, URLS, RING))
    enqueue = root[-1]
    assert enqueue.tag == "Enqueue"
    assert enqueue.get("workflowSid") == TASKROUTER.workflow_sid
    assert enqueue.get("action") == URLS.of("/twilio/enqueue-status")
    assert tags(enqueue) == ["Task"]
    attributes = json.loads(enqueue[0].text or "")
    assert attributes == {**package.model_dump(mode="json"), "type": "handoff"}
    del attributes["type"]
    assert HandoffPackage.model_validate(attributes) == package


def test_task_attributes_drop_the_oldest_turns_to_stay_under_16000_characters() -> None:
    turns = tuple(
        TranscriptTurn(
            speaker="caller" if i % 2 else "bot",
            text=f"turn {i}: " + "and then something else " * 8,
            start_ms=i * 1000,
            end_ms=i * 1000 + 900,
        )
        for i in range(400)
    )
    package = make_package(transcript=turns)
    assert len(package.model_dump_json()) > 4 * TASK_ATTRIBUTES_MAX
    root = parse(transfer_twiml(TASKROUTER, 0, package, URLS, RING))
    text = root[-1][0].text or ""
    assert len(text) <= TASK_ATTRIBUTES_MAX
    assert text == task_attributes(package)
    kept = json.loads(text)["transcript"]
    assert 0 < len(kept) < len(turns)
    assert kept == [t.model_dump(mode="json") for t in turns[-len(kept) :]], "the newest turns are kept, in order"
    assert json.loads(text)["primary_issue"] == package.primary_issue


@settings(max_examples=60, deadline=None)
@given(
    issue=st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=3000),
    handoff_id=st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=120),
)
def test_any_issue_text_keeps_sip_headers_and_client_parameters_within_twilios_limits(
    issue: str, handoff_id: str
) -> None:
    package = make_package(primary_issue=issue.strip() or "x", handoff_id=handoff_id)
    _, header_part, headers = sip_headers(sip_uri(SIP, package))
    assert len(header_part) < SIP_HEADERS_MAX
    assert headers["X-Handoff-Id"] == handoff_id
    client = parse(transfer_twiml(CLIENT, 0, package, URLS, RING))[0][0]
    for parameter in client.iter("Parameter"):
        assert len(parameter.get("name", "")) + len(parameter.get("value", "")) < 500


@pytest.mark.parametrize("target", [SIP, CLIENT], ids=lambda t: t.kind)
def test_a_package_with_an_empty_issue_still_dials_sip_and_client_targets(target: Target) -> None:
    root = parse(transfer_twiml(target, 0, make_package(primary_issue=""), URLS, RING))
    assert tags(root) == ["Dial"]


# --- whisper, accept, fallback, voicemail: the desk's answers ------------------------------------------------

PACK = load_pack()
WORDS = PACK.agent


def desk_with(package: HandoffPackage, *, caller_gone: bool = False) -> Transfers:
    """The desk's transfers part, in memory, with one call whose handoff carries `package`."""
    registry = CallRegistry()
    record = registry.open(CALL_SID)
    record.decision = CallDecision(kind="handoff", reason="billing_dispute", decided_ms=0, package=package)
    record.progress.caller_gone = caller_gone
    ledger = Ledger(registry, None)
    callbacks = Callbacks(ledger, PACK, clock=lambda: TUESDAY)
    return Transfers(ledger, PACK, RING, callbacks, None)


TUESDAY = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


async def whisper_twiml(package: HandoffPackage) -> str:
    return await desk_with(package).whisper(CALL_SID, 0, {}, BASE)


async def accept_twiml(digits: str, *, caller_gone: bool = False) -> str:
    return await desk_with(make_package(), caller_gone=caller_gone).accept(CALL_SID, 0, {"Digits": digits})


async def offer_twiml(package: HandoffPackage) -> str:
    """What the caller hears when the last target did not take the call."""
    return await desk_with(package).dial_status(
        CALL_SID, 0, {"DialCallStatus": "busy", "CallStatus": "in-progress"}, BASE
    )


async def test_the_whisper_gathers_one_key_after_the_summary_then_passes_the_call_on() -> None:
    package = make_package()
    root = parse(await whisper_twiml(package))
    assert tags(root) == ["Gather", "Say", "Hangup"]
    gather = root[0]
    assert gather.get("numDigits") == "1"
    assert gather.get("action") == URLS.of("/twilio/accept", attempt=0)
    said = [say.text or "" for say in gather.iter("Say")]
    assert said[0] == whisper(package, WORDS)
    assert said[1] == WORDS.press_one


async def test_pressing_1_bridges_with_an_empty_response() -> None:
    root = parse(await accept_twiml("1"))
    assert len(root) == 0 and not (root.text or "").strip()


@pytest.mark.parametrize("digits", ["", "2", "9", "*", "11"])
async def test_any_other_key_hangs_up_the_agent_leg(digits: str) -> None:
    assert tags(parse(await accept_twiml(digits))) == ["Hangup"]


@pytest.mark.parametrize("digits", ["1", "", "2"])
async def test_when_the_caller_is_gone_the_agent_hears_why_and_is_hung_up(digits: str) -> None:
    root = parse(await accept_twiml(digits, caller_gone=True))
    assert tags(root) == ["Say", "Hangup"]
    assert root[0].text == WORDS.caller_gone


async def test_offer_callback_or_voicemail_gathers_a_choice_and_redirects_on_silence() -> None:
    root = parse(await offer_twiml(make_package(recommended_queue="orders")))
    assert tags(root) == ["Gather", "Redirect"]
    gather, redirect = root
    assert gather.get("action") == URLS.of("/twilio/fallback-choice")
    assert gather.get("numDigits") == "1"
    said = " ".join(say.text or "" for say in gather.iter("Say"))
    assert PACK.after_stream.nobody_available.format(team="orders") in said
    assert PACK.after_stream.callback_or_message in said
    assert (redirect.text or "").startswith(f"{BASE}/twilio/fallback-choice?")
    assert query_of(redirect.text or "")["call"] == CALL_SID


@pytest.mark.parametrize("intro", [None, "Please leave a message after the tone."])
def test_voicemail_records_up_to_two_minutes_with_absolute_callbacks(intro: str | None) -> None:
    root = parse(record_message(URLS, intro, None))
    assert tags(root) == (["Say", "Record"] if intro else ["Record"])
    record = root[-1]
    assert record.get("action") == URLS.of("/twilio/voicemail")
    assert record.get("recordingStatusCallback") == URLS.of("/twilio/recording-status")
    assert record.get("maxLength") == "120"


def test_goodbye_says_the_text_and_hangs_up() -> None:
    root = parse(goodbye_twiml("Thanks for calling."))
    assert tags(root) == ["Say", "Hangup"]
    assert root[0].text == "Thanks for calling."


# --- properties of every document ----------------------------------------------------------------------------


async def all_documents(package: HandoffPackage) -> dict[str, str]:
    docs = {
        f"transfer-{t.kind}": transfer_twiml(t, 1, package, URLS, RING_WITH_ID_20, say_first="Please hold.")
        for t in TARGETS
    }
    docs.update(
        whisper=await whisper_twiml(package),
        accept=await accept_twiml("1"),
        decline=await accept_twiml("2"),
        caller_gone=await accept_twiml("1", caller_gone=True),
        offer=await offer_twiml(package),
        voicemail=record_message(URLS, "Leave a message.", None),
        goodbye=goodbye_twiml("Goodbye."),
    )
    return docs


DOCUMENTS = ["transfer-phone", "transfer-sip", "transfer-client", "transfer-taskrouter", "whisper", "accept",
             "decline", "caller_gone", "offer", "voicemail", "goodbye"]  # fmt: skip


@pytest.mark.parametrize("name", DOCUMENTS)
async def test_every_url_in_every_document_is_absolute(name: str) -> None:
    root = parse((await all_documents(make_package()))[name])
    urls: list[str] = []
    for element in root.iter():
        for attribute, value in element.attrib.items():
            assert not value.startswith("/"), f"{element.tag}@{attribute} is relative: {value}"
            if attribute in URL_ATTRIBUTES:
                urls.append(value)
        if element.tag in ("Redirect", "Play"):
            urls.append(element.text or "")
    for url in urls:
        assert url.startswith(f"{BASE}/twilio/"), url
        assert query_of(url)["call"] == CALL_SID


@pytest.mark.parametrize("name", DOCUMENTS)
async def test_a_card_number_in_the_package_never_appears_in_any_document(name: str) -> None:
    document = (await all_documents(card_package()))[name]
    for form in (document, unquote(document), json.dumps(document)):
        flat = re.sub(r"[\s\-]|%20|\\u00a0", "", form)
        assert CARD_DIGITS not in flat, name
        assert CARD not in form


async def test_the_card_mask_is_what_agents_and_systems_receive() -> None:
    docs = await all_documents(card_package())
    for name in ("transfer-sip", "transfer-client", "transfer-taskrouter", "whisper"):
        assert CARD_MASK in unquote(docs[name]), name

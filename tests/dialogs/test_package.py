"""The handoff package: redacted on construction, strict about its shape, and rendered as a short whisper, a
complete ticket note and JSON that round-trips; the fallback package keeps what the caller said.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from dialogs.pack import load_pack
from dialogs.package import (
    WHISPER_MAX_WORDS,
    AttemptedAction,
    EscalationReason,
    HandoffPackage,
    KeyFact,
    TranscriptTurn,
)
from dialogs.redaction import CARD_MASK
from dialogs.summary import fallback_package, whisper

PACK = load_pack()


def spoken(package: HandoffPackage) -> str:
    """The whisper an agent hears, in the default pack's words."""
    return whisper(package, PACK.agent)


CARD = "4111 1111 1111 1111"
CATEGORIES = (
    "capability_gap", "confidence_gap", "risk_compliance", "distress", "high_value", "workflow_exception"
)  # fmt: skip

TRANSCRIPT = (
    TranscriptTurn(speaker="bot", text="Hi, thanks for calling. How can I help you today?", start_ms=0, end_ms=2400),
    TranscriptTurn(
        speaker="caller", text="I was charged twice for order 481523.", start_ms=3000, end_ms=5200, confidence=0.91
    ),
    TranscriptTurn(speaker="bot", text="I can't sort that out myself yet.", start_ms=5600, end_ms=7000),
    TranscriptTurn(speaker="caller", text="Just get me an agent.", start_ms=62_000, end_ms=63_100, confidence=0.88),
)


def make_package(**overrides: object) -> HandoffPackage:
    fields: dict[str, object] = {
        "handoff_id": "CA123-h1",
        "call_sid": "CA123",
        "primary_issue": "Charged twice for one order; wants a refund.",
        "user_goal": "Get the duplicate charge refunded.",
        "key_facts": (KeyFact(kind="order_number", value="481523"),),
        "actions_attempted": (AttemptedAction(action="order_lookup", result="found, shipped Monday"),),
        "reason": EscalationReason(
            category="risk_compliance", trigger="refund_dispute", detail="Refund disputes need a person."
        ),
        "recommended_queue": "billing_disputes",
        "caller": "+15551230003",
        "transcript": TRANSCRIPT,
    }
    fields.update(overrides)
    return HandoffPackage.model_validate(fields)


# --- redaction on construction -------------------------------------------------------------------------------


def test_construction_redacts_card_numbers_in_every_free_text_field() -> None:
    package = make_package(
        primary_issue=f"Wants to pay with card {CARD}.",
        user_goal=f"Pay the bill with {CARD}",
        key_facts=(KeyFact(kind="card", value=CARD),),
        actions_attempted=(AttemptedAction(action="payment", result=f"declined card {CARD}"),),
        transcript=(TranscriptTurn(speaker="caller", text=f"my card is {CARD}", start_ms=0, end_ms=900),),
    )
    assert package.primary_issue == f"Wants to pay with card {CARD_MASK}."
    assert package.user_goal == f"Pay the bill with {CARD_MASK}"
    assert package.key_facts[0].value == CARD_MASK
    assert package.actions_attempted[0].result == f"declined card {CARD_MASK}"
    assert package.transcript[0].text == f"my card is {CARD_MASK}"
    for rendering in (package.model_dump_json(), package.ticket_note(), spoken(package)):
        assert CARD not in rendering


def test_construction_redacts_card_numbers_in_the_reason_detail() -> None:
    package = make_package(
        reason=EscalationReason(
            category="capability_gap", trigger="explicit_request", detail=f'The caller said: "agent, card {CARD}".'
        )
    )
    for rendering in (package.model_dump_json(), package.ticket_note(), spoken(package)):
        assert CARD not in rendering


# --- whisper -------------------------------------------------------------------------------------------------


def test_whisper_mentions_queue_issue_reason_and_facts() -> None:
    whisper = spoken(make_package())
    assert "billing disputes" in whisper
    assert "Charged twice for one order; wants a refund." in whisper
    assert "Refund disputes need a person." in whisper
    assert len(whisper.split()) <= WHISPER_MAX_WORDS


def test_whisper_reads_digit_only_fact_values_digit_by_digit() -> None:
    whisper = spoken(
        make_package(key_facts=(KeyFact(kind="order_number", value="481523"), KeyFact(kind="plan", value="gold 2024")))
    )
    assert "order number 4 8 1 5 2 3" in whisper
    assert "481523" not in whisper
    assert "plan gold 2024" in whisper  # not digits only: read as written


def test_whisper_says_when_the_call_is_urgent_and_the_caller_frustrated() -> None:
    assert "Urgent." in spoken(make_package(urgency="high"))
    assert "frustrated" in spoken(make_package(frustrated=True))
    calm = spoken(make_package())
    assert "Urgent." not in calm
    assert "frustrated" not in calm


LONG = " ".join(["the caller explained the problem at great length"] * 12)


@pytest.mark.parametrize(
    "overrides",
    [
        {"primary_issue": LONG},
        {"reason": EscalationReason(category="distress", trigger="sentiment", detail=LONG)},
        {"key_facts": tuple(KeyFact(kind="order_number", value="12345678901234") for _ in range(6))},
        {"recommended_queue": "_".join(["very_long_queue_name"] * 10), "urgency": "high", "frustrated": True},
    ],
    ids=["long-issue", "long-reason", "many-digit-facts", "long-queue"],
)
def test_whisper_stays_within_the_word_limit_with_long_inputs(overrides: dict[str, object]) -> None:
    assert len(spoken(make_package(**overrides)).split()) <= WHISPER_MAX_WORDS


def test_whisper_keeps_the_reason_when_the_issue_is_long() -> None:
    whisper = spoken(make_package(primary_issue=LONG))
    assert len(whisper.split()) <= WHISPER_MAX_WORDS
    assert "billing disputes" in whisper
    assert "Reason: Refund disputes need a person." in whisper


words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)
phrases = st.lists(words, min_size=1, max_size=80).map(" ".join)


@given(issue=phrases, detail=phrases, facts=st.lists(words, max_size=5), queue=words)
def test_whisper_never_exceeds_the_word_limit(issue: str, detail: str, facts: list[str], queue: str) -> None:
    package = make_package(
        primary_issue=issue,
        reason=EscalationReason(category="capability_gap", trigger="t", detail=detail),
        key_facts=tuple(KeyFact(kind="fact", value=value) for value in facts),
        recommended_queue=queue,
        urgency="high",
        frustrated=True,
    )
    assert len(spoken(package).split()) <= WHISPER_MAX_WORDS


# --- ticket note ---------------------------------------------------------------------------------------------


def test_ticket_note_contains_every_turn_and_the_reason() -> None:
    note = make_package().ticket_note()
    for turn in TRANSCRIPT:
        assert turn.text in note
    assert "[01:02] caller (0.88): Just get me an agent." in note
    assert "risk_compliance / refund_dispute" in note
    assert "order_number: 481523 (caller)" in note
    assert "order_lookup: found, shipped Monday" in note
    assert "Caller: +15551230003" in note


# --- shape and serialisation ---------------------------------------------------------------------------------


def test_model_dump_json_round_trips() -> None:
    package = make_package(urgency="high", frustrated=True, authentication="caller_id_matched")
    assert HandoffPackage.model_validate_json(package.model_dump_json()) == package


@pytest.mark.parametrize(
    "build",
    [
        lambda: make_package(priority="urgent"),
        lambda: KeyFact(kind="order_number", value="1", confidence=0.5),  # type: ignore[call-arg]
        lambda: EscalationReason(category="distress", trigger="t", detail="d", score=3),  # type: ignore[call-arg]
        lambda: HandoffPackage.model_validate_json(make_package().model_dump_json()[:-1] + ', "extra": 1}'),
    ],
    ids=["package", "key-fact", "reason", "json"],
)
def test_extra_fields_are_rejected(build: Callable[[], object]) -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        build()


@pytest.mark.parametrize("category", CATEGORIES)
def test_each_of_the_six_categories_is_accepted(category: str) -> None:
    assert EscalationReason(category=category, trigger="t", detail="d").category == category  # type: ignore[arg-type]


@pytest.mark.parametrize("category", ["explicit_request", "other", "", "Distress"])
def test_a_category_outside_the_six_is_rejected(category: str) -> None:
    with pytest.raises(ValidationError):
        EscalationReason(category=category, trigger="t", detail="d")  # type: ignore[arg-type]


def test_primary_issue_of_more_than_two_lines_is_rejected() -> None:
    make_package(primary_issue="one\ntwo")
    with pytest.raises(ValidationError, match="one or two lines"):
        make_package(primary_issue="one\ntwo\nthree")


# --- fallback package ----------------------------------------------------------------------------------------


def test_fallback_package_carries_the_caller_turns_and_is_a_workflow_exception() -> None:
    reason = EscalationReason(category="workflow_exception", trigger="stream_dropped", detail="The stream dropped.")
    package = fallback_package(
        PACK, "CA9", caller="+15550001111", transcript=TRANSCRIPT, reason=reason, queue="support"
    )
    assert package.reason.category == "workflow_exception"
    assert package.reason.trigger == "stream_dropped"
    assert package.transcript == TRANSCRIPT
    assert package.primary_issue == "I was charged twice for order 481523."
    assert package.call_sid == "CA9"
    assert package.caller == "+15550001111"
    assert package.recommended_queue == "support"
    note = package.ticket_note()
    for turn in TRANSCRIPT:
        if turn.speaker == "caller":
            assert turn.text in note


def test_fallback_package_without_caller_turns_says_the_issue_is_unknown() -> None:
    reason = EscalationReason(category="workflow_exception", trigger="stream_dropped", detail="d")
    package = fallback_package(PACK, "CA9", caller=None, transcript=TRANSCRIPT[:1], reason=reason, queue="support")
    assert package.primary_issue.startswith("Unknown")
    assert package.reason.category == "workflow_exception"

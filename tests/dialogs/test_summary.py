"""From a call's dialog state to the handoff package: every field filled from the state, a primary issue of
one or two lines, and a plain sentence telling the caller what goes along with the transfer."""

from __future__ import annotations

import pytest

from dialogs.pack import BotPack, load_pack
from dialogs.package import EscalationReason, TranscriptTurn
from dialogs.state import CallState
from dialogs.summary import build_package, sending_what

PACK = load_pack()
REASON = EscalationReason(category="risk_compliance", trigger="billing_dispute", detail="A charge dispute.")


def turn(text: str, start_ms: int = 1_000) -> TranscriptTurn:
    return TranscriptTurn(speaker="caller", text=text, start_ms=start_ms, end_ms=start_ms + 1_500, confidence=0.9)


def order_state() -> CallState:
    """A call that looked up an order and then disputed a charge on it."""
    state = CallState(call_sid="CA9", caller="+15551230003")
    state.fact("phone", "+15551230003", "caller_id")
    state.turns = [turn("Where is my order 481523?"), turn("I was charged twice for it.", 9_000)]
    state.intent = "billing_dispute"
    state.intents_seen = ["order_status", "billing_dispute"]
    state.first_said = {"order_status": state.turns[0].text, "billing_dispute": state.turns[1].text}
    state.fact("order_number", "481523")
    state.fact("order_total", "$64.99", "tool")
    state.tried("Tool lookup_order", "Order 4 8 1 5 2 3 shipped.")
    state.urgency = "high"
    state.frustrated = True
    state.authentication = "caller_id_matched"
    return state


# --- build_package -----------------------------------------------------------------------------------------


def test_build_package_fills_every_field_from_the_state(pack: BotPack) -> None:
    state = order_state()
    package = build_package(pack, state, REASON, "billing")
    description = pack.intent("billing_dispute").description
    assert package.handoff_id == "CA9-h1"
    assert package.call_sid == "CA9"
    assert package.primary_issue == f'{description}.\nIn the caller\'s words: "I was charged twice for it."'
    assert package.user_goal == description
    assert [(f.kind, f.value, f.source) for f in package.key_facts] == [
        ("phone", "+15551230003", "caller_id"),
        ("order_number", "481523", "caller"),
        ("order_total", "$64.99", "tool"),
    ]
    assert [(a.action, a.result) for a in package.actions_attempted] == [
        ("Tool lookup_order", "Order 4 8 1 5 2 3 shipped.")
    ]
    assert package.reason == REASON
    assert package.recommended_queue == "billing"
    assert package.urgency == "high"
    assert package.frustrated is True
    assert package.language == "en"
    assert package.authentication == "caller_id_matched"
    assert package.caller == "+15551230003"
    assert package.transcript == tuple(state.turns)


def test_the_language_of_the_call_overrides_the_packs(pack: BotPack) -> None:
    state = CallState(call_sid="CA9", language="es")
    assert build_package(pack, state, REASON, "multilingual").language == "es"


@pytest.mark.parametrize(("urgency", "expected"), [("high", "high"), ("normal", "normal"), ("low", "normal")])
def test_only_a_high_urgency_is_passed_on_as_urgent(pack: BotPack, urgency: str, expected: str) -> None:
    state = CallState(call_sid="CA9", urgency=urgency)
    assert build_package(pack, state, REASON, "general").urgency == expected


def test_an_unknown_topic_says_so_and_the_goal_is_a_person(pack: BotPack) -> None:
    state = CallState(call_sid="CA9", turns=[turn("Can I talk to a person?")])
    package = build_package(pack, state, REASON, "general")
    assert package.primary_issue == 'Topic not yet known.\nIn the caller\'s words: "Can I talk to a person?"'
    assert package.user_goal == "Speak with a person."


def test_a_call_with_no_words_has_a_one_line_issue(pack: BotPack) -> None:
    package = build_package(pack, CallState(call_sid="CA9"), REASON, "general")
    assert package.primary_issue == "Topic not yet known."
    assert package.transcript == ()


def test_the_issue_quotes_what_the_caller_first_said_about_the_current_intent(pack: BotPack) -> None:
    state = order_state()
    state.intent = "order_status"
    package = build_package(pack, state, REASON, "orders")
    assert package.primary_issue.endswith('"Where is my order 481523?"')


def test_an_intents_goal_is_used_when_the_pack_sets_one(pack: BotPack) -> None:
    raw = pack.model_dump()
    raw["intents"][1]["goal"] = "Find out when the order arrives"
    with_goal = BotPack.model_validate(raw)
    state = CallState(call_sid="CA9", intent="order_status")
    assert build_package(with_goal, state, REASON, "orders").user_goal == "Find out when the order arrives"


@pytest.mark.parametrize(
    "words",
    [
        "Where is my order?",
        "Where is\nmy order?\nIt was due\nyesterday.",
        "I was charged twice. " * 30,
        "  lots   of\t\tspace  ",
    ],
    ids=["short", "newlines", "long", "whitespace"],
)
def test_the_primary_issue_is_at_most_two_lines(pack: BotPack, words: str) -> None:
    state = CallState(call_sid="CA9", intent="order_status", turns=[turn(words)])
    issue = build_package(pack, state, REASON, "orders").primary_issue
    lines = issue.split("\n")
    assert len(lines) <= 2
    assert lines[0] == pack.intent("order_status").description + "."


def test_long_caller_words_are_clipped_with_an_ellipsis(pack: BotPack) -> None:
    state = CallState(call_sid="CA9", turns=[turn("I was charged twice. " * 30)])
    quoted = build_package(pack, state, REASON, "billing").primary_issue.split("\n")[1]
    words = quoted.removeprefix("In the caller's words: \"").removesuffix('"')
    assert len(words) == 160
    assert words.endswith("…")


# --- sending_what ------------------------------------------------------------------------------------------


def _state(facts: dict[str, str], tried: bool = False) -> CallState:
    state = CallState(call_sid="CA9")
    for kind, value in facts.items():
        state.fact(kind, value)
    if tried:
        state.tried("Tool lookup_order", "not found")
    return state


@pytest.mark.parametrize(
    ("facts", "tried", "expected"),
    [
        ({}, False, "what you told me"),
        ({"phone": "+15551230003"}, False, "what you told me"),  # the agent sees caller ID anyway
        ({"order_number": "481523"}, False, "what you told me and your order number"),
        ({}, True, "what you told me and what we've already tried"),
        (
            {"phone": "+1555", "order_number": "481523"},
            True,
            "what you told me, your order number, and what we've already tried",
        ),
        (
            {"error_message": "invalid code", "device": "iphone"},
            False,
            "what you told me, the error you're seeing, and your device",
        ),
        ({"appointment": "A2291", "day_mentioned": "Thursday"}, False, "what you told me and your appointment details"),
    ],
)
def test_sending_what_says_what_goes_with_the_transfer(facts: dict[str, str], tried: bool, expected: str) -> None:
    assert sending_what(PACK, _state(facts, tried)) == expected


def test_sending_what_mentions_the_order_number_when_known() -> None:
    assert "your order number" in sending_what(PACK, order_state())


def test_sending_what_mentions_what_was_tried_only_when_something_was() -> None:
    assert "what we've already tried" in sending_what(PACK, order_state())
    assert "tried" not in sending_what(PACK, _state({"order_number": "481523"}))

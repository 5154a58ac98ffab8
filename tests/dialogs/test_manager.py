"""The dialog manager, driven event by event: it serves the simple cases (order status, rescheduling, approved
answers) and steps aside when it should, with the right trigger, queue and package, after telling the caller
what happens next. The tools are the real `DataTools` over the bundled data, or hand-written `ToolResult`s."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from dialogs.actions import Action, CallTool, EndCall, Explain, HandOff, Listen, Say
from dialogs.events import CallerHungUp, DialogEvent, DtmfPressed, PromptPlayed
from dialogs.manager import DialogManagerFactory
from dialogs.pack import BotPack
from dialogs.packs.larkspur_tools import LarkspurTools as DataTools
from dialogs.state import Waiting
from tests.dialogs.conftest import (
    APPOINTMENT_CALLER,
    CALLER,
    CATEGORIES,
    LOGIN_CALLER,
    Call,
    call,
    keys,
    mumbled,
    result,
    said,
    silence,
    started,
)

APPOINTMENT = {
    "found": True,
    "id": "A2291",
    "when": "Thursday, November 26 at 10:30 AM",
    "provider": "Dr. Patel",
    "clinic": "Larkspur Avenue",
    "insurance": "Blue Shield PPO",
}
SLOTS = ["Monday, November 30 at 9 AM", "Tuesday, December 1 at 2:15 PM", "Wednesday, December 2 at 11 AM"]
SELF_SERVICE = ("answer:", "found:", "did_it_help:", "slot:", "booking_")


def self_service_says(actions: list[Action]) -> list[Say]:
    return [a for a in actions if isinstance(a, Say) and a.prompt_id.startswith(SELF_SERVICE)]


def reschedule_offered() -> Call:
    """An appointment caller who asked to move it and has just been offered two slots."""
    return call(
        said("I need to move my appointment on Thursday to next week."),
        result("find_appointment", data=APPOINTMENT),
        result("find_slots", call_id="t2", slots=SLOTS),
        caller=APPOINTMENT_CALLER,
    )


# --- start of the call -------------------------------------------------------------------------------------


def test_the_call_starts_with_the_greeting_then_listens(pack: BotPack) -> None:
    c = call()
    assert c.turns == [[Say(pack.prompts["greeting"], "greeting"), Listen()]]


def test_the_caller_id_becomes_a_fact_from_caller_id() -> None:
    c = call(said("I want to pay my bill."))
    assert [(f.kind, f.value, f.source) for f in c.package.key_facts] == [("phone", CALLER, "caller_id")]
    assert c.package.caller == CALLER


def test_each_new_dialog_has_its_own_state() -> None:
    factory = DialogManagerFactory()
    first, second = factory.new_dialog("CA1"), factory.new_dialog("CA2")
    first.handle(started())
    first.handle(said("I want to pay my bill."))
    assert first.state.waiting is Waiting.ROUTE and first.state.handoff is not None
    assert second.state.waiting is None and second.state.handoff is None and not second.state.turns
    assert second.state.call_sid == "CA2"


# --- asking for a person -----------------------------------------------------------------------------------

ROUTING_ANSWERS = [
    # (the answer to the routing question, the queue, the intent it means, the trigger of the handoff)
    ([said("It's about an order.")], "orders", "order_status", "explicit_request"),
    ([said("My account.")], "accounts", "account_login", "explicit_request"),
    ([said("An appointment.")], "appointments", "appointment_reschedule", "explicit_request"),
    ([said("Appointments, please.")], "appointments", "appointment_reschedule", "explicit_request"),
    ([said("I was charged twice.")], "billing", "billing_dispute", "billing_dispute"),
    (keys("1"), "accounts", "account_login", "explicit_request"),
    (keys("2"), "orders", "order_status", "explicit_request"),
    (keys("3"), "appointments", "appointment_reschedule", "explicit_request"),
    ([said("I don't know, just anyone.")], "general", "", "explicit_request"),
]


@pytest.mark.parametrize(
    ("answer", "queue", "intent", "trigger"), ROUTING_ANSWERS, ids=[f"{r[1]}-{r[2]}" for r in ROUTING_ANSWERS]
)
def test_a_person_request_with_no_topic_asks_one_routing_question_then_hands_off_to_the_answer(
    answer: list[DialogEvent], queue: str, intent: str, trigger: str
) -> None:
    c = call(said("Hi. I'd like to talk to a real person, please."))
    assert c.prompt_ids[-1] == "handoff_queue_question"
    assert isinstance(c.actions[-1], Listen) and c.actions[-1].phrases == ("account", "order", "appointment")
    assert not c.handoffs

    c.feed(answer)
    assert c.prompt_ids.count("handoff_queue_question") == 1
    assert c.package.recommended_queue == queue
    assert c.package.reason.trigger == trigger
    handoff = next(e for e in c.explains if e.decision.startswith("handoff:"))
    assert handoff.signals["intent"] == intent


def test_a_person_request_names_its_reason_explicit_request() -> None:
    c = call(said("Agent."), said("An order."))
    assert c.package.reason.category == "distress"  # the article: direct requests for a person are user distress
    assert c.package.reason.trigger == "explicit_request"


def test_a_caller_who_insists_is_not_asked_the_routing_question_twice() -> None:
    c = call(said("Representative."), said("I just want a human being, please."))
    assert c.prompt_ids.count("handoff_queue_question") == 1
    assert c.package.recommended_queue == "general"
    assert c.package.reason.trigger == "explicit_request"


@pytest.mark.parametrize(
    ("text", "queue"),
    [
        ("I need to check on my order. Can I just talk to someone?", "orders"),
        ("Can I talk to someone about my appointment?", "appointments"),
        ("My password won't work, get me an agent.", "accounts"),
    ],
)
def test_a_person_request_with_a_known_topic_hands_off_at_once(text: str, queue: str) -> None:
    c = call(said(text))
    assert "handoff_queue_question" not in c.prompt_ids
    assert c.package.recommended_queue == queue
    assert c.package.reason.trigger == "explicit_request"
    assert not c.tools


def test_a_person_request_with_a_topic_word_puts_the_topic_in_the_package(pack: BotPack) -> None:
    c = call(said("I need to check on my order. Can I just talk to someone?"))
    assert c.package.recommended_queue == "orders"
    assert c.package.primary_issue.startswith(pack.intent("order_status").description)


@pytest.mark.parametrize(
    ("answer", "issue_starts"),
    [
        ([said("It's about an order.")], "Something about an order"),
        (keys("3", t_ms=30_000), "Something about an appointment"),
        ([said("Um, it's about my account.")], "Something about their account"),
        ([said("My order never arrived and it's been two weeks.")], "Asking where an order is"),
    ],
)
def test_the_summary_claims_no_more_than_the_routing_answer_said(
    pack: BotPack, answer: list[DialogEvent] | list[DtmfPressed], issue_starts: str
) -> None:
    """A bare topic word routes the call, but the agent must not read a need the caller never stated."""
    c = call(said("Hi. I'd like to talk to a real person, please."))
    c.feed(answer)
    assert c.package.primary_issue.startswith(issue_starts)
    if issue_starts.startswith("Something"):
        assert c.package.user_goal == pack.agent.goal_unknown


def test_a_person_request_mid_flow_goes_to_the_flows_queue_without_a_question() -> None:
    c = call(said("Where's my order?"), said("Actually, just get me a person."))
    assert "handoff_queue_question" not in c.prompt_ids
    assert c.package.recommended_queue == "orders"


def test_silence_after_the_routing_question_still_hands_off_to_the_default_queue() -> None:
    c = call(said("Agent."), silence())
    assert "no_input" not in c.prompt_ids
    assert (c.package.reason.trigger, c.package.recommended_queue) == ("explicit_request", "general")


def test_dtmf_zero_asks_the_routing_question_then_routes_by_key() -> None:
    c = call(keys("0"))
    assert c.prompt_ids[-1] == "handoff_queue_question"
    c.feed(keys("2"))
    assert c.package.recommended_queue == "orders"
    assert c.package.reason.trigger == "dtmf_zero"
    assert c.package.reason.category == "distress"


def test_dtmf_zero_after_the_routing_question_hands_off_to_the_default_queue() -> None:
    c = call(keys("0"), keys("0"))
    assert c.prompt_ids.count("handoff_queue_question") == 1
    assert c.package.recommended_queue == "general"


def test_dtmf_zero_with_a_known_intent_hands_off_to_its_queue() -> None:
    c = call(said("What's your return policy?"), keys("0"))
    assert "handoff_queue_question" not in c.prompt_ids
    assert c.package.recommended_queue == "orders"
    assert c.package.reason.trigger == "dtmf_zero"


def test_an_unused_key_does_nothing() -> None:
    c = call()
    assert c.feed(keys("7")) == []


# --- risk: always a person ---------------------------------------------------------------------------------

RISK = [
    ("I was charged twice for my order.", "billing_dispute"),
    ("There's a charge on my card I don't recognize.", "billing_dispute"),
    ("I want to cancel my account.", "cancel_account"),
    ("Someone hacked my account.", "security_issue"),
    ("I think my identity was stolen.", "security_issue"),
    ("I need to change my address.", "account_change"),
    ("I'm going to sue you.", "legal_threat"),
    ("I want to pay my bill.", "make_payment"),
    ("I want to place a bulk order for my clinic.", "bulk_order"),
]


@pytest.mark.parametrize(("text", "intent"), RISK, ids=[f"{r[1]}:{r[0][:24]}" for r in RISK])
def test_every_risk_intent_hands_off_with_the_packs_category_and_trigger(pack: BotPack, text: str, intent: str) -> None:
    c = call(said(text))
    escalate = pack.intent(intent).escalate
    assert escalate is not None
    package = c.package
    assert (package.reason.category, package.reason.trigger) == (escalate.category, escalate.trigger)
    assert package.recommended_queue == pack.intent(intent).queue
    assert package.urgency == ("high" if escalate.urgency == "high" else "normal")
    assert not self_service_says(c.actions)
    assert not c.tools
    assert [type(a) for a in c.turns[-1]] == [Explain, Say, Say, HandOff]


def test_a_risk_request_heard_unclearly_is_not_decided_on_its_words() -> None:
    c = call(said("I want to cancel my account.", confidence=0.3))
    assert not c.handoffs
    assert c.prompt_ids[-1] == "low_confidence_first"


# --- order status ------------------------------------------------------------------------------------------


def test_order_status_asks_only_for_the_order_number(pack: BotPack) -> None:
    c = call(said("Where's my order?"))
    turn = c.turns[-1]
    assert [a.prompt_id for a in turn if isinstance(a, Say)] == ["slot:order_number"]
    assert turn[-1] == Listen(tuple(pack.slots["order_number"].phrases))
    assert not c.tools


@pytest.mark.parametrize(
    "answer",
    [
        [said("four eight one five two three")],
        [said("4 8 1 5 2 3")],
        [said("It's 481523.")],
        keys("481523"),
    ],
    ids=["words", "spaced", "numeral", "keyed"],
)
def test_the_order_number_answer_calls_lookup_order_with_its_digits(answer: list[DialogEvent]) -> None:
    c = call(said("Where's my order?"), answer)
    assert c.tools == [CallTool("t1", "lookup_order", {"phone": CALLER, "order_number": "481523"})]


def test_keyed_digits_wait_for_the_whole_number() -> None:
    c = call(said("Where's my order?"))
    assert c.feed(keys("48152")) == []
    assert c.tools == []


def test_an_order_number_given_up_front_is_looked_up_without_a_question() -> None:
    c = call(said("Where is my order? The number is 4 8 1 5 2 3."))
    assert c.prompt_ids == ["greeting"]
    assert c.tools == [CallTool("t1", "lookup_order", {"phone": CALLER, "order_number": "481523"})]


def test_a_found_order_is_read_digit_by_digit_then_anything_else() -> None:
    c = call(said("Where is my order? The number is 4 8 1 5 2 3."), tools=DataTools())
    found = next(s for s in c.says if s.prompt_id == "found:order_status")
    assert found.text == "Order 4 8 1 5 2 3 shipped on Monday, November 23, and should arrive Thursday, November 26."
    assert c.prompt_ids[-1] == "anything_else"
    assert isinstance(c.actions[-1], Listen)


def test_a_resolved_order_call_ends_with_goodbye_and_no_handoff() -> None:
    c = call(said("Where is my order 481523?"), said("No, that's all, thanks."), tools=DataTools())
    assert c.ended
    assert not c.handoffs
    assert c.prompt_ids[-1] == "goodbye"
    assert c.actions[-1] == EndCall("resolved")


def test_an_order_not_found_is_asked_again_once_then_handed_off_not_found() -> None:
    c = call(said("Where is my order 123456?"), tools=DataTools())
    assert c.prompt_ids[-1] == "not_found:order_status"
    assert "I couldn't find order 1 2 3 4 5 6." in c.says[-1].text
    assert not c.handoffs

    c.feed(said("one two three four five seven"))
    assert [t.arguments["order_number"] for t in c.tools] == ["123456", "123457"]
    package = c.package
    assert (package.reason.category, package.reason.trigger) == ("capability_gap", "not_found")
    assert package.recommended_queue == "orders"
    assert [a.result for a in package.actions_attempted] == ["not found", "not found"]


def test_an_order_number_too_short_is_reprompted_then_handed_off_repeated_failure(pack: BotPack) -> None:
    c = call(said("Where's my order?"), said("four eight one"))
    assert c.prompt_ids[-1] == "slot_again:order_number"
    assert c.says[-1].text == pack.slots["order_number"].reprompt
    c.feed(said("four eight"))
    assert (c.package.reason.category, c.package.reason.trigger) == ("confidence_gap", "repeated_failure")


def test_two_different_numbers_are_confirmed_then_a_third_hands_off_as_a_contradiction() -> None:
    c = call(said("Where's my order?"), said("four eight one five two three, no wait, seven three zero zero one eight"))
    assert c.prompt_ids[-1] == "slot_confirm_conflict"
    assert "4 8 1 5 2 3" in c.says[-1].text and "7 3 0 0 1 8" in c.says[-1].text
    c.feed(said("five five nine two zero four"))
    assert (c.package.reason.category, c.package.reason.trigger) == ("confidence_gap", "contradiction")


def test_a_failed_tool_says_so_then_hands_off_tool_failed() -> None:
    c = call(said("Where is my order 481523?"), result("lookup_order", ok=False, error="timeout"))
    assert c.prompt_ids[-3:] == ["tool_failed", "handoff:orders", "handoff_sending"]
    assert (c.package.reason.category, c.package.reason.trigger) == ("capability_gap", "tool_failed")
    assert c.package.actions_attempted[-1].result == "failed: timeout"


def test_an_order_question_that_turns_into_a_charge_dispute_hands_off_intent_switch(pack: BotPack) -> None:
    c = call(
        said("Where is my order? The number is 4 8 1 5 2 3."),
        said("Actually, I was charged twice for it and I want a refund."),
        tools=DataTools(),
    )
    package = c.package
    assert (package.reason.category, package.reason.trigger) == ("risk_compliance", "intent_switch_to_dispute")
    assert package.recommended_queue == "billing"
    assert package.urgency == "high"
    assert ("order_number", "481523") in [(f.kind, f.value) for f in package.key_facts]
    refund_answer = pack.intent("refund_request").handling
    assert refund_answer is not None and refund_answer.answer is not None
    assert refund_answer.answer.lower() not in c.spoken
    assert "your order number" in c.says[-1].text


def test_a_refund_on_an_expensive_order_hands_off_high_value() -> None:
    c = call(said("Where is my order 5 5 9 2 0 4?"), said("I want to return it for a refund."), tools=DataTools())
    assert (c.package.reason.category, c.package.reason.trigger) == ("high_value", "high_value_refund")
    assert ("order_total", "$1480.00") in [(f.kind, f.value) for f in c.package.key_facts]


# --- password reset ----------------------------------------------------------------------------------------


def test_a_forgotten_password_gets_a_reset_link_texted_and_asks_if_it_helped() -> None:
    tools = DataTools()
    c = call(said("I forgot my password."), caller=LOGIN_CALLER, tools=tools)
    assert tools.outbox == [{"to": LOGIN_CALLER, "kind": "password_reset"}]
    assert "ending in 0 0 0 2" in c.spoken
    assert c.prompt_ids[-1] == "did_it_help:account_login"


def test_a_reset_link_that_did_not_work_is_not_sent_again() -> None:
    c = call(
        said("I can't log in and I need it fixed right now."), said("No, it didn't work."), caller=LOGIN_CALLER,
        tools=DataTools(),
    )  # fmt: skip
    assert [t.tool for t in c.tools] == ["send_reset_link"]
    assert (c.package.reason.category, c.package.reason.trigger) == ("distress", "repeated_failure")
    assert c.package.urgency == "high"


def test_a_caller_who_already_tried_the_reset_is_handed_off_with_the_error() -> None:
    c = call(
        said("I'm locked out of my account. I reset my password twice and it still says invalid code."),
        caller=LOGIN_CALLER,
    )
    assert not c.tools
    assert "already_tried" in c.prompt_ids
    package = c.package
    assert (package.reason.trigger, package.recommended_queue, package.urgency) == (
        "repeated_failure", "accounts", "high"
    )  # fmt: skip
    assert ("error_message", "invalid code") in [(f.kind, f.value) for f in package.key_facts]


# --- rescheduling ------------------------------------------------------------------------------------------


def test_reschedule_finds_the_appointment_by_caller_id_then_offers_two_slots() -> None:
    c = call(said("I need to move my appointment on Thursday to next week."), caller=APPOINTMENT_CALLER)
    assert c.tools == [CallTool("t1", "find_appointment", {"phone": APPOINTMENT_CALLER})]
    c.feed(result("find_appointment", data=APPOINTMENT))
    assert c.tools[-1] == CallTool("t2", "find_slots", {})
    c.feed(result("find_slots", call_id="t2", slots=SLOTS))
    offer = c.says[-1]
    assert offer.prompt_id == "booking_found"
    assert "Dr. Patel" in offer.text and SLOTS[0] in offer.text and SLOTS[1] in offer.text
    assert SLOTS[2] not in offer.text  # two choices at most, on the phone


@pytest.mark.parametrize(
    ("answer", "slot"),
    [("The second one, please.", 1), ("The first one.", 0), ("Monday works.", 0), ("Tuesday is better.", 1)],
)
def test_the_chosen_slot_is_booked_then_confirmed(answer: str, slot: int) -> None:
    c = reschedule_offered()
    c.feed(said(answer))
    assert c.tools[-1] == CallTool("t3", "reschedule_appointment", {"phone": APPOINTMENT_CALLER, "slot": SLOTS[slot]})
    c.feed(result("reschedule_appointment", call_id="t3", found=True, slot=SLOTS[slot], id="A2291"))
    assert c.prompt_ids[-2:] == ["booking_done", "anything_else"]
    assert SLOTS[slot] in c.says[-2].text
    c.feed(said("No thanks."))
    assert c.ended and not c.handoffs


def test_the_whole_reschedule_runs_on_the_real_tools() -> None:
    tools = DataTools()
    c = call(said("I need to move my appointment."), said("The second one."), caller=APPOINTMENT_CALLER, tools=tools)
    assert [t.tool for t in c.tools] == ["find_appointment", "find_slots", "reschedule_appointment"]
    assert tools.data["appointments"][APPOINTMENT_CALLER]["when"] == SLOTS[1]


def test_an_unclear_slot_choice_is_asked_again_then_handed_off() -> None:
    c = reschedule_offered()
    c.feed(said("Hmm, maybe something else."))
    assert c.prompt_ids[-1] == "booking_pick_again"
    c.feed(said("I really don't know."))
    assert (c.package.reason.trigger, c.package.recommended_queue) == ("repeated_failure", "appointments")


def test_no_appointment_on_file_hands_off_not_found_to_appointments() -> None:
    c = call(said("I need to move my appointment."), tools=DataTools())  # CALLER has no appointment
    assert c.prompt_ids[-3] == "booking_none"
    assert (c.package.reason.trigger, c.package.recommended_queue) == ("not_found", "appointments")


def test_an_insurance_question_mid_reschedule_hands_off_as_a_policy_exception() -> None:
    c = reschedule_offered()
    c.feed(said("Will my new insurance still cover it if I reschedule?"))
    package = c.package
    assert (package.reason.category, package.reason.trigger) == ("workflow_exception", "policy_exception")
    assert package.recommended_queue == "appointments"
    assert package.authentication == "caller_id_matched"
    facts = {f.kind: f.value for f in package.key_facts}
    assert "A2291" in facts["appointment"] and "Dr. Patel" in facts["appointment"]
    assert facts["insurance_on_file"] == "Blue Shield PPO"
    assert "your appointment details" in c.says[-1].text


# --- low recognition confidence ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "unclear",
    [
        [said("mumble mumble order maybe", 0.3), said("something about my thing", 0.35), said("uh the", 0.2)],
        [mumbled(), mumbled(), mumbled()],
    ],
    ids=["low_confidence", "unintelligible"],
)
def test_low_confidence_asks_again_then_offers_a_person_then_hands_off(unclear: list[DialogEvent]) -> None:
    c = call(unclear[0])
    assert c.prompt_ids[-1] == "low_confidence_first"
    c.feed(unclear[1])
    assert c.prompt_ids[-1] == "low_confidence"
    assert "zero" in c.says[-1].text
    assert not c.handoffs
    c.feed(unclear[2])
    assert (c.package.reason.category, c.package.reason.trigger) == ("confidence_gap", "low_asr_confidence")


@pytest.mark.parametrize("accept", [keys("0"), [said("Yes.")]], ids=["dtmf_zero", "yes"])
def test_accepting_the_offer_of_a_person_hands_off_low_asr_confidence(accept: list[DialogEvent]) -> None:
    c = call(said("mumble mumble", 0.3), said("something something", 0.35), accept)
    assert "handoff_queue_question" not in c.prompt_ids
    assert (c.package.reason.category, c.package.reason.trigger) == ("confidence_gap", "low_asr_confidence")


def _fresh() -> Call:
    return call()


def _asked_for_order_number() -> Call:
    return call(said("Where's my order?"))


def _asked_if_reset_helped() -> Call:
    return call(said("I forgot my password."), caller=LOGIN_CALLER, tools=DataTools())


def _anything_else() -> Call:
    return call(said("What are your hours?"))


LOW_CONFIDENCE = [
    (_fresh, "What are your hours?"),
    (_fresh, "Where is my order 481523?"),
    (_fresh, "I forgot my password."),
    (_fresh, "I need to move my appointment."),
    (_asked_for_order_number, "four eight one five two three"),
    (_asked_if_reset_helped, "Yes, thanks."),
    (_anything_else, "What's your return policy?"),
    (reschedule_offered, "The second one."),
]


@pytest.mark.parametrize(("setup", "text"), LOW_CONFIDENCE, ids=[f"{s.__name__}:{t}" for s, t in LOW_CONFIDENCE])
def test_a_low_confidence_turn_does_not_guess(setup: Callable[[], Call], text: str) -> None:
    c = setup()
    before = len(c.tools)
    actions = c.feed(said(text, confidence=0.4))
    assert not self_service_says(actions)
    assert not any(isinstance(a, (CallTool, HandOff, EndCall)) for a in actions)
    assert len(c.tools) == before
    assert [a.prompt_id for a in actions if isinstance(a, Say)] == ["low_confidence_first"]


def test_the_ask_again_and_the_offer_use_different_words(pack: BotPack) -> None:
    c = call(said("mumble", 0.3), said("mumble", 0.3))
    assert c.says[-2].text != c.says[-1].text
    assert pack.prompts["low_confidence_first"] == c.says[-2].text


def test_the_didnt_catch_that_prompt_is_never_said_twice_in_a_call() -> None:
    c = call(said("mumble", 0.3), said("What are your hours?"), said("mumble", 0.3))
    assert c.prompt_ids.count("low_confidence_first") == 1


# --- not understood, silence ---------------------------------------------------------------------------------


def test_not_understood_gets_one_clarifying_question_then_a_handoff(pack: BotPack) -> None:
    c = call(said("Purple monkey dishwasher."))
    assert c.prompt_ids[-1] == "clarify"
    assert c.says[-1].text == pack.prompts["clarify"]
    c.feed(said("You know, the thing with the stuff."))
    assert c.prompt_ids.count("clarify") == 1
    assert (c.package.reason.category, c.package.reason.trigger) == ("confidence_gap", "repeated_failure")


def test_a_clarified_topic_is_served() -> None:
    c = call(said("Purple monkey dishwasher."), said("It's about an order."))
    assert c.prompt_ids[-1] == "slot:order_number"
    assert not c.handoffs


def test_one_silence_reprompts_and_two_hand_off_no_input() -> None:
    c = call(silence())
    assert c.prompt_ids[-1] == "no_input"
    assert "still there" in c.says[-1].text.lower()
    c.feed(silence(20_000))
    assert (c.package.reason.category, c.package.reason.trigger) == ("confidence_gap", "no_input")
    assert c.package.recommended_queue == "general"


def test_speech_between_silences_starts_the_count_again() -> None:
    c = call(silence(), said("What are your hours?"), silence(30_000))
    assert not c.handoffs


# --- distress, frustration, urgency, language ----------------------------------------------------------------


@pytest.mark.parametrize(
    "before",
    [[], [said("Where's my order?")], [said("mumble", 0.3)]],
    ids=["first_words", "mid_flow", "after_unclear_turn"],
)
def test_distress_says_dial_911_then_hands_off_to_the_nurse_line(before: list[DialogEvent]) -> None:
    c = call(before, said("I'm having chest pain and I don't know what to do."))
    turn = c.turns[-2]  # the last turn is the announcement, after routing
    assert isinstance(turn[0], Say) and turn[0].prompt_id == "distress"
    assert "nine one one" in turn[0].text
    package = c.package
    assert (package.reason.category, package.reason.trigger) == ("distress", "distress_marker")
    assert package.recommended_queue == "nurse_line"
    assert package.urgency == "high"


def test_distress_outranks_a_risk_intent() -> None:
    c = call(said("I want to pay my bill but I have chest pain."))
    assert c.package.reason.trigger == "distress_marker"


def test_frustration_after_a_failed_step_hands_off_negative_sentiment_flagged_frustrated() -> None:
    c = call(said("I forgot my password."), said("This is ridiculous, it didn't work."), caller=LOGIN_CALLER,
             tools=DataTools())  # fmt: skip
    assert "frustrated_offer" in c.prompt_ids
    package = c.package
    assert (package.reason.category, package.reason.trigger) == ("distress", "negative_sentiment")
    assert package.frustrated is True
    assert [t.tool for t in c.tools] == ["send_reset_link"]  # the step is not repeated


def test_frustration_after_a_clarifying_question_hands_off() -> None:
    c = call(said("Purple monkey dishwasher."), said("Oh come on, this is useless."))
    assert c.package.reason.trigger == "negative_sentiment"
    assert c.package.frustrated is True


@pytest.mark.parametrize(
    ("text", "next_prompt"),
    [("This is ridiculous, where is my order?", "slot:order_number"), ("This is so frustrating.", "clarify")],
)
def test_frustration_before_anything_failed_shortens_the_next_prompt_and_offers_a_person(
    pack: BotPack, text: str, next_prompt: str
) -> None:
    c = call(said(text))
    assert not c.handoffs
    assert c.prompt_ids[-1] == f"{next_prompt}:short"
    short = c.says[-1].text
    assert short == pack.frustrated_prompts[next_prompt] and "agent" in short
    assert len(short.split()) < len((pack.prompts.get(next_prompt) or pack.slots["order_number"].prompt).split())


def test_a_single_urgency_marker_on_a_simple_question_is_answered_not_handed_off() -> None:
    c = call(said("What are your hours today?"))
    assert not c.handoffs
    assert c.prompt_ids[-2:] == ["answer:store_hours", "anything_else"]
    assert c.dialog.state.urgency == "high"  # remembered for a later handoff


def test_another_language_hands_off_to_the_multilingual_queue_with_the_language() -> None:
    c = call(said("Hola, necesito ayuda con mi cita, por favor."))
    assert c.turns[-2][0] == Say(c.dialog.pack.prompts["language_handoff"], "language_handoff", interruptible=False)
    package = c.package
    assert (package.reason.category, package.reason.trigger) == ("capability_gap", "other_language")
    assert package.recommended_queue == "multilingual"
    assert package.language == "es"


# --- every handoff -------------------------------------------------------------------------------------------

HANDOFFS: dict[str, list[DialogEvent]] = {
    "explicit_request": [said("Agent."), said("An order.")],
    "dtmf_zero": [*keys("0"), *keys("3")],
    "risk": [said("I was charged twice.")],
    "distress": [said("I'm having chest pain.")],
    "language": [said("Hola, necesito ayuda, por favor.")],
    "low_confidence": [mumbled(), mumbled(), mumbled()],
    "not_understood": [said("Purple monkey dishwasher."), said("The thing with the stuff.")],
    "no_input": [silence(), silence(20_000)],
    "not_found": [said("Where is my order 123456?"), said("one two three four five seven")],
    "frustration": [said("Purple monkey dishwasher."), said("This is ridiculous.")],
    "prior_attempt": [said("I forgot my password and I already tried the reset twice.")],
    "policy_exception": [said("I need to move my appointment."), said("Will my new insurance cover it?")],
    "intent_switch": [said("Where is my order 481523?"), said("I was charged twice for it.")],
}


def handed_off(name: str) -> Call:
    caller = APPOINTMENT_CALLER if name == "policy_exception" else CALLER
    return call(HANDOFFS[name], caller=caller, tools=DataTools())


@pytest.mark.parametrize("name", HANDOFFS)
def test_every_handoff_is_preceded_by_an_explain_and_two_uninterruptible_says(name: str) -> None:
    c = handed_off(name)
    package = c.package
    (explain,) = [a for a in c.actions if isinstance(a, Explain) and a.decision.startswith("handoff:")]
    announce, next_step, sending, handoff = c.actions[-4:]
    assert isinstance(announce, Explain) and announce.decision == "announce:transfer"
    assert isinstance(explain, Explain)
    assert explain.decision == f"handoff:{package.reason.trigger}"
    assert explain.signals["category"] == package.reason.category
    assert explain.signals["queue"] == package.recommended_queue
    assert isinstance(next_step, Say) and isinstance(sending, Say)
    assert not next_step.interruptible and not sending.interruptible
    assert next_step.prompt_id == f"handoff:{package.recommended_queue}"
    assert package.recommended_queue.replace("_", " ") + " team" in next_step.text
    assert sending.prompt_id == "handoff_sending"
    assert sending.text.startswith("I'm passing along what you told me")
    assert isinstance(handoff, HandOff)


@pytest.mark.parametrize("name", HANDOFFS)
def test_every_package_carries_the_caller_turns_and_one_of_the_six_categories(name: str) -> None:
    c = handed_off(name)
    package = c.package
    caller_said = [e.text for e in HANDOFFS[name] if hasattr(e, "text")]
    assert [t.text for t in package.transcript if t.speaker == "caller"] == caller_said
    assert package.reason.category in CATEGORIES
    assert package.call_sid == "CA1"
    assert package.handoff_id == "CA1-h1"
    assert package.primary_issue.count("\n") <= 1


@pytest.mark.parametrize(
    "later",
    [said("Hello?"), DtmfPressed("0", 9_000), silence(), mumbled(), result("lookup_order"),
     PromptPlayed("handoff_sending", 9_000), CallerHungUp(9_000)],
    ids=lambda e: type(e).__name__,
)  # fmt: skip
@pytest.mark.parametrize("ending", ["handoff", "end_call", "hang_up"])
def test_after_a_handoff_end_call_or_hang_up_further_events_do_nothing(ending: str, later: DialogEvent) -> None:
    if ending == "handoff":
        c = call(said("I want to pay my bill."))
    elif ending == "end_call":
        c = call(said("What are your hours?"), said("No, goodbye."))
        assert c.ended
    else:
        c = call(said("Where's my order?"), CallerHungUp(8_000))
    assert c.feed(later) == []


# --- payment cards -----------------------------------------------------------------------------------------

CARD_DIGITS = "4111111111111111"


@pytest.mark.parametrize(
    "text",
    [
        "I want to pay my bill with my card, it's 4111 1111 1111 1111.",
        "I want to pay my bill, the card is 4111-1111-1111-1111.",
        "Can I make a payment? My card number is four one one one one one one one one one one one one one one one.",
    ],
    ids=["grouped", "dashed", "spoken"],
)
def test_a_card_number_said_with_a_payment_never_reaches_the_package(text: str) -> None:
    c = call(said(text))
    assert c.package.reason.trigger == "payment"
    dumped = c.package.model_dump_json()
    assert CARD_DIGITS not in re.sub(r"\D", "", dumped)
    assert "4111" not in dumped
    assert "[card number]" in dumped


def test_a_card_number_at_the_end_of_a_long_payment_request_never_reaches_the_package() -> None:
    preamble = "I want to pay my bill. " + "I have been meaning to do it for ages and I keep on forgetting. " * 3
    text = preamble[:138] + " my card is 4111 1111 1111 1111, thanks."  # the card starts at character 150
    c = call(said(text))
    assert c.package.reason.trigger == "payment"
    assert "4111" not in c.package.model_dump_json()

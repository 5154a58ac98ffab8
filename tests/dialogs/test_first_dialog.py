"""The first dialog: it greets, hands the caller to a person when they ask (in words or with 0), answers anything
else with the fallback, gives up after two silences, stays quiet after the call is decided, and only ever says
prompts its factory declared up front.
"""

from __future__ import annotations

import pytest

from dialogs.actions import Action, EndCall, HandOff, Listen, Say
from dialogs.events import (
    CallerHungUp,
    CallerSaid,
    CallerUnintelligible,
    CallStarted,
    DialogEvent,
    DtmfPressed,
    PromptPlayed,
    SilenceTimeout,
)
from dialogs.first_dialog import FirstDialog, FirstDialogFactory, FirstDialogPrompts

PROMPTS = FirstDialogPrompts()
FACTORY = FirstDialogFactory(queue="support")
START = CallStarted(call_sid="CA1", caller="+15551230001", called="+15559870000")

# Every Say any test in this module received; checked against fixed_prompts() by the last test.
SAID: set[str] = set()


def said(text: str, t_ms: int = 3000) -> CallerSaid:
    return CallerSaid(text=text, confidence=0.9, start_ms=t_ms - 1500, end_ms=t_ms - 100, t_ms=t_ms)


def started() -> FirstDialog:
    dialog = FACTORY.new_dialog("CA1")
    run(dialog, [START])
    return dialog


def run(dialog: FirstDialog, events: list[DialogEvent]) -> list[list[Action]]:
    """Feed the events in order; return each event's actions (and remember every Say)."""
    out = []
    for event in events:
        actions = dialog.handle(event)
        SAID.update(a.text for a in actions if isinstance(a, Say))
        out.append(actions)
    return out


def test_call_started_greets_then_listens() -> None:
    dialog = FACTORY.new_dialog("CA1")
    [actions] = run(dialog, [START])
    assert len(actions) == 2
    assert isinstance(actions[0], Say) and actions[0].text == PROMPTS.greeting
    assert isinstance(actions[1], Listen)
    assert dialog.caller == "+15551230001"


PERSON_REQUESTS = [
    "agent",
    "Agent.",
    "AGENT!",
    "a human please",
    "can I speak to someone",
    "representative",
    "operator",
    "let me talk to a real person",
    "Can I speak with someone?",
    "Just get me an agent.",
    "I'd like to talk to a real person, please.",
]


@pytest.mark.parametrize("text", PERSON_REQUESTS)
def test_asking_for_a_person_says_the_transfer_prompt_then_hands_off(text: str) -> None:
    dialog = started()
    [actions] = run(dialog, [said(text)])
    assert [type(a) for a in actions] == [Say, HandOff]
    say, handoff = actions
    assert isinstance(say, Say) and say.text == PROMPTS.transfer
    assert isinstance(handoff, HandOff)
    package = handoff.package
    assert package.primary_issue == text
    assert any(t.speaker == "caller" and t.text == text for t in package.transcript)
    assert package.reason.trigger == "explicit_request"
    assert package.recommended_queue == "support"
    assert package.call_sid == "CA1"
    assert package.caller == "+15551230001"


@pytest.mark.parametrize("text", ["Can I talk to one of your agents?", "Put me through to your representatives"])
def test_asking_for_a_person_in_the_plural_hands_off(text: str) -> None:
    [actions] = run(started(), [said(text)])
    assert any(isinstance(a, HandOff) for a in actions)


def test_the_package_keeps_the_first_thing_the_caller_said_as_the_issue() -> None:
    dialog = started()
    _, [_, handoff] = run(dialog, [said("Where is my order?", 3000), said("agent please", 9000)])
    assert isinstance(handoff, HandOff)
    assert handoff.package.primary_issue == "Where is my order?"
    caller_turns = [t.text for t in handoff.package.transcript if t.speaker == "caller"]
    assert caller_turns == ["Where is my order?", "agent please"]
    bot_turns = [t.text for t in handoff.package.transcript if t.speaker == "bot"]
    assert bot_turns == [PROMPTS.greeting, PROMPTS.fallback, PROMPTS.transfer]


def test_a_card_number_said_with_the_request_never_reaches_the_package() -> None:
    [[_, handoff]] = run(started(), [said("agent please, my card is 4111 1111 1111 1111")])
    assert isinstance(handoff, HandOff)
    assert "4111 1111 1111 1111" not in handoff.package.model_dump_json()


def test_dtmf_zero_hands_off_with_trigger_dtmf_zero() -> None:
    [[say, handoff]] = run(started(), [DtmfPressed(digit="0", t_ms=1500)])
    assert isinstance(say, Say) and say.text == PROMPTS.transfer
    assert isinstance(handoff, HandOff)
    assert handoff.package.reason.trigger == "dtmf_zero"


@pytest.mark.parametrize("digit", ["1", "2", "5", "9", "*", "#"])
def test_other_dtmf_digits_are_ignored(digit: str) -> None:
    dialog = started()
    assert run(dialog, [DtmfPressed(digit=digit, t_ms=1500)]) == [[]]
    assert not dialog.done


UNRELATED = ["Where is my order?", "I want to reset my password", "Can I get a refund?", "What are your hours?"]


@pytest.mark.parametrize("text", UNRELATED)
def test_an_unrelated_request_gets_the_fallback_and_no_handoff(text: str) -> None:
    [actions] = run(started(), [said(text)])
    assert [type(a) for a in actions] == [Say, Listen]
    assert isinstance(actions[0], Say) and actions[0].text == PROMPTS.fallback


@pytest.mark.parametrize(
    "text", ["I live in Boston and my order never arrived", "Is this charge real?", "The actual amount was wrong"]
)
def test_an_unrelated_request_with_a_trigger_word_gets_no_handoff(text: str) -> None:
    [actions] = run(started(), [said(text)])
    assert not any(isinstance(a, HandOff) for a in actions)


def test_an_unintelligible_utterance_gets_the_fallback() -> None:
    [actions] = run(started(), [CallerUnintelligible(start_ms=1000, end_ms=1800, t_ms=2000)])
    assert [type(a) for a in actions] == [Say, Listen]
    assert isinstance(actions[0], Say) and actions[0].text == PROMPTS.fallback


def test_two_silences_reprompt_then_say_goodbye_and_end_the_call() -> None:
    dialog = started()
    first, second = run(dialog, [SilenceTimeout(silent_ms=7000, t_ms=9000), SilenceTimeout(7000, 18000)])
    assert [type(a) for a in first] == [Say, Listen]
    assert isinstance(first[0], Say) and first[0].text == PROMPTS.reprompt
    assert [type(a) for a in second] == [Say, EndCall]
    assert isinstance(second[0], Say) and second[0].text == PROMPTS.goodbye
    assert second[1] == EndCall("no_input")
    assert dialog.done


def test_speech_between_silences_resets_the_silence_count() -> None:
    *_, last = run(started(), [SilenceTimeout(7000, 9000), said("hello?", 12000), SilenceTimeout(7000, 20000)])
    assert [type(a) for a in last] == [Say, Listen]


FOLLOW_UPS: list[DialogEvent] = [
    said("agent"),
    DtmfPressed(digit="0", t_ms=9000),
    SilenceTimeout(7000, 9000),
    CallerUnintelligible(start_ms=1, end_ms=2, t_ms=9000),
    PromptPlayed(prompt_id="p2", t_ms=9000),
    CallerHungUp(t_ms=9000),
]


@pytest.mark.parametrize("decided_by", [said("operator"), DtmfPressed(digit="0", t_ms=1500)], ids=["said", "dtmf"])
def test_after_a_handoff_further_events_return_nothing(decided_by: DialogEvent) -> None:
    dialog = started()
    run(dialog, [decided_by])
    assert run(dialog, FOLLOW_UPS) == [[] for _ in FOLLOW_UPS]


def test_after_ending_the_call_further_events_return_nothing() -> None:
    dialog = started()
    run(dialog, [SilenceTimeout(7000, 9000), SilenceTimeout(7000, 18000)])
    assert run(dialog, FOLLOW_UPS) == [[] for _ in FOLLOW_UPS]


def test_after_the_caller_hangs_up_further_events_return_nothing() -> None:
    dialog = started()
    assert run(dialog, [CallerHungUp(t_ms=2000)]) == [[]]
    assert run(dialog, FOLLOW_UPS) == [[] for _ in FOLLOW_UPS]


def test_prompt_ids_are_unique_within_a_call() -> None:
    dialog = started()
    runs = run(dialog, [said("where is my order"), SilenceTimeout(7000, 9000), said("agent", 12000)])
    ids = [a.prompt_id for actions in runs for a in actions if isinstance(a, Say)]
    assert len(ids) == len(set(ids)) == 3


def test_fixed_prompts_contain_every_prompt_the_dialog_says() -> None:
    # Runs every script above once more, so this test does not depend on test order, then checks all of them.
    for text in [*PERSON_REQUESTS, *UNRELATED]:
        run(started(), [said(text)])
    run(started(), [DtmfPressed(digit="0", t_ms=1500)])
    run(started(), [CallerUnintelligible(start_ms=1000, end_ms=1800, t_ms=2000)])
    run(started(), [SilenceTimeout(7000, 9000), SilenceTimeout(7000, 18000)])
    fixed = set(FACTORY.fixed_prompts())
    assert fixed >= SAID
    assert {PROMPTS.greeting, PROMPTS.transfer, PROMPTS.fallback, PROMPTS.reprompt, PROMPTS.goodbye} == SAID


def test_factory_prompts_and_queue_reach_each_dialog() -> None:
    prompts = FirstDialogPrompts(greeting="Hello from billing.")
    factory = FirstDialogFactory(queue="billing", prompts=prompts)
    dialog = factory.new_dialog("CA7")
    [[greeting, _]] = run(dialog, [START])
    assert isinstance(greeting, Say) and greeting.text == "Hello from billing."
    assert "Hello from billing." in set(factory.fixed_prompts())
    [[_, handoff]] = run(dialog, [said("agent")])
    assert isinstance(handoff, HandOff)
    assert handoff.package.recommended_queue == "billing"
    assert handoff.package.call_sid == "CA7"

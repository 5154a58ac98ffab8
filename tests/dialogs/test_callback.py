"""When nobody can take the call now: the dialog offers a callback, confirms the number and a window, and only
then hands off; voicemail and tickets are announced as what they are."""

from __future__ import annotations

from dialogs.actions import HandOff, Say
from dialogs.events import DialogEvent
from dialogs.manager import DialogManagerFactory
from dialogs.routing import RoutingDecision
from dialogs.state import Waiting
from tests.dialogs.conftest import _PACK, Call, keys, said, silence, started

ASK = said("Can I speak to someone about my order?")


def routed_to(mode: str, *events: DialogEvent | list[DialogEvent], caller: str | None = "+15551230003") -> Call:
    c = Call(DialogManagerFactory(_PACK).new_dialog("CA1"), None, route_mode=mode)
    c.feed(started(caller), ASK, *events)
    return c


def handoff(c: Call) -> HandOff:
    (action,) = [a for a in c.actions if isinstance(a, HandOff)]
    return action


def test_a_callback_confirms_the_caller_id_and_a_window_then_hands_off_with_both() -> None:
    c = routed_to("callback", said("Yes please."), said("Afternoon is best."))
    prompts = [s.prompt_id for s in c.says]
    assert prompts[-4:] == ["callback_offer_closed", "callback_number", "callback_window", "callback_confirm"]
    assert "0 0 0 3" in c.says[-3].text  # the number it will call, read digit by digit
    done = handoff(c)
    assert (done.mode, done.callback.number, done.callback.window) == ("callback", "+15551230003", "afternoon")
    assert "in the afternoon" in c.says[-1].text and "what you told me" in c.says[-1].text


def test_a_different_number_can_be_keyed_in() -> None:
    c = routed_to("callback", said("No, not this one."), keys("5559876543"), keys("3"))
    done = handoff(c)
    assert done.callback.number == "+15559876543" and done.callback.window == "evening"


def test_without_caller_id_the_number_is_asked_for() -> None:
    c = routed_to("callback", keys("5551112222"), said("Morning."), caller=None)
    assert c.says[-3].prompt_id == "callback_number_other"
    assert handoff(c).callback.number == "+15551112222"


def test_silence_takes_the_caller_id_and_as_soon_as_possible_nothing_is_lost() -> None:
    c = routed_to("callback", silence(), silence())
    done = handoff(c)
    assert (done.callback.number, done.callback.window) == ("+15551230003", "soon")
    assert "as soon as they can" in c.says[-1].text


def test_voicemail_and_ticket_are_announced_as_what_they_are_and_cannot_be_cut_off() -> None:
    for mode, prompt in (("voicemail", "voicemail_intro"), ("ticket", "ticket_intro")):
        c = routed_to(mode)
        last: Say = c.says[-1]
        assert last.prompt_id == prompt and not last.interruptible
        assert "what you told me" in last.text
        assert handoff(c).mode == mode


def test_a_transfer_with_a_known_wait_says_how_long() -> None:
    from dialogs.events import Routed

    c = Call(DialogManagerFactory(_PACK).new_dialog("CA1"), None)
    c.feed(started(), ASK)
    c.dialog.state.waiting = Waiting.ROUTE  # the conftest routed it already; route again with a wait
    c.dialog.state.done = False
    announced = c.feed(Routed(RoutingDecision(queue="orders", mode="transfer", expected_wait_s=180), t_ms=9_000))
    assert [a.text for a in announced if isinstance(a, Say)][1] == "The wait is about 3 minutes."

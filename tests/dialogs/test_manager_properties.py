"""The dialog manager on random calls (hypothesis): it never raises, every call ends within a bounded number of
turns once the caller goes quiet, and a request for a person, a risk and an emergency always win.

A random call is a random run of caller turns (words from the pack's own examples and from outside it, at
any confidence), unintelligible speech, keys and silences. Whatever the manager asks for is answered as the
session would: a tool with a random result or a failure, routing with a random mode.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialogs.actions import Action, CallTool, EndCall, HandOff, Route
from dialogs.events import (
    CallerSaid,
    CallerUnintelligible,
    CallStarted,
    DialogEvent,
    DtmfPressed,
    Routed,
    SilenceTimeout,
    ToolResult,
)
from dialogs.manager import DialogManager
from dialogs.routing import QueueAvailability, RoutingDecision
from dialogs.state import CallState
from tests.dialogs.conftest import _PACK

PACK = _PACK
IN_PACK = sorted({w for i in PACK.intents for e in i.examples[:8] for w in e.lower().split()})
OUTSIDE = ["purple", "weather", "banana", "seventeen", "yesterday", "football", "piano", "um", "uh", "hmm", "the"]
AGENT = "agent please"
EMERGENCY = "my chest pain is getting worse"
DISPUTE = "I want to dispute a charge on my card"
QUIET_TURNS = 12  # silences after which every call must be over

words = st.lists(st.sampled_from(IN_PACK + OUTSIDE), min_size=1, max_size=12).map(" ".join)
caller_turns = st.one_of(
    st.builds(lambda text, c: CallerSaid(text, c, 0, 1000, 1000), words, st.floats(0.0, 1.0)),
    st.just(CallerUnintelligible(0, 1000, 1000)),
    st.builds(lambda d: DtmfPressed(d, 1000), st.sampled_from("0123456789*#")),
    st.just(SilenceTimeout(7000, 1000)),
)
tool_outcomes = st.tuples(
    st.booleans(),
    st.fixed_dictionaries(
        {},
        optional={
            "found": st.booleans(),
            "total": st.floats(0, 2000),
            "status": st.sampled_from(["shipped", "packed", ""]),
            "status_sentence": st.just("is on its way."),
            "last_digits": st.just("0 0 0 3"),
            "slots": st.lists(st.sampled_from(["Monday at 9", "Tuesday at 2"]), max_size=3),
            "when": st.just("Friday at 10"),
            "provider": st.just("Dr. Patel"),
            "id": st.just("A1"),
            "insurance": st.just("Aetna"),
        },
    ),
)
modes = st.sampled_from(["transfer", "callback", "voicemail", "ticket"])


@dataclass
class Call:
    """Drives one manager as a session would, answering tools and routing from hypothesis draws."""

    draw: Callable[[st.SearchStrategy[object]], object]
    dialog: DialogManager = field(default_factory=lambda: DialogManager(PACK, CallState(call_sid="CA1")))
    actions: list[Action] = field(default_factory=list)

    def feed(self, event: DialogEvent) -> list[Action]:
        out: list[Action] = []
        pending: list[DialogEvent] = [event]
        while pending:
            produced = self.dialog.handle(pending.pop(0))
            out += produced
            for action in produced:
                if isinstance(action, CallTool):
                    ok, data = self.draw(tool_outcomes)  # type: ignore[misc]
                    pending.append(ToolResult(action.call_id, action.tool, ok, data if ok else {"error": "down"}))
                elif isinstance(action, Route):
                    mode = self.draw(modes)
                    decision = RoutingDecision(
                        queue=action.package.recommended_queue,
                        mode=mode,  # type: ignore[arg-type]
                        availability=QueueAvailability(open=mode == "transfer"),
                    )
                    pending.append(Routed(decision))
        self.actions += out
        return out

    @property
    def ended(self) -> bool:
        return any(isinstance(a, HandOff | EndCall) for a in self.actions)

    def undecided(self) -> bool:
        return self.dialog.state.handoff is None and not self.dialog.state.done


def decided_trigger(actions: list[Action]) -> str | None:
    return next((a.package.reason.trigger for a in actions if isinstance(a, Route | HandOff)), None)


def start(call: Call) -> None:
    call.feed(CallStarted(call_sid="CA1", caller="+15551230003", called=None))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(turns=st.lists(caller_turns, max_size=10), data=st.data())
def test_a_random_call_never_raises_and_ends_once_the_caller_goes_quiet(
    turns: list[DialogEvent], data: st.DataObject
) -> None:
    call = Call(data.draw)
    start(call)
    for turn in turns:
        call.feed(turn)
    for _ in range(QUIET_TURNS):
        if call.ended:
            break
        call.feed(SilenceTimeout(7000, 1000))
    assert call.ended, [type(a).__name__ for a in call.actions][-10:]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    before=st.lists(caller_turns, max_size=6),
    safety=st.sampled_from([(AGENT, "explicit_request"), (EMERGENCY, "distress_marker"), (DISPUTE, "dispute")]),
    data=st.data(),
)
def test_a_request_for_a_person_a_risk_and_an_emergency_always_win(
    before: list[DialogEvent], safety: tuple[str, str], data: st.DataObject
) -> None:
    call = Call(data.draw)
    start(call)
    for turn in before:
        call.feed(turn)
    if not call.undecided():
        return  # a handoff is already on its way: nothing may change it
    text, expected = safety
    actions = call.feed(CallerSaid(text, 0.92, 0, 1000, 1000))
    trigger = decided_trigger(actions)
    person = {"explicit_request", "dtmf_zero"}  # asked by voice, or by the keypad a turn before
    if expected == "explicit_request":
        if trigger is None:  # the one routing question first, since the topic is unknown
            reason = call.dialog.state.routing_reason
            assert reason is not None and reason.trigger in person
        else:
            assert trigger in person, trigger
        return
    if expected == "dispute":
        assert trigger in {"billing_dispute", "intent_switch_to_dispute"}, trigger
        return
    assert trigger == expected, (trigger, [type(a).__name__ for a in actions])

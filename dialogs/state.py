"""One call's dialog state: everything the manager knows, built up event by event, in typed fields."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum

from dialogs.package import (
    AttemptedAction,
    Authentication,
    EscalationReason,
    FactSource,
    HandoffPackage,
    KeyFact,
    TranscriptTurn,
    Urgency,
)
from dialogs.routing import RoutingDecision


class Waiting(StrEnum):
    """What the bot last asked the caller for (or the router, for `ROUTE`)."""

    ROUTING_QUESTION = "routing_question"  # which topic: so a person request reaches the right team
    ROUTE = "route"  # where the handoff can go; the router answers, not the caller
    SLOT = "slot"  # a slot's value (`CallState.asked_slot` names it)
    OFFER_PERSON = "offer_person"  # "say agent, or press zero" after unclear speech
    DID_IT_HELP = "did_it_help"  # after a self-service step with a follow-up question
    ANYTHING_ELSE = "anything_else"
    OPEN = "open"  # "what else can I help with?"
    CLARIFY = "clarify"  # "is this about your account, an order, or an appointment?"
    SLOT_CONFIRM = "slot_confirm"  # yes or no to a number of another length than expected
    BOOKING_PICK = "booking_pick"  # one of two offered options
    CALLBACK_NUMBER = "callback_number"  # yes to the caller ID, or another number
    CALLBACK_DIGITS = "callback_digits"  # a number keyed in
    CALLBACK_WINDOW = "callback_window"  # morning, afternoon or evening

    @property
    def about_a_callback(self) -> bool:
        return self in (Waiting.CALLBACK_NUMBER, Waiting.CALLBACK_DIGITS, Waiting.CALLBACK_WINDOW)


@dataclass
class PendingHandoff:
    """A handoff decided, waiting for the router, then (for a callback) for the caller's number and time."""

    package: HandoffPackage
    routed: RoutingDecision | None = None
    callback_number: str | None = None
    callback_window: str | None = None
    asked_number_twice: bool = False


@dataclass
class Booking:
    """The booking flow so far: the booking found by caller ID, and the options offered."""

    found: dict[str, object] = field(default_factory=dict)
    options: list[str] = field(default_factory=list)


@dataclass
class CallState:
    """The fold of a call's events; the manager reads and updates it, nothing else does."""

    call_sid: str
    caller: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    turns: list[TranscriptTurn] = field(default_factory=list)
    intent: str | None = None
    topic_only: str | None = None  # the topic word, when the intent is known only from "order" or a keypad digit
    intents_seen: list[str] = field(default_factory=list)
    first_said: dict[str, str] = field(default_factory=dict)  # the caller's words when they raised each intent
    slots: dict[str, str] = field(default_factory=dict)
    facts: dict[str, KeyFact] = field(default_factory=dict)
    attempted: list[AttemptedAction] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    clarifications: int = 0
    low_confidence_run: int = 0
    no_input: int = 0
    frustrated: bool = False
    urgency: Urgency = "normal"
    language: str | None = None
    authentication: Authentication = "unverified"
    routing_asked: bool = False
    routing_reason: EscalationReason | None = None  # why the caller is being routed (asked before routing)
    waiting: Waiting | None = None
    asked_slot: str | None = None
    slot_conflicts: dict[str, tuple[str, str]] = field(default_factory=dict)
    slot_candidate: str | None = None  # a number of another length, waiting for the caller's yes
    offer_reason: EscalationReason | None = None
    apologised: bool = False  # "Sorry, I didn't catch that" is said at most once a call
    steps_given: set[str] = field(default_factory=set)
    keyed_digits: str = ""
    value_at_stake: float | None = None  # what a tool said the caller's item is worth (for high-value rules)
    booking: Booking | None = None
    handoff: PendingHandoff | None = None
    tool_calls: int = 0
    prompts: int = 0
    done: bool = False

    def fact(self, kind: str, value: str, source: FactSource = "caller") -> None:
        """Remember a fact; a later value for the same kind replaces the earlier one."""
        self.facts[kind] = KeyFact(kind=kind, value=value, source=source)

    def tried(self, action: str, result: str) -> None:
        self.attempted.append(AttemptedAction(action=action, result=result))

    def first_words(self, intent: str | None) -> str | None:
        """What the caller said when they first raised `intent` (or first said anything)."""
        caller = [t for t in self.turns if t.speaker == "caller"]
        mentioned = self.first_said.get(intent) if intent else None
        return mentioned or (caller[0].text if caller else None)

    def ask(self, waiting: Waiting, slot: str | None = None) -> None:
        """Remember what the bot has just asked for."""
        self.waiting = waiting
        self.asked_slot = slot if waiting in (Waiting.SLOT, Waiting.SLOT_CONFIRM) else None

    def next_call_id(self) -> str:
        self.tool_calls += 1
        return f"t{self.tool_calls}"

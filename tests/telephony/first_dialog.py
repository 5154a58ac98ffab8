"""A minimal dialog for session tests: greet, listen, and put the caller through to a person when asked.

It implements the real `Dialog` interface with fixed, predictable behaviour, so session tests check the
session (audio, marks, barge-in, decisions) and not the dialog manager.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from dialogs.actions import Action, EndCall, HandOff, Listen, Say
from dialogs.events import (
    CallerHungUp,
    CallerSaid,
    CallerUnintelligible,
    CallStarted,
    DialogEvent,
    DtmfPressed,
    SilenceTimeout,
)
from dialogs.package import Category, EscalationReason, HandoffPackage, TranscriptTurn
from dialogs.routing import RoutingDecision

PERSON_REQUEST = re.compile(
    r"\b(agents?|humans?|people|person|representatives?|reps?|operators?|somebody|someone|customer service)\b"
    r"|\b(real|live|actual) (person|people|human|agent|someone)\b"
    r"|\b(talk|speak) (to|with) (a|an|some|your)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class FirstDialogPrompts:
    """The prompt copy; short sentences, one idea each, as they will be heard on a phone."""

    greeting: str = "Hi, thanks for calling. How can I help you today?"
    transfer: str = (
        "I'm connecting you to our support team now, and passing along what you told me. "
        "If the line drops, we'll call you back."
    )
    fallback: str = "Thanks. I can't sort that out myself yet. To talk to a person, just say agent, or press zero."
    reprompt: str = "Are you still there? To talk to a person, say agent, or press zero."
    goodbye: str = "I'll let you go for now. Please call back any time. Goodbye."

    def all(self) -> tuple[str, ...]:
        return (self.greeting, self.transfer, self.fallback, self.reprompt, self.goodbye)


@dataclass
class FirstDialog:
    """One call of the first dialog; its state is the transcript so far and a few counters."""

    call_sid: str
    queue: str = "support"
    prompts: FirstDialogPrompts = field(default_factory=FirstDialogPrompts)
    caller: str | None = None
    turns: list[TranscriptTurn] = field(default_factory=list)
    silences: int = 0
    done: bool = False
    _prompt_count: int = 0

    def handle(self, event: DialogEvent) -> list[Action]:
        if self.done:
            return []
        if isinstance(event, CallStarted):
            self.caller = event.caller
            return [self._say(self.prompts.greeting, event.t_ms), Listen()]
        if isinstance(event, CallerSaid):
            self.silences = 0
            self.turns.append(
                TranscriptTurn(
                    speaker="caller",
                    text=event.text,
                    start_ms=event.start_ms,
                    end_ms=event.end_ms,
                    confidence=event.confidence,
                )
            )
            if PERSON_REQUEST.search(event.text):
                return self._hand_off("explicit_request", f'The caller asked for a person: "{event.text}".', event.t_ms)
            return [self._say(self.prompts.fallback, event.t_ms), Listen()]
        if isinstance(event, DtmfPressed) and event.digit == "0":
            return self._hand_off("dtmf_zero", "The caller pressed zero for a person.", event.t_ms)
        if isinstance(event, CallerUnintelligible):
            return [self._say(self.prompts.fallback, event.t_ms), Listen()]
        if isinstance(event, SilenceTimeout):
            self.silences += 1
            if self.silences >= 2:
                self.done = True
                return [self._say(self.prompts.goodbye, event.t_ms), EndCall("no_input")]
            return [self._say(self.prompts.reprompt, event.t_ms), Listen()]
        if isinstance(event, CallerHungUp):
            self.done = True
        return []

    def _say(self, text: str, t_ms: int, *, interruptible: bool = True) -> Say:
        self._prompt_count += 1
        self.turns.append(TranscriptTurn(speaker="bot", text=text, start_ms=t_ms, end_ms=t_ms))
        return Say(text=text, prompt_id=f"p{self._prompt_count}", interruptible=interruptible)

    def _hand_off(self, trigger: str, detail: str, t_ms: int) -> list[Action]:
        self.done = True
        said = [turn.text for turn in self.turns if turn.speaker == "caller"]
        # Not interruptible: the caller must hear what happens next before it happens.
        say = self._say(self.prompts.transfer, t_ms, interruptible=False)
        package = HandoffPackage(
            handoff_id=f"{self.call_sid}-h1",
            call_sid=self.call_sid,
            primary_issue=said[0] if said else "The caller asked for a person before describing the issue.",
            user_goal="Talk to a person.",
            reason=EscalationReason(category="capability_gap", trigger=trigger, detail=detail),
            recommended_queue=self.queue,
            caller=self.caller,
            transcript=tuple(self.turns),
        )
        return [say, HandOff(package, RoutingDecision(queue=self.queue, mode="transfer"))]


@dataclass(frozen=True)
class FirstDialogFactory:
    """Makes a `FirstDialog` per call, all sending handoffs to one queue."""

    queue: str = "support"
    prompts: FirstDialogPrompts = field(default_factory=FirstDialogPrompts)

    def fixed_prompts(self) -> Iterable[str]:
        return self.prompts.all()

    def new_dialog(self, call_sid: str) -> FirstDialog:
        return FirstDialog(call_sid=call_sid, queue=self.queue, prompts=self.prompts)

    def fallback(
        self, call_sid: str, caller: str | None, transcript: tuple[TranscriptTurn, ...], reason: EscalationReason
    ) -> HandoffPackage:
        said = [turn.text for turn in transcript if turn.speaker == "caller"]
        return HandoffPackage(
            handoff_id=f"{call_sid}-fallback",
            call_sid=call_sid,
            primary_issue=said[0] if said else "Not known.",
            user_goal="Ask the caller.",
            reason=reason,
            recommended_queue=self.queue,
            caller=caller,
            transcript=transcript,
        )

    def fallback_reason(
        self, trigger: str, category: Category = "workflow_exception", words: str | None = None, **details: object
    ) -> EscalationReason:
        return EscalationReason(category=category, trigger=trigger, detail=f"{trigger}: {details}")

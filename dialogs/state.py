"""One call's dialog state: everything the manager knows, built up event by event."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from dialogs.package import AttemptedAction, EscalationReason, KeyFact, TranscriptTurn

Waiting = str  # what the bot last asked for: "routing", "slot:order_number", "anything_else", ...


@dataclass
class CallState:
    """The fold of a call's events; the manager reads and updates it, nothing else does."""

    call_sid: str
    caller: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    turns: list[TranscriptTurn] = field(default_factory=list)
    intent: str | None = None
    intents_seen: list[str] = field(default_factory=list)
    slots: dict[str, str] = field(default_factory=dict)
    facts: dict[str, KeyFact] = field(default_factory=dict)
    attempted: list[AttemptedAction] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    clarifications: int = 0
    low_confidence_run: int = 0
    no_input: int = 0
    frustrated: bool = False
    urgency: str = "normal"
    language: str | None = None
    authentication: str = "unverified"
    routing_asked: bool = False
    waiting: Waiting | None = None
    offer_reason: EscalationReason | None = None
    steps_given: set[str] = field(default_factory=set)
    keyed_digits: str = ""
    work: dict[str, Any] = field(default_factory=dict)  # tool data a flow carries between turns
    prompts: int = 0
    done: bool = False

    def fact(self, kind: str, value: str, source: str = "caller") -> None:
        """Remember a fact; a later value for the same kind replaces the earlier one."""
        self.facts[kind] = KeyFact(kind=kind, value=value, source=source)  # type: ignore[arg-type]

    def tried(self, action: str, result: str) -> None:
        self.attempted.append(AttemptedAction(action=action, result=result))

    def first_words(self, intent: str | None) -> str | None:
        """What the caller said when they first raised `intent` (or first said anything)."""
        caller = [t for t in self.turns if t.speaker == "caller"]
        mentioned = self.work.get("first_said", {}).get(intent) if intent else None
        return mentioned or (caller[0].text if caller else None)

"""The handoff package: what an agent needs so the caller never has to repeat themselves.

A strict pydantic template, redacted on construction (card numbers, ID numbers and one-time codes never
reach storage, logs or an agent's ear), rendered as JSON for systems and as a plain-text note for a ticket.
The whisper an agent hears before the call is bridged is written in the pack's words (`dialogs.summary`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from dialogs.redaction import redact

Category = Literal[
    "capability_gap", "confidence_gap", "risk_compliance", "distress", "high_value", "workflow_exception"
]
USER_DISTRESS: Category = "distress"
"""The article's "user distress or frustration: repeated failures, negative sentiment, or direct requests for a
person". Routing goes by trigger, so a plain request for a person still reaches the topic's queue, and only
`distress_marker` (an emergency) goes to the distress queue."""

Urgency = Literal["low", "normal", "high"]
Authentication = Literal["unverified", "caller_id_matched", "verified"]
FactSource = Literal["caller", "caller_id", "call_parameter", "tool"]
Speaker = Literal["caller", "bot"]

Redacted = Annotated[str, AfterValidator(redact)]
"""Text that may quote the caller: card numbers, ID numbers and one-time codes are masked on the way in."""

WHISPER_MAX_WORDS = 55  # at 150 spoken words a minute, about 20 seconds


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EscalationReason(_Strict):
    """Why the bot stepped aside: one of six categories, the signal that fired, and a plain detail."""

    category: Category
    trigger: str
    detail: Redacted


class KeyFact(_Strict):
    """One thing the caller told us or we looked up, typed so a desk can file it (order_number, ...)."""

    kind: str
    value: Redacted
    source: FactSource = "caller"


class AttemptedAction(_Strict):
    """Something the bot already tried, and what came of it, so the agent does not repeat it."""

    action: str
    result: Redacted


class TranscriptTurn(_Strict):
    """One turn of the conversation, in call time, with the recogniser's confidence for caller turns."""

    speaker: Speaker
    text: Redacted
    start_ms: int
    end_ms: int
    confidence: float | None = None


class CallbackRequest(_Strict):
    """A callback the caller agreed to: the number to call (caller ID unless they keyed another) and when."""

    number: str | None
    window: str = "soon"  # a pack's callback window ("morning", ...), or "soon"


class HandoffPackage(_Strict):
    """Everything a human agent gets with the call; every free-text field is redacted on the way in."""

    handoff_id: str
    call_sid: str
    primary_issue: str = Field(description="one or two plain lines")
    user_goal: str
    key_facts: tuple[KeyFact, ...] = ()
    actions_attempted: tuple[AttemptedAction, ...] = ()
    reason: EscalationReason
    recommended_queue: str
    product_area: str = "general"
    urgency: Urgency = "normal"
    frustrated: bool = False
    language: str = "en"
    authentication: Authentication = "unverified"
    caller: str | None = None
    transcript: tuple[TranscriptTurn, ...] = ()

    @field_validator("primary_issue", "user_goal")
    @classmethod
    def _redacted(cls, value: str) -> str:
        return redact(value)

    @model_validator(mode="after")
    def _issue_is_short(self) -> HandoffPackage:
        if self.primary_issue.count("\n") > 1:
            raise ValueError("primary_issue must be one or two lines")
        return self

    def ticket_note(self) -> str:
        """A plain-text note for a help-desk ticket, with the transcript at the end."""
        lines = [
            f"Handoff {self.handoff_id} (call {self.call_sid})",
            f"Issue: {self.primary_issue}",
            f"Goal: {self.user_goal}",
            f"Reason: {self.reason.category} / {self.reason.trigger}: {self.reason.detail}",
            f"Queue: {self.recommended_queue}   Urgency: {self.urgency}   "
            f"Frustrated: {'yes' if self.frustrated else 'no'}   Language: {self.language}   "
            f"Authentication: {self.authentication}",
        ]
        if self.caller:
            lines.append(f"Caller: {self.caller}")
        if self.key_facts:
            lines.append("Key facts:")
            lines.extend(f"  - {fact.kind}: {fact.value} ({fact.source})" for fact in self.key_facts)
        if self.actions_attempted:
            lines.append("Already tried:")
            lines.extend(f"  - {a.action}: {a.result}" for a in self.actions_attempted)
        lines.append("Transcript:")
        for turn in self.transcript:
            confidence = f" ({turn.confidence:.2f})" if turn.confidence is not None else ""
            lines.append(f"  [{_clock(turn.start_ms)}] {turn.speaker}{confidence}: {turn.text}")
        return "\n".join(lines)


def _clock(ms: int) -> str:
    seconds = ms // 1000
    return f"{seconds // 60:02d}:{seconds % 60:02d}"

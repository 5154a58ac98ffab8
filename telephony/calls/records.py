"""What the server keeps about each call: the record the API serves and the replay harness checks.

Caller text is redacted before it is stored here. Every part is typed, so what the session, the desk, the store
and the API see of a call is one validated shape.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

from dialogs.package import CallbackRequest, HandoffPackage, TranscriptTurn
from dialogs.redaction import redact
from dialogs.routing import HandoffMode, RoutingDecision

Scalar = str | int | float | bool | None


class TurnRecord(BaseModel):
    """One turn: the caller's recognised words, or a prompt the bot spoke."""

    speaker: Literal["caller", "bot"]
    text: str
    start_ms: int
    end_ms: int
    confidence: float | None = None
    engine: str | None = None


class PromptRecord(BaseModel):
    """A prompt sent to the caller, and how much of it they heard."""

    prompt_id: str
    mark: str
    text: str
    cached: bool
    interruptible: bool = True  # False: the caller cannot talk over it (what happens next, an emergency line)
    play_start_ms: int
    duration_ms: int
    played: bool = False
    cut_off: bool = False
    heard_ms: int | None = None


class TimelineEntry(BaseModel):
    """One thing that happened, at call time `t_ms`; `detail` holds short scalar facts."""

    t_ms: int
    kind: str
    detail: dict[str, Scalar] = Field(default_factory=dict)


class TurnLatency(BaseModel):
    """How long the caller waited for the bot: from their last voiced frame to our first reply frame."""

    last_voiced_ms: int
    window_closed_ms: int
    after_window_ms: float
    prompt_id: str
    cached: bool

    @property
    def total_ms(self) -> float:
        return self.window_closed_ms - self.last_voiced_ms + self.after_window_ms


class CallDecision(BaseModel):
    """What the stream decided to do with the call once it closes.

    For a handoff, `routing` says where and how (its `mode`: transfer, callback, voicemail, ticket) and why;
    a callback carries the number and time the caller chose.
    """

    kind: Literal["handoff", "end"]
    reason: str
    decided_ms: int
    # The wall-clock instant (epoch seconds) of the decision: the desk measures the time to a person from it,
    # also after a restart, when the call clock (`decided_ms`) means nothing to the webhooks that follow.
    decided_at: float | None = None
    package: HandoffPackage | None = None
    routing: RoutingDecision | None = None
    callback: CallbackRequest | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def mode(self) -> HandoffMode:
        """How the handoff is carried out (the routing's mode; a transfer when nothing was routed)."""
        return self.routing.mode if self.routing is not None else "transfer"


class AttemptNote(BaseModel):
    """One transfer attempt as the live call saw it (the store keeps its own row per attempt)."""

    attempt: int
    target: str
    dial_status: str
    outcome: str


class CallbackPromise(BaseModel):
    """A callback the desk promised: the number, the window, when it is due, and why."""

    number: str
    window: str
    due_at: datetime
    note: str


class VoicemailNote(BaseModel):
    """The caller's message, as its callbacks describe it."""

    url: str | None = None
    duration_s: int = 0
    recording_sid: str | None = None
    transcript: str | None = None


class TransferProgress(BaseModel):
    """What the handoff has come to so far: attempts, the current target, the caller's fallback choice, the
    callback or voicemail. Stored with the call as validated JSON; unknown keys from older rows are ignored."""

    model_config = ConfigDict(extra="ignore")

    kind: Literal["transfer", "callback", "voicemail", "ticket", "hangup"] | None = None
    attempt: int = 0
    target: str | None = None
    moved_by_rest: bool = False
    caller_gone: bool = False
    whisper: str | None = None
    accepted: list[int] = Field(default_factory=list)
    answered_by: dict[int, str] = Field(default_factory=dict)
    attempts: list[AttemptNote] = Field(default_factory=list)
    dial_status: str | None = None
    last_outcome: str | None = None
    queue_result: str | None = None
    fallback: Literal["callback", "voicemail"] | None = None
    callback: CallbackPromise | None = None
    voicemail: VoicemailNote | None = None
    conference: bool = False  # a warm transfer in a conference: the agent is rung while the caller is told
    agent_legs: dict[int, str] = Field(default_factory=dict)  # attempt -> the agent leg's Call SID
    caller_in_room: bool = False  # the caller has entered the conference
    bridged: bool = False  # an agent who pressed 1 and the caller are in the conference together
    seen: set[str] = Field(default_factory=set, exclude=True)  # Twilio callbacks seen, when there is no store


class CallRecord(BaseModel):
    """Everything known about one call, from the voice webhook to the final TwiML."""

    call_sid: str
    account_sid: str | None = None
    stream_sid: str | None = None
    caller: str | None = None
    called: str | None = None
    parameters: dict[str, str] = Field(default_factory=dict)
    base_url: str | None = None  # where Twilio reached us for this call: absolute URLs in REST-moved TwiML
    created_at: float = Field(default_factory=time.time)
    status: Literal["answered", "streaming", "decided", "stream_ended", "completed"] = "answered"
    stream_end: Literal["server_closed", "caller_stop", "dropped", "transferred"] | None = None
    asr_engine: str | None = None
    turns: list[TurnRecord] = Field(default_factory=list)
    prompts: list[PromptRecord] = Field(default_factory=list)
    timeline: list[TimelineEntry] = Field(default_factory=list)
    latencies: list[TurnLatency] = Field(default_factory=list)
    protocol_errors: dict[str, int] = Field(default_factory=dict)
    decision: CallDecision | None = None
    progress: TransferProgress = Field(default_factory=TransferProgress)  # what the handoff came to

    def note(self, t_ms: int, what: str, /, **detail: Scalar) -> None:
        """Add a timeline entry; string details are redacted, since they may quote the caller."""
        clean = {k: redact(v) if isinstance(v, str) else v for k, v in detail.items()}
        self.timeline.append(TimelineEntry(t_ms=t_ms, kind=what, detail=clean))

    def transcript(self) -> tuple[TranscriptTurn, ...]:
        """The turns as the handoff package carries them."""
        return tuple(
            TranscriptTurn(
                speaker=t.speaker, text=t.text, start_ms=t.start_ms, end_ms=t.end_ms, confidence=t.confidence
            )
            for t in self.turns
        )

    def add_caller_turn(self, text: str, start_ms: int, end_ms: int, confidence: float, engine: str) -> None:
        self.turns.append(
            TurnRecord(
                speaker="caller",
                text=redact(text),
                start_ms=start_ms,
                end_ms=end_ms,
                confidence=round(confidence, 3),
                engine=engine,
            )
        )

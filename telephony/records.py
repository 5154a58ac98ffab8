"""What the server keeps about each call: the record the API serves and the replay harness checks.

Caller text is redacted before it is stored here. The registry is in memory; a database-backed store
implements the same three methods.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, Field

from dialogs.package import HandoffPackage, TranscriptTurn
from dialogs.redaction import redact

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


class Decision(BaseModel):
    """What the stream decided to do with the call once it closes.

    For a handoff, `mode` says how (transfer, callback, voicemail, ticket) and `routing` where and why.
    """

    kind: Literal["handoff", "end"]
    reason: str
    decided_ms: int
    package: HandoffPackage | None = None
    mode: Literal["transfer", "callback", "voicemail", "ticket"] = "transfer"
    routing: dict[str, object] = Field(default_factory=dict)
    callback_number: str | None = None
    callback_window: str | None = None


class CallRecord(BaseModel):
    """Everything known about one call, from the voice webhook to the final TwiML."""

    call_sid: str
    account_sid: str | None = None
    stream_sid: str | None = None
    caller: str | None = None
    called: str | None = None
    parameters: dict[str, str] = Field(default_factory=dict)
    created_at: float = Field(default_factory=time.time)
    status: Literal["answered", "streaming", "stream_ended", "completed"] = "answered"
    stream_end: Literal["server_closed", "caller_stop", "dropped", "transferred"] | None = None
    asr_engine: str | None = None
    turns: list[TurnRecord] = Field(default_factory=list)
    prompts: list[PromptRecord] = Field(default_factory=list)
    timeline: list[TimelineEntry] = Field(default_factory=list)
    latencies: list[TurnLatency] = Field(default_factory=list)
    protocol_errors: dict[str, int] = Field(default_factory=dict)
    decision: Decision | None = None
    outcome: dict[str, Any] = Field(default_factory=dict)  # what the TwiML came to: attempts, callback, voicemail

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


class CallRegistry:
    """Call records by call SID, in memory; one per server process."""

    def __init__(self) -> None:
        self._calls: dict[str, CallRecord] = {}

    def get(self, call_sid: str) -> CallRecord | None:
        return self._calls.get(call_sid)

    def open(self, call_sid: str) -> CallRecord:
        """The call's record, created on first sight (a stream may arrive before or without its webhook)."""
        record = self._calls.get(call_sid)
        if record is None:
            record = self._calls[call_sid] = CallRecord(call_sid=call_sid)
        return record

    def adopt(self, record: CallRecord) -> None:
        """Take over a record loaded from the store (after a restart)."""
        self._calls.setdefault(record.call_sid, record)

    def all(self) -> list[CallRecord]:
        return list(self._calls.values())

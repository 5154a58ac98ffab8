"""What happens on a call, as the dialog sees it: small immutable events, each stamped with call time.

The dialog is sans-I/O: it has no clock, so every event carries `t_ms`, milliseconds on the call's media
clock (the caller's audio timeline). The telephony session turns sockets, VAD and speech recognition into
these; a stored call's events replayed in order rebuild its dialog state and its decisions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from dialogs.routing import RoutingDecision


@dataclass(frozen=True, slots=True)
class CallStarted:
    """The media stream is up; `parameters` are the TwiML `<Parameter>`s (caller ID, call data)."""

    call_sid: str
    caller: str | None
    called: str | None
    parameters: Mapping[str, str] = field(default_factory=dict, hash=False)
    t_ms: int = 0


@dataclass(frozen=True, slots=True)
class CallerSaid:
    """A final transcript of one caller utterance; `confidence` is the recogniser's, 0..1."""

    text: str
    confidence: float
    start_ms: int
    end_ms: int
    t_ms: int


@dataclass(frozen=True, slots=True)
class CallerUnintelligible:
    """The caller spoke (the VAD heard an utterance) but the recogniser returned no words."""

    start_ms: int
    end_ms: int
    t_ms: int


@dataclass(frozen=True, slots=True)
class CallerPartial:
    """A partial transcript while the caller is still talking; a hint, never a decision on its own."""

    text: str
    t_ms: int


@dataclass(frozen=True, slots=True)
class DtmfPressed:
    """A keypad press on the caller's phone."""

    digit: str
    t_ms: int


@dataclass(frozen=True, slots=True)
class PromptPlayed:
    """A prompt finished playing to the caller (Twilio echoed its mark)."""

    prompt_id: str
    t_ms: int


@dataclass(frozen=True, slots=True)
class PromptInterrupted:
    """The caller talked over a prompt and it was cut; `heard_ms` of it were played before the cut."""

    prompt_id: str
    heard_ms: int
    t_ms: int


@dataclass(frozen=True, slots=True)
class SilenceTimeout:
    """The caller said nothing for `silent_ms` after the bot finished speaking."""

    silent_ms: int
    t_ms: int


@dataclass(frozen=True, slots=True)
class CallerHungUp:
    """The call ended from the caller's side (Twilio's stop, or the socket dropped)."""

    t_ms: int


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What a tool the dialog asked for returned; `ok` False means it failed and `data` says why."""

    call_id: str
    tool: str
    ok: bool
    data: Mapping[str, object] = field(default_factory=dict, hash=False)
    t_ms: int = 0


@dataclass(frozen=True, slots=True)
class Routed:
    """Where the handoff can go: the router's decision (queue, mode, expected wait, and its reasons)."""

    decision: RoutingDecision
    t_ms: int = 0
    caller_id_matched: bool = False  # the caller's profile was found by caller ID on the way


DialogEvent = (
    CallStarted
    | CallerSaid
    | CallerUnintelligible
    | CallerPartial
    | DtmfPressed
    | PromptPlayed
    | PromptInterrupted
    | SilenceTimeout
    | CallerHungUp
    | ToolResult
    | Routed
)

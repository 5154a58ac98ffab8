"""Pydantic models of the Twilio Media Streams websocket messages, in Twilio's own field names and JSON types.

Inbound models (what Twilio sends) ignore extra keys, because Twilio may add fields; outbound models (what
we send) forbid them and serialize to exactly the documented shape, because Twilio error 31951 lists "extra
field" as a cause. All models are strict: a number where Twilio sends a string (``sequenceNumber``, ``chunk``,
``timestamp``) is a schema violation, not something to coerce. Source:
twilio.com/docs/voice/media-streams/websocket-messages (with captures in shared/TWILIO.md sections 1, 2, 7).

``MediaStreamProtocol`` reads inbound ``media`` on a fast path (msgspec, and the counters checked by hand), to
the same rules as ``MediaMessage``, because it arrives 50 times a second per call; the models here serve the
rare messages, whatever the fast path does not accept, and the tests.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter

__all__ = [
    "ClearMessage",
    "ConnectedMessage",
    "DtmfDetails",
    "DtmfMessage",
    "InboundMessage",
    "InboundMessageAdapter",
    "MarkDetails",
    "MarkMessage",
    "MediaChunk",
    "MediaFormat",
    "MediaMessage",
    "NumericString",
    "OutboundMark",
    "OutboundMarkMessage",
    "OutboundMedia",
    "OutboundMediaMessage",
    "OutboundMessage",
    "OutboundMessageAdapter",
    "StartDetails",
    "StartMessage",
    "StopDetails",
    "StopMessage",
]

NUMERIC_STRING_MAX_DIGITS = 9
"""Longest ``sequenceNumber``/``chunk``/``timestamp`` accepted. Nine digits outlast any call (a timestamp of
4 hours is 8 digits; Twilio ends calls at 4 hours), fit a 32-bit column in any database, and the bound
keeps ``int()`` cheap and safe on hostile input."""

NumericString = Annotated[str, StringConstraints(pattern=rf"^[0-9]{{1,{NUMERIC_STRING_MAX_DIGITS}}}$")]
"""A non-negative integer that Twilio sends as a JSON string of ASCII digits, e.g. ``"1"``."""

DtmfDigit = Annotated[str, StringConstraints(pattern=r"^[0-9*#A-Da-d]$")]
"""One telephone keypad key."""

Track = Literal["inbound", "outbound"]


class _Inbound(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)


class _Outbound(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# --- Twilio → us --------------------------------------------------------------------------------


class ConnectedMessage(_Inbound):
    """The first message on the socket; it has no ``sequenceNumber`` and no ``streamSid``."""

    event: Literal["connected"]
    protocol: str
    version: str


class MediaFormat(_Inbound):
    """Twilio documents the values as always ``audio/x-mulaw``, 8000 and 1; the protocol checks them."""

    encoding: str
    sampleRate: int
    channels: int


class StartDetails(_Inbound):
    accountSid: str
    streamSid: str
    callSid: str
    tracks: list[Track]
    mediaFormat: MediaFormat
    # Always present in the docs and captures; an absent object is read as "no <Parameter>".
    customParameters: dict[str, str] = Field(default_factory=dict)


class StartMessage(_Inbound):
    """Sent once, right after ``connected``; ``streamSid`` repeats ``start.streamSid``."""

    event: Literal["start"]
    sequenceNumber: NumericString
    start: StartDetails
    streamSid: str


class MediaChunk(_Inbound):
    track: Track
    chunk: NumericString
    timestamp: NumericString
    payload: str
    """Base64 of raw 8 kHz μ-law, no header; 160 bytes (20 ms) per message in every capture."""


class MediaMessage(_Inbound):
    event: Literal["media"]
    sequenceNumber: NumericString
    media: MediaChunk
    streamSid: str


class DtmfDetails(_Inbound):
    track: Literal["inbound_track"]
    digit: DtmfDigit


class DtmfMessage(_Inbound):
    event: Literal["dtmf"]
    streamSid: str
    sequenceNumber: NumericString
    dtmf: DtmfDetails


class MarkDetails(_Inbound):
    name: str


class MarkMessage(_Inbound):
    """Twilio's echo of a mark we sent: its audio finished playing, or it was cleared."""

    event: Literal["mark"]
    sequenceNumber: NumericString
    streamSid: str
    mark: MarkDetails


class StopDetails(_Inbound):
    accountSid: str
    callSid: str


class StopMessage(_Inbound):
    event: Literal["stop"]
    sequenceNumber: NumericString
    stop: StopDetails
    streamSid: str


InboundMessage = Annotated[
    ConnectedMessage | StartMessage | MediaMessage | DtmfMessage | MarkMessage | StopMessage,
    Field(discriminator="event"),
]
InboundMessageAdapter: TypeAdapter[InboundMessage] = TypeAdapter(InboundMessage)


# --- us → Twilio (bidirectional <Connect><Stream> only) ----------------------------------------


class OutboundMedia(_Outbound):
    payload: str
    """Base64 of 8 kHz μ-law with no file header; any length."""


class OutboundMediaMessage(_Outbound):
    """Serializes as ``{"event":"media","streamSid":..,"media":{"payload":..}}``."""

    event: Literal["media"] = "media"
    streamSid: str
    media: OutboundMedia


class OutboundMark(_Outbound):
    name: str


class OutboundMarkMessage(_Outbound):
    """Serializes as ``{"event":"mark","streamSid":..,"mark":{"name":..}}``; Twilio echoes it when the audio
    sent before it has played, or at once when there is none or it is cleared."""

    event: Literal["mark"] = "mark"
    streamSid: str
    mark: OutboundMark


class ClearMessage(_Outbound):
    """Serializes as ``{"event":"clear","streamSid":..}``; empties Twilio's buffer, echoes pending marks."""

    event: Literal["clear"] = "clear"
    streamSid: str


OutboundMessage = Annotated[
    OutboundMediaMessage | OutboundMarkMessage | ClearMessage,
    Field(discriminator="event"),
]
OutboundMessageAdapter: TypeAdapter[OutboundMessage] = TypeAdapter(OutboundMessage)

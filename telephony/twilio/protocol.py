"""Sans-I/O core of a Twilio bidirectional Media Stream: websocket text in; typed events, outbound text out.

``MediaStreamProtocol`` never touches a socket, a clock or a logger. The websocket handler feeds it each
message with ``receive()`` and acts on the one event it returns; it asks it for the text of outbound
``media``, ``mark`` and ``clear`` messages and sends that. Bad input is never raised: it comes back as a
``ProtocolError`` event, so one bad message never ends a call.

Inbound ``media`` (50 messages a second per call) is read on a fast path: msgspec decodes it straight into a
typed struct (base64 included, in C), and what msgspec cannot check (the counters' digits, the stream's SID) is
checked by hand, to the same rules as ``telephony.twilio.messages.MediaMessage``. Anything the fast path does
not accept, and every other message, goes through the pydantic models, which say exactly what is wrong.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Literal, NamedTuple, TypeAlias, TypeVar

import msgspec
import orjson
from pydantic import BaseModel, ValidationError

from telephony import TelephonyError
from telephony.twilio.messages import (
    NUMERIC_STRING_MAX_DIGITS,
    ConnectedMessage,
    DtmfMessage,
    MarkMessage,
    MediaMessage,
    StartMessage,
    StopMessage,
)

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "ULAW_SILENCE",
    "Connected",
    "DtmfReceived",
    "MarkEchoed",
    "MediaReceived",
    "MediaStreamError",
    "MediaStreamProtocol",
    "ProtocolError",
    "ProtocolErrorKind",
    "Started",
    "Stopped",
    "StreamEvent",
    "StreamNotStartedError",
    "StreamState",
]

DEFAULT_MAX_MESSAGE_BYTES = 64_000
"""A real inbound message is about 400 bytes (160 bytes of audio); anything near this limit is not Twilio."""

ULAW_SILENCE = 0xFF
"""μ-law code of a zero sample, used to pad the last outbound frame."""

SUPPORTED_ENCODING = "audio/x-mulaw"
SUPPORTED_SAMPLE_RATE = 8000
SUPPORTED_CHANNELS = 1


class MediaStreamError(TelephonyError):
    """An outbound media-stream message cannot be built (the mark name cannot be encoded as JSON, say)."""


class StreamNotStartedError(MediaStreamError):
    """An outbound message was asked for before Twilio's ``start`` gave the stream SID it must carry."""


class StreamState(StrEnum):
    """Where the stream is: Twilio sends connected → start → (media | dtmf | mark)* → stop."""

    IDLE = "idle"
    STARTED = "started"
    STOPPED = "stopped"


class ProtocolErrorKind(StrEnum):
    """Why an inbound message was not turned into an event.

    ``fatal`` on the error means the call cannot be understood and the session should hand it to a person;
    every other error means "this message was skipped; carry on with the next one".

    Fatal: ``unsupported_media_format`` (``start`` announced something other than audio/x-mulaw, 8000 Hz,
    1 channel; every later ``media`` repeats it), and ``invalid_message`` when the message is a ``start``
    (with no stream SID the call can neither be heard nor answered). Skipped and not fatal:

    - ``malformed_json``: a text message that is not JSON;
    - ``not_an_object``: JSON, but not an object;
    - ``unknown_event``: an ``event`` Twilio does not document;
    - ``invalid_message``: a documented event that breaks its schema (missing field, wrong JSON type,
      media on the outbound track, a missing ``event``);
    - ``bad_base64``: a ``media`` payload that is not strict base64;
    - ``oversized_message``: longer than ``max_message_bytes``, rejected before parsing;
    - ``media_before_start``: ``media``, ``dtmf`` or ``mark`` before ``start``;
    - ``duplicate_start``: a second ``start``; the first stays in force;
    - ``binary_frame``: a binary frame that is not UTF-8 JSON (Twilio sends only text frames);
    - ``wrong_stream_sid``: a ``streamSid`` other than the one ``start`` announced;
    - ``after_stop``: anything after ``stop``; the call is over, so there is nothing left to hand off.
    """

    MALFORMED_JSON = "malformed_json"
    NOT_AN_OBJECT = "not_an_object"
    UNKNOWN_EVENT = "unknown_event"
    INVALID_MESSAGE = "invalid_message"
    UNSUPPORTED_MEDIA_FORMAT = "unsupported_media_format"
    BAD_BASE64 = "bad_base64"
    OVERSIZED_MESSAGE = "oversized_message"
    MEDIA_BEFORE_START = "media_before_start"
    DUPLICATE_START = "duplicate_start"
    BINARY_FRAME = "binary_frame"
    WRONG_STREAM_SID = "wrong_stream_sid"
    AFTER_STOP = "after_stop"


_FATAL_KINDS = frozenset({ProtocolErrorKind.UNSUPPORTED_MEDIA_FORMAT})


# --- events --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Connected:
    """Twilio's greeting; ``version`` is "1.0.0" today ("0.2.0" in 2019 captures)."""

    protocol: str
    version: str


@dataclass(frozen=True, slots=True)
class Started:
    """The stream is set up; outbound messages can be built from now on."""

    stream_sid: str
    call_sid: str
    account_sid: str
    tracks: tuple[str, ...]
    custom_parameters: Mapping[str, str] = field(hash=False)  # read-only; values of <Parameter> in the TwiML
    sequence: int
    media_problem: str | None = None  # the media format cannot be heard: the call must go to a person


class MediaReceived(NamedTuple):
    """20 ms of caller audio (in every capture): ``payload`` is 8 kHz μ-law, already base64-decoded.

    A named tuple, not a frozen dataclass like the other events: 50 are made a second per call, and a tuple is
    built in one step (`_new_media`), where a frozen dataclass takes a guarded set per field."""

    sequence: int
    chunk: int
    timestamp_ms: int  # from the start of the stream; the first chunk is not at 0
    payload: bytes


@dataclass(frozen=True, slots=True)
class DtmfReceived:
    digit: str
    sequence: int


@dataclass(frozen=True, slots=True)
class MarkEchoed:
    """A mark we sent came back: the audio queued before it has played, or was cleared."""

    name: str
    sequence: int


@dataclass(frozen=True, slots=True)
class Stopped:
    """The stream ended, which for a bidirectional stream means the call ended."""

    call_sid: str
    sequence: int


@dataclass(frozen=True, slots=True)
class ProtocolError:
    """An inbound message that was skipped (or, when ``fatal``, a call that cannot be understood)."""

    kind: ProtocolErrorKind
    detail: str
    call_sid: str | None
    stream_sid: str | None
    fatal: bool


StreamEvent: TypeAlias = Connected | Started | MediaReceived | DtmfReceived | MarkEchoed | Stopped | ProtocolError

_JsonObject: TypeAlias = dict[str, Any]

_MAX_DIGITS = NUMERIC_STRING_MAX_DIGITS
_new_media = tuple.__new__  # MediaReceived(...) without its Python-level __new__


class _FastMediaBody(msgspec.Struct):
    """The ``media`` object of an inbound audio message, as the fast path takes it: ``payload`` is decoded
    from base64 by msgspec, which refuses every string ``binascii.a2b_base64(..., strict_mode=True)`` refuses
    (and a few more, which the slow path then reads)."""

    track: Literal["inbound"]
    chunk: str
    timestamp: str
    payload: bytes


class _FastMedia(msgspec.Struct):
    """An inbound audio message, as the fast path takes it (unknown keys are ignored, as by the model)."""

    event: Literal["media"]
    sequenceNumber: str  # Twilio's keys
    streamSid: str
    media: _FastMediaBody


_decode_fast_media = msgspec.json.Decoder(_FastMedia).decode
_Model = TypeVar("_Model", bound=BaseModel)

_DETAIL_MAX_CHARS = 300


def _clip(text: str) -> str:
    return text if len(text) <= _DETAIL_MAX_CHARS else text[: _DETAIL_MAX_CHARS - 1] + "…"


def _describe(exc: ValidationError) -> str:
    problems = exc.errors(include_url=False, include_input=False)
    parts = [f"{'.'.join(str(loc) for loc in p['loc']) or '<root>'}: {p['msg']}" for p in problems[:3]]
    if len(problems) > 3:
        parts.append(f"and {len(problems) - 3} more")
    return "; ".join(parts)


def _numeric(value: object) -> int | None:
    """Twilio's string-encoded counters, by the rule of ``messages.NumericString``."""
    if type(value) is str and len(value) <= NUMERIC_STRING_MAX_DIGITS and value.isdigit() and value.isascii():
        return int(value)
    return None


class MediaStreamProtocol:
    """One Twilio bidirectional Media Stream, as a state machine over its websocket messages.

    Besides the events it returns, it keeps what a session needs to report on the stream: ``state``, the
    SIDs from ``start``, ``last_sequence``, ``sequence_gaps`` (messages lost, judged by Twilio's
    ``sequenceNumber``, one counter shared by every message type after ``connected``) and ``error_counts``.
    """

    def __init__(self, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        if max_message_bytes <= 0:
            raise ValueError(f"max_message_bytes must be positive, not {max_message_bytes}")
        self.max_message_bytes = max_message_bytes
        # Text of at most this many characters cannot exceed the limit even in 4-byte UTF-8.
        self._unchecked_chars = max_message_bytes // 4
        self._state = StreamState.IDLE
        self._media_open = False  # started, with a usable media format: the fast path may run
        self._format_supported = True
        self._stream_sid: str | None = None
        self._call_sid: str | None = None
        self._account_sid: str | None = None
        self._last_sequence = 0
        self._sequence_gaps = 0
        self._error_counts: dict[ProtocolErrorKind, int] = dict.fromkeys(ProtocolErrorKind, 0)
        self._outbound_sid: str | None = None  # set by a valid start only, never by a stray stop
        self._media_prefix = ""
        self._clear_text = ""

    # --- what the session can read ---------------------------------------------------------------------

    @property
    def state(self) -> StreamState:
        return self._state

    @property
    def stream_sid(self) -> str | None:
        return self._stream_sid

    @property
    def call_sid(self) -> str | None:
        return self._call_sid

    @property
    def account_sid(self) -> str | None:
        return self._account_sid

    @property
    def last_sequence(self) -> int:
        """Highest ``sequenceNumber`` seen; 0 before any (Twilio counts from 1)."""
        return self._last_sequence

    @property
    def sequence_gaps(self) -> int:
        """Messages Twilio numbered that never arrived. Rejected messages are not counted as lost."""
        return self._sequence_gaps

    @property
    def error_counts(self) -> Mapping[ProtocolErrorKind, int]:
        """Errors returned so far, per kind (every kind present, most at 0); a read-only view."""
        return MappingProxyType(self._error_counts)

    # --- inbound ---------------------------------------------------------------------------------------

    def receive(self, text: str | bytes) -> StreamEvent:
        """Turn one websocket message into one event. Never raises on bad input: returns ``ProtocolError``."""
        if len(text) > self._unchecked_chars:
            oversized = self._check_size(text)
            if oversized is not None:
                return oversized
        # Hot path: inbound audio on a started stream, 50 messages a second per call. Anything else, or anything
        # unusual (a wrong type, a missing key, bad base64, a counter that is not digits), takes the general path.
        if self._media_open and type(text) is str:
            try:
                fast = _decode_fast_media(text)
            except msgspec.DecodeError:  # msgspec's ValidationError too
                fast = None
            if fast is not None:
                media = fast.media
                seq, chunk, stamp = fast.sequenceNumber, media.chunk, media.timestamp
                counters = seq + chunk + stamp  # `_numeric`'s rule for the three at once: digits, at most nine each
                if (
                    fast.streamSid == self._stream_sid
                    and 0 < len(seq) <= _MAX_DIGITS
                    and 0 < len(chunk) <= _MAX_DIGITS
                    and 0 < len(stamp) <= _MAX_DIGITS
                    and counters.isdigit()
                    and counters.isascii()
                ):
                    sequence = int(seq)
                    last = self._last_sequence
                    if sequence > last:
                        if sequence != last + 1:
                            self._sequence_gaps += sequence - last - 1
                        self._last_sequence = sequence
                    return _new_media(MediaReceived, (sequence, int(chunk), int(stamp), media.payload))
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            if isinstance(text, str):
                return self._error(ProtocolErrorKind.MALFORMED_JSON, str(exc))
            return self._error(ProtocolErrorKind.BINARY_FRAME, f"binary frame of {len(text)} bytes: {exc}")
        if type(msg) is not dict:
            return self._error(ProtocolErrorKind.NOT_AN_OBJECT, f"JSON {type(msg).__name__}, not an object")
        event = msg.get("event")
        if type(event) is not str:
            return self._error(ProtocolErrorKind.INVALID_MESSAGE, "event: missing or not a string")
        handler = _HANDLERS.get(event)
        if handler is None:
            return self._error(ProtocolErrorKind.UNKNOWN_EVENT, f"event {_clip(repr(event))}")
        return handler(self, msg)

    def _check_size(self, text: str | bytes) -> ProtocolError | None:
        if isinstance(text, str):
            size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
        else:
            size = len(text)
        if size > self.max_message_bytes:
            return self._error(
                ProtocolErrorKind.OVERSIZED_MESSAGE,
                f"message of {size} bytes exceeds the limit of {self.max_message_bytes}",
            )
        return None

    def _error(
        self,
        kind: ProtocolErrorKind,
        detail: str,
        *,
        fatal: bool | None = None,
        call_sid: str | None = None,
        stream_sid: str | None = None,
    ) -> ProtocolError:
        self._error_counts[kind] += 1
        return ProtocolError(
            kind=kind,
            detail=_clip(detail),
            call_sid=call_sid if call_sid is not None else self._call_sid,
            stream_sid=stream_sid if stream_sid is not None else self._stream_sid,
            fatal=kind in _FATAL_KINDS if fatal is None else fatal,
        )

    def _note_sequence(self, raw: object) -> None:
        sequence = _numeric(raw)
        if sequence is not None and sequence > self._last_sequence:
            if sequence != self._last_sequence + 1:
                self._sequence_gaps += sequence - self._last_sequence - 1
            self._last_sequence = sequence

    def _stream_message_refused(self, msg: _JsonObject, event: str) -> ProtocolError | None:
        """The state and ``streamSid`` checks shared by media, dtmf and mark; notes the sequence if ours."""
        if self._state is StreamState.STOPPED:
            return self._error(ProtocolErrorKind.AFTER_STOP, f"{event} after stop")
        if self._state is StreamState.IDLE:
            return self._error(ProtocolErrorKind.MEDIA_BEFORE_START, f"{event} before start")
        sid = msg.get("streamSid")
        if type(sid) is str and sid != self._stream_sid:
            return self._error(
                ProtocolErrorKind.WRONG_STREAM_SID, f"{event} for stream {_clip(repr(sid))}, not this one"
            )
        if sid == self._stream_sid:  # a missing or mistyped SID is left to the schema check
            self._note_sequence(msg.get("sequenceNumber"))
        return None

    def _validate(self, model: type[_Model], msg: _JsonObject) -> _Model | ProtocolError:
        try:
            return model.model_validate(msg)
        except ValidationError as exc:
            return self._error(ProtocolErrorKind.INVALID_MESSAGE, f"{msg.get('event')}: {_describe(exc)}")

    def _on_connected(self, msg: _JsonObject) -> StreamEvent:
        if self._state is StreamState.STOPPED:
            return self._error(ProtocolErrorKind.AFTER_STOP, "connected after stop")
        parsed = self._validate(ConnectedMessage, msg)
        if isinstance(parsed, ProtocolError):
            return parsed
        return Connected(protocol=parsed.protocol, version=parsed.version)

    def _on_start(self, msg: _JsonObject) -> StreamEvent:
        if self._state is StreamState.STOPPED:
            return self._error(ProtocolErrorKind.AFTER_STOP, "start after stop")
        if self._state is StreamState.STARTED:
            return self._error(ProtocolErrorKind.DUPLICATE_START, "a second start; the first stays in force")
        raw = msg.get("start")
        raw_call_sid = raw.get("callSid") if type(raw) is dict else None
        raw_stream_sid = msg.get("streamSid")
        try:
            parsed = StartMessage.model_validate(msg)
        except ValidationError as exc:
            # Without a valid start the call can neither be heard nor answered.
            return self._error(
                ProtocolErrorKind.INVALID_MESSAGE,
                f"start: {_describe(exc)}",
                fatal=True,
                call_sid=raw_call_sid if type(raw_call_sid) is str else None,
                stream_sid=raw_stream_sid if type(raw_stream_sid) is str else None,
            )
        start = parsed.start
        if parsed.streamSid != start.streamSid:
            return self._error(
                ProtocolErrorKind.INVALID_MESSAGE,
                f"start: streamSid {parsed.streamSid!r} differs from start.streamSid {start.streamSid!r}",
                fatal=True,
                call_sid=start.callSid,
                stream_sid=start.streamSid,
            )
        self._note_sequence(parsed.sequenceNumber)
        self._state = StreamState.STARTED
        self._stream_sid = start.streamSid
        self._call_sid = start.callSid
        self._account_sid = start.accountSid
        self._outbound_sid = start.streamSid
        sid_json = orjson.dumps(start.streamSid).decode()
        self._media_prefix = '{"event":"media","streamSid":' + sid_json + ',"media":{"payload":"'
        self._clear_text = '{"event":"clear","streamSid":' + sid_json + "}"
        fmt = start.mediaFormat
        self._format_supported = (
            fmt.encoding == SUPPORTED_ENCODING
            and fmt.sampleRate == SUPPORTED_SAMPLE_RATE
            and fmt.channels == SUPPORTED_CHANNELS
        )
        problem = None
        if not self._format_supported:  # still a start: the session checks it is ours, then hands the call on
            problem = (
                f"start: media format {fmt.encoding!r}, {fmt.sampleRate} Hz, {fmt.channels} channel(s); "
                f"only {SUPPORTED_ENCODING!r}, {SUPPORTED_SAMPLE_RATE} Hz, {SUPPORTED_CHANNELS} channel "
                "is understood"
            )
        self._media_open = self._format_supported
        return Started(
            stream_sid=start.streamSid,
            call_sid=start.callSid,
            account_sid=start.accountSid,
            tracks=tuple(start.tracks),
            custom_parameters=MappingProxyType(dict(start.customParameters)),
            sequence=int(parsed.sequenceNumber),
            media_problem=problem,
        )

    def _on_media_slow(self, msg: _JsonObject) -> StreamEvent:
        refused = self._stream_message_refused(msg, "media")
        if refused is not None:
            return refused
        if not self._format_supported:
            return self._error(ProtocolErrorKind.UNSUPPORTED_MEDIA_FORMAT, "media in an unsupported format")
        parsed = self._validate(MediaMessage, msg)
        if isinstance(parsed, ProtocolError):
            return parsed
        media = parsed.media
        if media.track != "inbound":
            return self._error(
                ProtocolErrorKind.INVALID_MESSAGE,
                f"media on the {media.track!r} track; a bidirectional stream carries only 'inbound'",
            )
        try:
            audio = binascii.a2b_base64(media.payload, strict_mode=True)
        except ValueError as exc:
            return self._error(ProtocolErrorKind.BAD_BASE64, f"media payload: {exc}")
        return MediaReceived(int(parsed.sequenceNumber), int(media.chunk), int(media.timestamp), audio)

    def _on_dtmf(self, msg: _JsonObject) -> StreamEvent:
        refused = self._stream_message_refused(msg, "dtmf")
        if refused is not None:
            return refused
        parsed = self._validate(DtmfMessage, msg)
        if isinstance(parsed, ProtocolError):
            return parsed
        return DtmfReceived(digit=parsed.dtmf.digit, sequence=int(parsed.sequenceNumber))

    def _on_mark(self, msg: _JsonObject) -> StreamEvent:
        refused = self._stream_message_refused(msg, "mark")
        if refused is not None:
            return refused
        parsed = self._validate(MarkMessage, msg)
        if isinstance(parsed, ProtocolError):
            return parsed
        return MarkEchoed(name=parsed.mark.name, sequence=int(parsed.sequenceNumber))

    def _on_stop(self, msg: _JsonObject) -> StreamEvent:
        if self._state is StreamState.STOPPED:
            return self._error(ProtocolErrorKind.AFTER_STOP, "a second stop")
        sid = msg.get("streamSid")
        if self._state is StreamState.STARTED:
            if type(sid) is str and sid != self._stream_sid:
                return self._error(
                    ProtocolErrorKind.WRONG_STREAM_SID, f"stop for stream {_clip(repr(sid))}, not this one"
                )
            if sid == self._stream_sid:
                self._note_sequence(msg.get("sequenceNumber"))
        parsed = self._validate(StopMessage, msg)
        if isinstance(parsed, ProtocolError):
            return parsed
        # A stop with no start before it still means the call is over, so it is honoured.
        self._note_sequence(parsed.sequenceNumber)
        self._state = StreamState.STOPPED
        self._media_open = False
        if self._call_sid is None:
            self._call_sid = parsed.stop.callSid
        if self._stream_sid is None:
            self._stream_sid = parsed.streamSid
        return Stopped(call_sid=parsed.stop.callSid, sequence=int(parsed.sequenceNumber))

    # --- outbound --------------------------------------------------------------------------------------

    def _require_stream_sid(self, what: str) -> str:
        if self._outbound_sid is None:
            raise StreamNotStartedError(f"cannot build a {what} message before Twilio's start gives the stream SID")
        return self._outbound_sid

    def media(self, ulaw: bytes) -> str:
        """``{"event":"media","streamSid":..,"media":{"payload":..}}``: 8 kHz μ-law, no header, any length."""
        self._require_stream_sid("media")
        return self._media_prefix + binascii.b2a_base64(ulaw, newline=False).decode("ascii") + '"}}'

    def media_frames(self, ulaw: bytes, frame_bytes: int = 160, pad_to: int | None = None) -> list[str]:
        """``media`` messages of ``frame_bytes`` each (160 = 20 ms), the audio padded with μ-law silence to a
        whole number of ``pad_to`` bytes (``frame_bytes`` unless set; the last message may then be shorter)."""
        self._require_stream_sid("media")
        if frame_bytes <= 0:
            raise ValueError(f"frame_bytes must be positive, not {frame_bytes}")
        pad = frame_bytes if pad_to is None else pad_to
        if pad <= 0:
            raise ValueError(f"pad_to must be positive, not {pad}")
        remainder = len(ulaw) % pad
        if remainder:
            ulaw = bytes(ulaw) + bytes([ULAW_SILENCE]) * (pad - remainder)
        prefix = self._media_prefix
        b2a = binascii.b2a_base64
        view = memoryview(ulaw)
        return [
            prefix + b2a(view[i : i + frame_bytes], newline=False).decode("ascii") + '"}}'
            for i in range(0, len(ulaw), frame_bytes)
        ]

    def mark(self, name: str) -> str:
        """``{"event":"mark","streamSid":..,"mark":{"name":..}}``; echoed when the audio before it played."""
        stream_sid = self._require_stream_sid("mark")
        if not isinstance(name, str):
            raise TypeError(f"mark name must be str, not {type(name).__name__}")
        try:
            return orjson.dumps({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}}).decode()
        except orjson.JSONEncodeError as exc:
            raise MediaStreamError(f"mark name {name!r} cannot be sent as JSON: {exc}") from exc

    def clear(self) -> str:
        """``{"event":"clear","streamSid":..}``: drop Twilio's buffered audio; pending marks come back."""
        self._require_stream_sid("clear")
        return self._clear_text


_HANDLERS: dict[str, Callable[[MediaStreamProtocol, _JsonObject], StreamEvent]] = {
    "connected": MediaStreamProtocol._on_connected,
    "start": MediaStreamProtocol._on_start,
    "media": MediaStreamProtocol._on_media_slow,
    "dtmf": MediaStreamProtocol._on_dtmf,
    "mark": MediaStreamProtocol._on_mark,
    "stop": MediaStreamProtocol._on_stop,
}

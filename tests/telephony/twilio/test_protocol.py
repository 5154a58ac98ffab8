"""MediaStreamProtocol and the message models, on the literal JSON of Twilio's docs and of real captures.

Literals come from shared/TWILIO.md: section 1 (Twilio's doc examples), section 2 (what we send) and section 7
(real captures: twilio/media-streams connect-basic, 2020, with a UUID-form streamSid; tigerfarm/work, 2019,
protocol 0.2.0). The connect-basic capture was logged as JavaScript objects; it is written here as the JSON
Twilio sent.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from telephony import TelephonyError
from telephony.twilio.messages import (
    ClearMessage,
    ConnectedMessage,
    DtmfMessage,
    InboundMessageAdapter,
    MarkMessage,
    MediaMessage,
    OutboundMarkMessage,
    OutboundMediaMessage,
    OutboundMessageAdapter,
    StartMessage,
    StopMessage,
)
from telephony.twilio.protocol import (
    ULAW_SILENCE,
    Connected,
    DtmfReceived,
    MarkEchoed,
    MediaReceived,
    MediaStreamError,
    MediaStreamProtocol,
    ProtocolError,
    ProtocolErrorKind,
    Started,
    Stopped,
    StreamNotStartedError,
    StreamState,
)

EVENT_TYPES = (Connected, Started, MediaReceived, DtmfReceived, MarkEchoed, Stopped, ProtocolError)

# --- Twilio's doc examples (TWILIO.md §1) ------------------------------------------------------------------

DOC_SID = "MZXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"
DOC_CALL = "CAXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"
DOC_ACCOUNT = "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"

DOC_CONNECTED = '{ "event": "connected", "protocol": "Call", "version": "1.0.0" }'
DOC_START = """{ "event": "start", "sequenceNumber": "1",
  "start": { "accountSid": "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
             "streamSid": "MZXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
             "callSid": "CAXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", "tracks": [ "inbound" ],
             "mediaFormat": { "encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1 },
             "customParameters": { "FirstName": "Jane", "LastName": "Doe", "RemoteParty": "Bob" } },
  "streamSid": "MZXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX" }"""
# The doc elides its payload as "no+JhoaJjpzS..."; verbatim it is not base64 (see the bad_base64 test).
DOC_MEDIA_VERBATIM = """{ "event": "media", "sequenceNumber": "4",
  "media": { "track": "inbound", "chunk": "2", "timestamp": "5", "payload": "no+JhoaJjpzS..." },
  "streamSid": "MZXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX" }"""
DOC_MEDIA = DOC_MEDIA_VERBATIM.replace("no+JhoaJjpzS...", "no+JhoaJjpzS")
DOC_DTMF = """{ "event": "dtmf", "streamSid": "MZXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", "sequenceNumber": "5",
  "dtmf": { "track": "inbound_track", "digit": "1" } }"""
DOC_MARK = """{ "event": "mark", "sequenceNumber": "4", "streamSid": "MZXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
  "mark": { "name": "my label" } }"""
DOC_STOP = """{ "event": "stop", "sequenceNumber": "5",
  "stop": { "accountSid": "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", "callSid": "CAXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX" },
  "streamSid": "MZXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX" }"""

# TWILIO.md §2: what we send.
DOC_OUT_MEDIA = (
    '{ "event": "media", "streamSid": "MZXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", "media": { "payload": "a3242sa..." } }'
)
DOC_OUT_MARK = '{ "event": "mark", "streamSid": "MZXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", "mark": { "name": "my label" } }'
DOC_OUT_CLEAR = '{ "event": "clear", "streamSid": "MZXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX" }'

# --- capture 1: twilio/media-streams node/connect-basic/output.txt (bidirectional, 2020) --------------------

CB_SID = "9e7ee906-377b-408f-a852-eebfb834422a"
CB_CALL = "CA3c95a2a6bba5fde93a5dea01e388e8fb"
CB_PAYLOAD = (
    "6/jk2NbZ3uXj5Oz+bmhiYnD07+XWy8bIzdjg6mpNPzk3Nzc2Njg/UXXl2s7Cu7u+xcnLzdr7aGp98/94++PTztXc3NfV3PRnYGNhXVtfe9vM"
    "xcXJzM/X81JAOjY0MjEwMzlDVX3dzsK6tre8wsfK0OxdVFtx/nZw89fMzNLb3NPS3v5kYXZvXl5q3snBvb3BxsrYakY3Ly0sKysrLjZCZA=="
)
CB_CONNECTED = '{"event":"connected","protocol":"Call","version":"1.0.0"}'
CB_START = (
    '{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC18fbd524d33614fba208030751dffdca",'
    '"streamSid":"9e7ee906-377b-408f-a852-eebfb834422a","callSid":"CA3c95a2a6bba5fde93a5dea01e388e8fb",'
    '"tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1},'
    '"customParameters":{"aCutomParameter":"aCustomValue that was set in TwiML"}},'
    '"streamSid":"9e7ee906-377b-408f-a852-eebfb834422a"}'
)
CB_MEDIA = (
    '{"event":"media","sequenceNumber":"2","media":{"track":"inbound","chunk":"1","timestamp":"52",'
    f'"payload":"{CB_PAYLOAD}"}},"streamSid":"9e7ee906-377b-408f-a852-eebfb834422a"}}'
)
# The capture abbreviates the streamSid of the mark lines as "9e7ee906-..."; it is the stream's SID.
CB_MARK_ECHO = (
    '{"event":"mark","sequenceNumber":"103","streamSid":"9e7ee906-377b-408f-a852-eebfb834422a",'
    '"mark":{"name":"Repeat message 0"}}'
)

# --- capture 2: tigerfarm/work wss/README.md (<Start><Stream>, protocol 0.2.0, 2019) -----------------------

TF_SID = "MZc3320b5e6fba10a11d7c96fe1903e3f0"
TF_CALL = "CA77145f1c2f9166cab03d083d5804d9ae"
TF_CONNECTED = '{"event":"connected","protocol":"Call","version":"0.2.0"}'
TF_START = (
    '{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC1b32414e8ab41e56e6393bcbba7d5a9d",'
    '"streamSid":"MZc3320b5e6fba10a11d7c96fe1903e3f0","callSid":"CA77145f1c2f9166cab03d083d5804d9ae",'
    '"tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1},'
    '"customParameters":{"hello":"HelloValue"}},"streamSid":"MZc3320b5e6fba10a11d7c96fe1903e3f0"}'
)
# The capture elides the middle of this payload ("fvz+...Ht9/g=="); the rest of the message is literal.
TF_PAYLOAD = base64.b64encode(bytes(range(96, 256))).decode()
TF_MEDIA = (
    '{"event":"media","sequenceNumber":"2","media":{"track":"inbound","chunk":"1","timestamp":"102",'
    f'"payload":"{TF_PAYLOAD}"}},"streamSid":"MZc3320b5e6fba10a11d7c96fe1903e3f0"}}'
)
TF_STOP = (
    '{"event":"stop","sequenceNumber":"352","streamSid":"MZc3320b5e6fba10a11d7c96fe1903e3f0",'
    '"stop":{"accountSid":"AC1b32414e8ab41e56e6393bcbba7d5a9d","callSid":"CA77145f1c2f9166cab03d083d5804d9ae"}}'
)


def started(start: str = DOC_START, **kwargs: Any) -> MediaStreamProtocol:
    protocol = MediaStreamProtocol(**kwargs)
    assert isinstance(protocol.receive(start), Started)
    return protocol


def media_json(seq: int, payload: bytes = b"\xff" * 160, sid: str = DOC_SID, chunk: int = 1, ts: int = 20) -> str:
    return orjson.dumps(
        {
            "event": "media",
            "sequenceNumber": str(seq),
            "media": {
                "track": "inbound",
                "chunk": str(chunk),
                "timestamp": str(ts),
                "payload": _b64(payload),
            },
            "streamSid": sid,
        }
    ).decode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def assert_still_works(protocol: MediaStreamProtocol, seq: int = 50) -> None:
    event = protocol.receive(media_json(seq, b"\x7f" * 160))
    assert event == MediaReceived(sequence=seq, chunk=1, timestamp_ms=20, payload=b"\x7f" * 160)


# --- round trips on the literals -------------------------------------------------------------------------


def test_doc_connected() -> None:
    assert MediaStreamProtocol().receive(DOC_CONNECTED) == Connected(protocol="Call", version="1.0.0")


def test_doc_start() -> None:
    protocol = MediaStreamProtocol()
    event = protocol.receive(DOC_START)
    assert event == Started(
        stream_sid=DOC_SID,
        call_sid=DOC_CALL,
        account_sid=DOC_ACCOUNT,
        tracks=("inbound",),
        custom_parameters={"FirstName": "Jane", "LastName": "Doe", "RemoteParty": "Bob"},
        sequence=1,
    )
    assert protocol.state is StreamState.STARTED
    assert (protocol.stream_sid, protocol.call_sid, protocol.account_sid) == (DOC_SID, DOC_CALL, DOC_ACCOUNT)
    assert protocol.last_sequence == 1


def test_doc_media() -> None:
    event = started().receive(DOC_MEDIA)
    assert event == MediaReceived(sequence=4, chunk=2, timestamp_ms=5, payload=base64.b64decode("no+JhoaJjpzS"))


def test_doc_dtmf() -> None:
    assert started().receive(DOC_DTMF) == DtmfReceived(digit="1", sequence=5)


def test_doc_mark() -> None:
    assert started().receive(DOC_MARK) == MarkEchoed(name="my label", sequence=4)


def test_doc_stop() -> None:
    protocol = started()
    assert protocol.receive(DOC_STOP) == Stopped(call_sid=DOC_CALL, sequence=5)
    assert protocol.state is StreamState.STOPPED


def test_connect_basic_capture_uuid_stream_sid() -> None:
    protocol = MediaStreamProtocol()
    assert protocol.receive(CB_CONNECTED) == Connected(protocol="Call", version="1.0.0")
    assert protocol.receive(CB_START) == Started(
        stream_sid=CB_SID,
        call_sid=CB_CALL,
        account_sid="AC18fbd524d33614fba208030751dffdca",
        tracks=("inbound",),
        custom_parameters={"aCutomParameter": "aCustomValue that was set in TwiML"},
        sequence=1,
    )
    media = protocol.receive(CB_MEDIA)
    assert media == MediaReceived(sequence=2, chunk=1, timestamp_ms=52, payload=base64.b64decode(CB_PAYLOAD))
    assert isinstance(media, MediaReceived) and len(media.payload) == 160  # 20 ms of 8 kHz μ-law
    # What the server sent, built by us, matches the capture's outbound mark.
    assert orjson.loads(protocol.mark("Repeat message 0")) == {
        "event": "mark",
        "streamSid": CB_SID,
        "mark": {"name": "Repeat message 0"},
    }
    assert protocol.receive(CB_MARK_ECHO) == MarkEchoed(name="Repeat message 0", sequence=103)
    assert protocol.sequence_gaps == 100  # the capture omits the media between "2" and "103"
    assert sum(protocol.error_counts.values()) == 0


def test_tigerfarm_capture_protocol_0_2_0() -> None:
    protocol = MediaStreamProtocol()
    assert protocol.receive(TF_CONNECTED) == Connected(protocol="Call", version="0.2.0")
    start = protocol.receive(TF_START)
    assert isinstance(start, Started)
    assert (start.stream_sid, start.call_sid, start.custom_parameters) == (
        TF_SID,
        TF_CALL,
        {"hello": "HelloValue"},
    )
    assert protocol.receive(TF_MEDIA) == MediaReceived(2, 1, 102, bytes(range(96, 256)))
    assert protocol.receive(TF_STOP) == Stopped(call_sid=TF_CALL, sequence=352)
    assert protocol.last_sequence == 352
    assert protocol.sequence_gaps == 349  # about 348 media frames at 20 ms, omitted from the capture


ALL_INBOUND_LITERALS = [
    (DOC_CONNECTED, ConnectedMessage),
    (DOC_START, StartMessage),
    (DOC_MEDIA, MediaMessage),
    (DOC_DTMF, DtmfMessage),
    (DOC_MARK, MarkMessage),
    (DOC_STOP, StopMessage),
    (CB_CONNECTED, ConnectedMessage),
    (CB_START, StartMessage),
    (CB_MEDIA, MediaMessage),
    (CB_MARK_ECHO, MarkMessage),
    (TF_CONNECTED, ConnectedMessage),
    (TF_START, StartMessage),
    (TF_MEDIA, MediaMessage),
    (TF_STOP, StopMessage),
]


@pytest.mark.parametrize(("literal", "model"), ALL_INBOUND_LITERALS)
def test_inbound_union_picks_the_model_and_round_trips(literal: str, model: type) -> None:
    parsed = InboundMessageAdapter.validate_python(orjson.loads(literal))
    assert type(parsed) is model
    assert parsed.model_dump(exclude_defaults=False) == orjson.loads(literal)


def test_inbound_models_keep_twilio_json_types() -> None:
    with pytest.raises(ValidationError):  # sequenceNumber is a JSON string, never a number
        InboundMessageAdapter.validate_python({**orjson.loads(DOC_DTMF), "sequenceNumber": 5})
    with pytest.raises(ValidationError):  # dtmf.track is "inbound_track", not "inbound"
        InboundMessageAdapter.validate_python({**orjson.loads(DOC_DTMF), "dtmf": {"track": "inbound", "digit": "1"}})
    with pytest.raises(ValidationError):  # sampleRate is a number
        StartMessage.model_validate_json(DOC_START.replace('"sampleRate": 8000', '"sampleRate": "8000"'))
    with pytest.raises(ValidationError):  # connected carries no streamSid, but a media message needs one
        MediaMessage.model_validate({k: v for k, v in orjson.loads(DOC_MEDIA).items() if k != "streamSid"})


def test_inbound_tolerates_extra_keys() -> None:
    start = orjson.loads(DOC_START)
    start["futureField"] = 1
    start["start"]["mediaFormat"]["bitDepth"] = 8
    protocol = MediaStreamProtocol()
    assert isinstance(protocol.receive(orjson.dumps(start)), Started)
    media = orjson.loads(media_json(2))
    media["extra"] = {"x": 1}
    media["media"]["extra"] = "y"
    assert isinstance(protocol.receive(orjson.dumps(media).decode()), MediaReceived)


def test_started_event_is_immutable_and_hashable() -> None:
    event = started().receive(DOC_MEDIA)
    assert isinstance(event, MediaReceived)
    with pytest.raises(AttributeError):  # a frozen dataclass's FrozenInstanceError is one too
        event.sequence = 9  # type: ignore[misc]
    start = MediaStreamProtocol().receive(DOC_START)
    assert isinstance(start, Started)
    with pytest.raises(TypeError):
        start.custom_parameters["FirstName"] = "Eve"  # type: ignore[index]
    assert hash(start) == hash(dataclasses.replace(start))


def test_fast_path_event_equals_a_normally_built_one() -> None:
    fast = started().receive(DOC_MEDIA)
    normal = MediaReceived(4, 2, 5, base64.b64decode("no+JhoaJjpzS"))
    assert type(fast) is MediaReceived
    assert (fast, hash(fast), repr(fast)) == (normal, hash(normal), repr(normal))
    with pytest.raises(AttributeError):
        fast.payload = b""  # type: ignore[misc]


@pytest.mark.parametrize("payload", ["AAAA=", "AAAA===="])
def test_a_payload_the_fast_path_refuses_but_the_model_accepts_is_still_heard(payload: str) -> None:
    """msgspec's base64 refuses padding after a whole group, which binascii's strict mode (the model's rule)
    accepts: such a message leaves the fast path and is read on the general one, as the model reads it."""
    msg = orjson.loads(media_json(2, chunk=7, ts=140))
    msg["media"]["payload"] = payload
    protocol = started()
    event = protocol.receive(orjson.dumps(msg).decode())
    assert event == MediaReceived(2, 7, 140, binascii.a2b_base64(payload, strict_mode=True))
    assert protocol.last_sequence == 2


@given(payload=st.text(alphabet="AQgw+/=-_ \n\\é", max_size=16))
def test_a_payload_is_heard_exactly_when_strict_base64_reads_it(payload: str) -> None:
    """Whichever path reads it (msgspec's decoder or binascii's), a payload gives the audio binascii's strict
    mode gives, and is refused as bad base64 exactly when that mode refuses it."""
    msg = orjson.loads(media_json(2))
    msg["media"]["payload"] = payload
    event = started().receive(orjson.dumps(msg).decode())
    try:
        audio = binascii.a2b_base64(payload, strict_mode=True)
    except ValueError:
        assert isinstance(event, ProtocolError) and event.kind is ProtocolErrorKind.BAD_BASE64
    else:
        assert event == MediaReceived(2, 1, 20, audio)


def test_binary_text_that_is_json_is_read_like_text() -> None:
    protocol = started()
    assert isinstance(protocol.receive(media_json(2).encode()), MediaReceived)


def test_stop_before_start_still_ends_the_stream() -> None:
    protocol = MediaStreamProtocol()
    assert protocol.receive(DOC_STOP) == Stopped(call_sid=DOC_CALL, sequence=5)
    assert protocol.state is StreamState.STOPPED
    with pytest.raises(StreamNotStartedError):
        protocol.clear()


# --- one test per error kind ------------------------------------------------------------------------------


def assert_error(
    event: object, kind: ProtocolErrorKind, *, call_sid: str | None = DOC_CALL, fatal: bool = False
) -> ProtocolError:
    assert isinstance(event, ProtocolError), event
    assert event.kind is kind, event
    assert event.call_sid == call_sid
    assert event.fatal is fatal
    assert event.detail
    return event


def test_malformed_json() -> None:
    protocol = started()
    error = assert_error(protocol.receive('{"event": "media", "sequenceNumber": '), ProtocolErrorKind.MALFORMED_JSON)
    assert error.stream_sid == DOC_SID
    assert protocol.error_counts[ProtocolErrorKind.MALFORMED_JSON] == 1
    assert_still_works(protocol)


@pytest.mark.parametrize("text", ["[1, 2]", '"media"', "42", "null", "true"])
def test_not_an_object(text: str) -> None:
    protocol = started()
    assert_error(protocol.receive(text), ProtocolErrorKind.NOT_AN_OBJECT)
    assert_still_works(protocol)


@pytest.mark.parametrize("event", ["bogus", "Media", "transcription", ""])
def test_unknown_event(event: str) -> None:
    protocol = started()
    assert_error(
        protocol.receive(orjson.dumps({"event": event, "streamSid": DOC_SID})),
        ProtocolErrorKind.UNKNOWN_EVENT,
    )
    assert_still_works(protocol)


def _with(literal: str, path: tuple[str, ...], value: object) -> str:
    msg = orjson.loads(literal)
    target = msg
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return orjson.dumps(msg).decode()


_DELETE = object()

INVALID_MESSAGES = {
    "media sequenceNumber as a number": _with(DOC_MEDIA, ("sequenceNumber",), 4),
    "media sequenceNumber signed": _with(DOC_MEDIA, ("sequenceNumber",), "+4"),
    "media sequenceNumber non-ASCII digit": _with(DOC_MEDIA, ("sequenceNumber",), "٤"),
    "media chunk as a number": _with(DOC_MEDIA, ("media", "chunk"), 2),
    "media timestamp empty": _with(DOC_MEDIA, ("media", "timestamp"), ""),
    "media timestamp too long": _with(DOC_MEDIA, ("media", "timestamp"), "9" * 21),
    "media without payload": _with(DOC_MEDIA, ("media", "payload"), _DELETE),
    "media payload a number": _with(DOC_MEDIA, ("media", "payload"), 7),
    "media on the outbound track": _with(DOC_MEDIA, ("media", "track"), "outbound"),
    "media on an unknown track": _with(DOC_MEDIA, ("media", "track"), "both"),
    "media object a list": _with(DOC_MEDIA, ("media",), []),
    "media without streamSid": _with(DOC_MEDIA, ("streamSid",), _DELETE),
    "media streamSid a number": _with(DOC_MEDIA, ("streamSid",), 5),
    "dtmf track inbound": _with(DOC_DTMF, ("dtmf", "track"), "inbound"),
    "dtmf digit two keys": _with(DOC_DTMF, ("dtmf", "digit"), "12"),
    "mark without name": _with(DOC_MARK, ("mark", "name"), _DELETE),
    "stop callSid a number": _with(DOC_STOP, ("stop", "callSid"), 1),
    "connected without version": _with(DOC_CONNECTED, ("version",), _DELETE),
    "event missing": '{"streamSid": "MZXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"}',
    "event a number": '{"event": 3}',
}


@pytest.mark.parametrize("text", INVALID_MESSAGES.values(), ids=INVALID_MESSAGES.keys())
def test_invalid_message(text: str) -> None:
    protocol = started()
    assert_error(protocol.receive(text), ProtocolErrorKind.INVALID_MESSAGE)
    assert protocol.state is StreamState.STARTED
    assert_still_works(protocol)


@pytest.mark.parametrize(
    "start",
    [
        _with(DOC_START, ("start", "mediaFormat"), _DELETE),
        _with(DOC_START, ("start", "customParameters"), {"n": 1}),
        _with(DOC_START, ("start", "mediaFormat", "sampleRate"), 8000.0),
        _with(DOC_START, ("streamSid",), "MZ-another"),
    ],
    ids=["no mediaFormat", "number parameter", "float sampleRate", "two stream SIDs"],
)
def test_invalid_start_is_fatal_and_names_the_call(start: str) -> None:
    protocol = MediaStreamProtocol()
    assert_error(protocol.receive(start), ProtocolErrorKind.INVALID_MESSAGE, fatal=True)
    assert protocol.state is StreamState.IDLE
    with pytest.raises(StreamNotStartedError):
        protocol.media(b"\xff")
    # A valid start that follows is still taken.
    assert isinstance(protocol.receive(DOC_START), Started)
    assert_still_works(protocol)


@pytest.mark.parametrize(
    ("field", "value"),
    [("encoding", "audio/x-alaw"), ("encoding", "audio/l16"), ("sampleRate", 16000), ("channels", 2)],
)
def test_unsupported_media_format(field: str, value: object) -> None:
    protocol = MediaStreamProtocol()
    started = protocol.receive(_with(DOC_START, ("start", "mediaFormat", field), value))
    assert isinstance(started, Started) and started.call_sid == DOC_CALL  # still a start: checked, then handed on
    assert started.media_problem is not None and "audio/x-mulaw" in started.media_problem
    # Every media message repeats the fatal error; control messages still work, so the session can hand off.
    assert_error(protocol.receive(media_json(2)), ProtocolErrorKind.UNSUPPORTED_MEDIA_FORMAT, fatal=True)
    assert protocol.receive(DOC_DTMF) == DtmfReceived(digit="1", sequence=5)
    assert orjson.loads(protocol.clear()) == {"event": "clear", "streamSid": DOC_SID}
    assert protocol.receive(_with(DOC_STOP, ("sequenceNumber",), "6")) == Stopped(call_sid=DOC_CALL, sequence=6)


@pytest.mark.parametrize(
    "payload",
    ["no+JhoaJjpzS...", "abc", "ab=c", "YW Jj", "YWJj\n", "éé==", "YWJjZA=", "YWJjZA==="],
    ids=["doc elision", "short", "inner pad", "space", "newline", "non-ASCII", "missing pad", "extra pad"],
)
def test_bad_base64(payload: str) -> None:
    protocol = started()
    assert_error(protocol.receive(_with(DOC_MEDIA, ("media", "payload"), payload)), ProtocolErrorKind.BAD_BASE64)
    assert_still_works(protocol)


def test_bad_base64_on_the_verbatim_doc_example() -> None:
    assert_error(started().receive(DOC_MEDIA_VERBATIM), ProtocolErrorKind.BAD_BASE64)


def test_oversized_message() -> None:
    protocol = started(max_message_bytes=1000)
    big = media_json(2, b"\xff" * 1000)
    assert len(big) > 1000
    error = assert_error(protocol.receive(big), ProtocolErrorKind.OVERSIZED_MESSAGE)
    assert "1000" in error.detail
    assert_error(protocol.receive(big.encode()), ProtocolErrorKind.OVERSIZED_MESSAGE)
    # 400 characters, but 1200 bytes of UTF-8: the limit is in bytes.
    wide = orjson.dumps({"event": "mark", "streamSid": DOC_SID, "sequenceNumber": "3", "mark": {"name": "€" * 380}})
    assert len(wide.decode()) < 1000 < len(wide)
    assert_error(protocol.receive(wide.decode()), ProtocolErrorKind.OVERSIZED_MESSAGE)
    assert protocol.error_counts[ProtocolErrorKind.OVERSIZED_MESSAGE] == 3
    assert_still_works(protocol)


@pytest.mark.parametrize("text", [DOC_MEDIA, DOC_DTMF, DOC_MARK])
def test_media_before_start(text: str) -> None:
    protocol = MediaStreamProtocol()
    assert_error(protocol.receive(text), ProtocolErrorKind.MEDIA_BEFORE_START, call_sid=None)
    assert isinstance(protocol.receive(DOC_START), Started)
    assert_still_works(protocol)


def test_duplicate_start() -> None:
    protocol = started()
    other = DOC_START.replace(DOC_SID, "MZ" + "1" * 32).replace(DOC_CALL, "CA" + "1" * 32)
    error = assert_error(protocol.receive(other), ProtocolErrorKind.DUPLICATE_START)
    assert error.stream_sid == DOC_SID
    assert (protocol.stream_sid, protocol.call_sid) == (DOC_SID, DOC_CALL)
    assert_still_works(protocol)


@pytest.mark.parametrize("data", [b"\x00\x01\x02", b"\xff\xfe{}", b"not json", b"\x80" * 20])
def test_binary_frame(data: bytes) -> None:
    protocol = started()
    assert_error(protocol.receive(data), ProtocolErrorKind.BINARY_FRAME)
    assert_still_works(protocol)


@pytest.mark.parametrize("text", [media_json(2, sid="MZ" + "0" * 32), DOC_DTMF, DOC_MARK, DOC_STOP])
def test_wrong_stream_sid(text: str) -> None:
    protocol = started(CB_START)  # the doc examples carry the doc's SID, not this stream's
    error = assert_error(protocol.receive(text), ProtocolErrorKind.WRONG_STREAM_SID, call_sid=CB_CALL)
    assert error.stream_sid == CB_SID
    assert protocol.state is StreamState.STARTED
    assert protocol.receive(media_json(60, sid=CB_SID)) == MediaReceived(60, 1, 20, b"\xff" * 160)


@pytest.mark.parametrize("text", [media_json(9), DOC_DTMF, DOC_MARK, DOC_STOP, DOC_START, DOC_CONNECTED])
def test_after_stop(text: str) -> None:
    protocol = started()
    assert isinstance(protocol.receive(DOC_STOP), Stopped)
    assert_error(protocol.receive(text), ProtocolErrorKind.AFTER_STOP)
    # The call is over: the state holds, later messages are refused the same way, nothing raises.
    assert protocol.state is StreamState.STOPPED
    assert_error(protocol.receive(media_json(10)), ProtocolErrorKind.AFTER_STOP)
    assert protocol.error_counts[ProtocolErrorKind.AFTER_STOP] == 2


def test_every_error_kind_has_a_test() -> None:
    tested = {
        "malformed_json", "not_an_object", "unknown_event", "invalid_message", "unsupported_media_format",
        "bad_base64", "oversized_message", "media_before_start", "duplicate_start", "binary_frame",
        "wrong_stream_sid", "after_stop",
    }  # fmt: skip
    assert {kind.value for kind in ProtocolErrorKind} == tested
    for kind in tested:
        assert callable(globals()[f"test_{kind}"])


# --- outbound ---------------------------------------------------------------------------------------------


def test_outbound_doc_shapes_validate() -> None:
    assert type(OutboundMessageAdapter.validate_json(DOC_OUT_MEDIA)) is OutboundMediaMessage
    assert type(OutboundMessageAdapter.validate_json(DOC_OUT_MARK)) is OutboundMarkMessage
    assert type(OutboundMessageAdapter.validate_json(DOC_OUT_CLEAR)) is ClearMessage
    with pytest.raises(ValidationError):  # outbound media carries no track, chunk, timestamp or sequenceNumber
        OutboundMediaMessage.model_validate_json(_with(DOC_OUT_MEDIA, ("sequenceNumber",), "1"))
    with pytest.raises(ValidationError):
        OutboundMediaMessage.model_validate_json(_with(DOC_OUT_MEDIA, ("media", "track"), "outbound"))


def _same_shape(text: str, literal: str, model: type[Any]) -> None:
    """Our text parses to the documented shape, validates as the outbound model, and is its own JSON."""
    assert orjson.loads(text) == orjson.loads(literal)
    assert text == model.model_validate_json(text).model_dump_json()
    assert " " not in text.replace("my label", "")  # compact


def test_outbound_media_matches_doc() -> None:
    payload = b"\x6b\x8d\xb6\xdb\x1a"  # base64 "a42Nttsa"
    text = started().media(payload)
    _same_shape(text, DOC_OUT_MEDIA.replace("a3242sa...", _b64(payload)), OutboundMediaMessage)


def test_outbound_mark_and_clear_match_doc() -> None:
    protocol = started()
    _same_shape(protocol.mark("my label"), DOC_OUT_MARK, OutboundMarkMessage)
    _same_shape(protocol.clear(), DOC_OUT_CLEAR, ClearMessage)


def test_outbound_uses_the_uuid_stream_sid_of_the_capture() -> None:
    protocol = started(CB_START)
    assert protocol.clear() == '{"event":"clear","streamSid":"9e7ee906-377b-408f-a852-eebfb834422a"}'


@pytest.mark.parametrize("build", [lambda p: p.media(b"\xff"), lambda p: p.mark("m"), lambda p: p.clear(),
                                   lambda p: p.media_frames(b"\xff")])  # fmt: skip
def test_outbound_before_start_raises(build: Any) -> None:
    protocol = MediaStreamProtocol()
    protocol.receive(DOC_CONNECTED)
    with pytest.raises(StreamNotStartedError) as info:
        build(protocol)
    assert isinstance(info.value, TelephonyError)


def test_mark_name_that_cannot_be_json() -> None:
    with pytest.raises(MediaStreamError):
        started().mark("half a surrogate \ud800")


def test_media_frames_split_and_pad() -> None:
    ulaw = bytes(range(200)) * 2  # 400 bytes: two full 20 ms frames and one of 80 bytes
    frames = started().media_frames(ulaw)
    assert len(frames) == 3
    decoded = [base64.b64decode(OutboundMediaMessage.model_validate_json(f).media.payload) for f in frames]
    assert all(len(d) == 160 for d in decoded)
    assert b"".join(decoded) == ulaw + bytes([ULAW_SILENCE]) * 80
    assert started().media_frames(b"") == []
    assert len(started().media_frames(b"\x00" * 320)) == 2
    assert [len(base64.b64decode(orjson.loads(f)["media"]["payload"])) for f in started().media_frames(
        b"\x00" * 100, frame_bytes=40)] == [40, 40, 40]  # fmt: skip
    with pytest.raises(ValueError):
        started().media_frames(b"\x00", frame_bytes=0)


def test_media_frames_in_larger_messages_pad_only_to_whole_frames() -> None:
    ulaw = b"\x01" * 1700  # 212.5 ms: one message of 200 ms, then the rest padded to two 20 ms frames
    frames = started().media_frames(ulaw, 1600, pad_to=160)
    decoded = [base64.b64decode(orjson.loads(f)["media"]["payload"]) for f in frames]
    assert [len(d) for d in decoded] == [1600, 160]
    assert b"".join(decoded) == ulaw + bytes([ULAW_SILENCE]) * 60


# --- properties -------------------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
    | st.sampled_from(["media", "start", "stop", "dtmf", "mark", "connected", "inbound", DOC_SID, "4", "", "1.0"])
)
KEYS = ["event", "sequenceNumber", "streamSid", "media", "start", "stop", "dtmf", "mark", "track",
        "chunk", "timestamp", "payload", "name", "digit", "callSid", "accountSid", "mediaFormat"]  # fmt: skip
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=5), inner),
    max_leaves=25,
)
LITERALS = [literal for literal, _ in ALL_INBOUND_LITERALS]


def _protocol_in_state(state: str) -> MediaStreamProtocol:
    protocol = MediaStreamProtocol(max_message_bytes=2000)
    if state != "idle":
        protocol.receive(DOC_START)
    if state == "stopped":
        protocol.receive(DOC_STOP)
    return protocol


states = st.sampled_from(["idle", "started", "stopped"])


@given(state=states, data=st.text() | st.binary() | st.binary().map(lambda b: b.decode("latin-1")))
def test_receive_never_raises_on_any_text_or_bytes(state: str, data: str | bytes) -> None:
    assert isinstance(_protocol_in_state(state).receive(data), EVENT_TYPES)


@given(state=states, value=json_values, as_bytes=st.booleans())
def test_receive_never_raises_on_any_json(state: str, value: object, as_bytes: bool) -> None:
    raw = orjson.dumps(value)
    assert isinstance(_protocol_in_state(state).receive(raw if as_bytes else raw.decode()), EVENT_TYPES)


@st.composite
def mutated_literal(draw: st.DrawFn) -> str:
    """A real message with one value (at any depth) replaced, deleted, or a key added."""
    msg = orjson.loads(draw(st.sampled_from(LITERALS)))
    node = msg
    while True:
        key = draw(st.sampled_from(sorted(node)))
        if isinstance(node[key], dict) and draw(st.booleans()):
            node = node[key]
            continue
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            node[key] = draw(json_values)
        elif action == "delete":
            del node[key]
        else:
            node[draw(st.text(max_size=5))] = draw(json_values)
        return orjson.dumps(msg).decode()


@given(state=states, text=mutated_literal())
def test_receive_never_raises_on_mutated_real_messages(state: str, text: str) -> None:
    protocol = _protocol_in_state(state)
    assert isinstance(protocol.receive(text), EVENT_TYPES)
    assert isinstance(protocol.receive(DOC_MEDIA), EVENT_TYPES)


numeric_like = st.sampled_from(["1", "0", "4", "0007", "9" * 20, "9" * 21, "", "-1", "+1", " 1", "1_0", "٤", "1.0"])
VALID_MEDIA_FIELDS = {
    "sequenceNumber": st.integers(min_value=0, max_value=10**6).map(str),
    "streamSid": st.just(DOC_SID),
    "track": st.just("inbound"),
    "chunk": st.integers(min_value=0, max_value=10**6).map(str),
    "timestamp": st.integers(min_value=0, max_value=10**9).map(str),
    "payload": st.binary(max_size=200).map(_b64),
}
ODD_MEDIA_FIELDS = {
    "sequenceNumber": numeric_like | json_scalars,
    "streamSid": st.just("MZother") | json_scalars,
    "track": st.sampled_from(["outbound", "inbound_track"]) | json_scalars,
    "chunk": numeric_like | json_scalars,
    "timestamp": numeric_like | json_scalars,
    "payload": st.sampled_from(["abc", "YW Jj", "YWJj\n", "no+JhoaJjpzS...", "éé=="]) | json_scalars,
}


@st.composite
def media_like(draw: st.DrawFn) -> dict[str, Any]:
    """Media messages whose fields are mostly valid, sometimes odd (nearly valid, any JSON) or missing."""
    values: dict[str, Any] = {}
    for name, valid in VALID_MEDIA_FIELDS.items():
        roll = draw(st.integers(min_value=0, max_value=9))
        if roll < 7:
            values[name] = draw(valid)
        elif roll < 9:
            values[name] = draw(ODD_MEDIA_FIELDS[name])
    inner = {k: values[k] for k in ("track", "chunk", "timestamp", "payload") if k in values}
    msg: dict[str, Any] = {"event": "media", "media": inner}
    msg.update({k: values[k] for k in ("sequenceNumber", "streamSid") if k in values})
    return msg


def _reference(msg: dict[str, Any]) -> MediaReceived | ProtocolErrorKind:
    """What the pydantic model says a media message on the doc's stream should give."""
    sid = msg.get("streamSid")
    if isinstance(sid, str) and sid != DOC_SID:
        return ProtocolErrorKind.WRONG_STREAM_SID
    try:
        parsed = MediaMessage.model_validate(msg)
    except ValidationError:
        return ProtocolErrorKind.INVALID_MESSAGE
    if parsed.media.track != "inbound":
        return ProtocolErrorKind.INVALID_MESSAGE
    try:
        audio = binascii.a2b_base64(parsed.media.payload, strict_mode=True)
    except ValueError:
        return ProtocolErrorKind.BAD_BASE64
    return MediaReceived(int(parsed.sequenceNumber), int(parsed.media.chunk), int(parsed.media.timestamp), audio)


@settings(max_examples=500)
@given(msg=media_like())
def test_hand_validated_media_agrees_with_the_model(msg: dict[str, Any]) -> None:
    event = started().receive(orjson.dumps(msg).decode())
    expected = _reference(msg)
    if isinstance(expected, MediaReceived):
        assert event == expected
    else:
        assert isinstance(event, ProtocolError) and event.kind is expected, (event, expected)


@given(payload=st.binary(max_size=4000))
def test_inbound_payload_round_trip(payload: bytes) -> None:
    event = started().receive(media_json(2, payload))
    assert isinstance(event, MediaReceived) and event.payload == payload


@given(payload=st.binary(max_size=4000))
def test_outbound_payload_round_trip(payload: bytes) -> None:
    text = started().media(payload)
    assert base64.b64decode(OutboundMediaMessage.model_validate_json(text).media.payload, validate=True) == payload
    # and what we send, Twilio's side would read back as the same audio
    echoed = orjson.loads(text)
    echoed.update(sequenceNumber="2", media={**echoed["media"], "track": "inbound", "chunk": "1", "timestamp": "0"})
    event = started().receive(orjson.dumps(echoed))
    assert isinstance(event, MediaReceived) and event.payload == payload


@given(name=st.text(st.characters(exclude_categories=["Cs"])))
def test_outbound_mark_is_the_model_json(name: str) -> None:
    text = started(CB_START).mark(name)
    assert text == OutboundMarkMessage.model_validate_json(text).model_dump_json()
    assert orjson.loads(text) == {"event": "mark", "streamSid": CB_SID, "mark": {"name": name}}


@given(sequence=st.lists(st.integers(min_value=2, max_value=500), unique=True).map(sorted))
def test_sequence_gaps_count_lost_messages(sequence: list[int]) -> None:
    protocol = started()  # start is sequenceNumber "1"
    for seq in sequence:
        assert isinstance(protocol.receive(media_json(seq)), MediaReceived)
    last = sequence[-1] if sequence else 1
    assert protocol.last_sequence == last
    assert protocol.sequence_gaps == last - 1 - len(sequence)


@given(sequence=st.lists(st.integers(min_value=1, max_value=300), max_size=40))
def test_sequence_gaps_ignore_repeats_and_reordering(sequence: list[int]) -> None:
    protocol = started()
    highest, gaps = 1, 0
    for seq in sequence:
        if seq > highest:
            gaps += seq - highest - 1
            highest = seq
        protocol.receive(media_json(seq))
    assert (protocol.last_sequence, protocol.sequence_gaps) == (highest, gaps)


def test_sequence_is_one_counter_across_message_types() -> None:
    protocol = started(CB_START)
    for text in [
        media_json(2, sid=CB_SID),
        _with(CB_MARK_ECHO, ("sequenceNumber",), "3"),
        _with(_with(DOC_DTMF, ("streamSid",), CB_SID), ("sequenceNumber",), "4"),
        media_json(5, sid=CB_SID),
    ]:
        assert not isinstance(protocol.receive(text), ProtocolError)
    assert (protocol.last_sequence, protocol.sequence_gaps) == (5, 0)


def test_rejected_messages_are_not_counted_as_lost() -> None:
    protocol = started()
    assert_error(protocol.receive(media_json(2).replace(_b64(b"\xff" * 160), "abc")), ProtocolErrorKind.BAD_BASE64)
    assert_error(protocol.receive(_with(media_json(3), ("media", "chunk"), 1)), ProtocolErrorKind.INVALID_MESSAGE)
    assert isinstance(protocol.receive(media_json(4)), MediaReceived)
    assert protocol.sequence_gaps == 0

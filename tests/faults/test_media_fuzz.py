"""A fuzzer of media-stream messages (hypothesis): whatever arrives on the stream after a valid start, the
session never raises, keeps the call's record, and hands the caller on when the stream cannot go on."""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialogs.manager import DialogManagerFactory
from telephony.calls.ports import SessionConfig, SessionDeps
from telephony.calls.registry import CallRegistry
from telephony.calls.session import CallSession
from tests.telephony.conftest import CALL_SID, STREAM_SID, FixedSynthesizer, RecordingTransport, StreamScript
from voice.oracle import OracleRecognizerFactory
from voice.recognition import LocalRecognition

FRAME = base64.b64encode(b"\xff" * 160).decode()
VALID: list[dict[str, Any]] = [
    {"event": "media", "sequenceNumber": "3", "streamSid": STREAM_SID,
     "media": {"track": "inbound", "chunk": "2", "timestamp": "20", "payload": FRAME}},
    {"event": "mark", "sequenceNumber": "4", "streamSid": STREAM_SID, "mark": {"name": "m1"}},
    {"event": "dtmf", "sequenceNumber": "5", "streamSid": STREAM_SID, "dtmf": {"track": "inbound_track", "digit": "1"}},
    {"event": "stop", "sequenceNumber": "6", "streamSid": STREAM_SID,
     "stop": {"accountSid": "AC" + "3" * 32, "callSid": CALL_SID}},
    {"event": "start", "sequenceNumber": "1", "streamSid": STREAM_SID, "start": {"callSid": CALL_SID}},
]  # fmt: skip
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30)
    | st.sampled_from(["9" * 20, "-1", "", "0" * 12, "１２", "²", FRAME, "not base64!"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=6,
)  # fmt: skip


@st.composite
def mutated(draw: st.DrawFn) -> str | bytes:
    """A message as a hostile or broken peer might send it."""
    kind = draw(st.sampled_from(["mutate", "mutate", "mutate", "raw", "bytes", "huge"]))
    if kind == "raw":
        return draw(st.text(max_size=200))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "huge":
        return json.dumps({"event": "media", "media": {"payload": "A" * draw(st.integers(70_000, 200_000))}})
    message = json.loads(json.dumps(draw(st.sampled_from(VALID))))
    for _ in range(draw(st.integers(1, 3))):
        target = message
        path = draw(st.sampled_from([(), ("media",), ("mark",), ("dtmf",), ("start",), ("stop",)]))
        for key in path:
            if isinstance(target, dict) and isinstance(target.get(key), dict):
                target = target[key]
        if not isinstance(target, dict) or not target:
            continue
        key = draw(st.sampled_from(sorted(target)))
        if draw(st.booleans()):
            del target[key]
        else:
            target[key] = draw(json_values)
    text = json.dumps(message)
    return text[: draw(st.integers(0, len(text)))] if draw(st.integers(0, 9)) == 0 else text


def new_session() -> tuple[CallSession, CallRegistry]:
    oracle = OracleRecognizerFactory()
    registry = CallRegistry()
    deps = SessionDeps(
        recognition=LocalRecognition(oracle),
        synthesizer=FixedSynthesizer(200),
        dialogs=DialogManagerFactory(),
        registry=registry,
    )
    return CallSession(deps, SessionConfig(), RecordingTransport()), registry


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages=st.lists(mutated(), min_size=1, max_size=25))
async def test_no_stream_of_messages_breaks_a_call(messages: list[str | bytes]) -> None:
    session, registry = new_session()
    script = StreamScript()
    await session.receive(script.connected())
    await session.receive(script.start())
    for message in messages:
        await session.receive(message)  # never raises
    await session.end("dropped")
    record = registry.get(CALL_SID)
    assert record is not None and record.stream_end is not None  # the call is kept, with how it ended
    assert registry.get("unknown") is None and len(registry) == 1
    for entry in record.timeline:
        assert all(len(str(v)) <= 500 for v in entry.detail.values())  # no hostile blob copied into the record
    if record.decision is not None:
        assert record.decision.package is not None or record.decision.kind == "end"

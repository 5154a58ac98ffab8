"""Shared builders for telephony tests: Twilio's messages as literal JSON, and small real-interface fakes."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from tests.postgres import reset_postgres
from voice.codec import pcm16_to_ulaw

CALL_SID = "CA" + "1" * 32
STREAM_SID = "MZ" + "2" * 32
ACCOUNT_SID = "AC" + "3" * 32


class StreamScript:
    """Builds the messages Twilio would send on one stream, with its shared sequence counter."""

    def __init__(self, call_sid: str = CALL_SID, stream_sid: str = STREAM_SID) -> None:
        self.call_sid = call_sid
        self.stream_sid = stream_sid
        self.seq = 0
        self.chunk = 0
        self.t_ms = 0

    def _seq(self) -> str:
        self.seq += 1
        return str(self.seq)

    def connected(self) -> str:
        return json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})

    def start(self, params: dict[str, str] | None = None, encoding: str = "audio/x-mulaw", rate: int = 8000) -> str:
        return json.dumps({
            "event": "start", "sequenceNumber": self._seq(), "streamSid": self.stream_sid,
            "start": {"accountSid": ACCOUNT_SID, "streamSid": self.stream_sid, "callSid": self.call_sid,
                      "tracks": ["inbound"], "customParameters": params or {"caller": "+15551230000"},
                      "mediaFormat": {"encoding": encoding, "sampleRate": rate, "channels": 1}},
        })  # fmt: skip

    def media(self, ulaw: bytes) -> str:
        self.chunk += 1
        message = json.dumps({
            "event": "media", "sequenceNumber": self._seq(), "streamSid": self.stream_sid,
            "media": {"track": "inbound", "chunk": str(self.chunk), "timestamp": str(self.t_ms),
                      "payload": base64.b64encode(ulaw).decode()},
        })  # fmt: skip
        self.t_ms += 20
        return message

    def frames(self, ulaw: bytes) -> list[str]:
        return [self.media(ulaw[i : i + 160].ljust(160, b"\xff")) for i in range(0, len(ulaw), 160)]

    def silence(self, ms: int) -> list[str]:
        return [self.media(b"\xff" * 160) for _ in range(ms // 20)]

    def dtmf(self, digit: str) -> str:
        return json.dumps({
            "event": "dtmf", "streamSid": self.stream_sid, "sequenceNumber": self._seq(),
            "dtmf": {"track": "inbound_track", "digit": digit},
        })  # fmt: skip

    def mark(self, name: str) -> str:
        return json.dumps({
            "event": "mark", "sequenceNumber": self._seq(), "streamSid": self.stream_sid, "mark": {"name": name}
        })  # fmt: skip

    def stop(self) -> str:
        return json.dumps({
            "event": "stop", "sequenceNumber": self._seq(), "streamSid": self.stream_sid,
            "stop": {"accountSid": ACCOUNT_SID, "callSid": self.call_sid},
        })  # fmt: skip


def voiced_ulaw(ms: int, freq: float = 220.0) -> bytes:
    """A buzzy harmonic tone that webrtcvad takes for speech: stands in for a caller's voice."""
    t = np.arange(ms * 8) / 8000.0
    wave = sum(np.sin(2 * np.pi * freq * k * t) / k for k in range(1, 12))
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)
    pcm = (wave * envelope * 6000).astype("<i2")
    return pcm16_to_ulaw(pcm.tobytes())


class RecordingTransport:
    """The session's transport, keeping what was sent; it can also play Twilio's side of marks."""

    def __init__(self) -> None:
        self.sent: list[dict[str, object]] = []
        self.closed_with: int | None = None
        self.prompt_reads: list[bool] = []  # each change of `read_promptly`, in order
        self.busy = False  # `send_now` refuses, as a socket whose buffer is full does
        self.writes: list[int] = []  # messages in each `send_now` write

    async def send(self, text: str) -> None:
        self.sent.append(json.loads(text))

    def send_now(self, texts: Sequence[str]) -> bool:
        if self.busy:  # a socket that cannot take a write now: the session sends one by one
            return False
        self.sent.extend(json.loads(text) for text in texts)
        self.writes.append(len(texts))
        return True

    async def close(self, code: int = 1000) -> None:
        self.closed_with = code

    def read_promptly(self, promptly: bool) -> None:
        self.prompt_reads.append(promptly)

    def events(self, kind: str) -> list[dict[str, object]]:
        return [m for m in self.sent if m["event"] == kind]

    def marks(self) -> list[str]:
        return [str(m["mark"]["name"]) for m in self.events("mark")]  # type: ignore[index]


class FixedSynthesizer:
    """Every prompt is `ms` of a tone; counts syntheses. Implements the session's Synthesizer protocol."""

    def __init__(self, ms: int = 1000, cached: bool = True) -> None:
        self.audio = voiced_ulaw(ms, 440.0)
        self.is_cached = cached
        self.calls = 0

    def cached(self, text: str) -> bytes | None:
        return self.audio if self.is_cached else None

    async def synthesize(self, text: str) -> bytes:
        self.calls += 1
        return self.audio

    async def warm(self, texts: Iterable[str]) -> None:
        list(texts)

    def close(self) -> None:
        pass


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database nobody else uses: a file in a folder that does not exist yet, or the session's PostgreSQL
    database emptied of everything (the cluster starts at the first test that asks for it)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'data' / 'handoff.db'}"
        return
    url: str = request.getfixturevalue("postgres_url")
    reset_postgres(url)
    yield url
    reset_postgres(url)

"""The phone line the replay harness simulates: the caller's script on one side, Twilio's playout on the other.

Pure and clocked by the caller's media time (20 ms ticks): `tick()` says what the caller sends in the next
frame and which marks Twilio would echo now; `bot_media`, `bot_mark` and `bot_clear` take what the server
sent. No sockets, no sleeping, so the line's behaviour is tested on its own.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from telephony.replay.scenario import CallerStep
from voice.codec import FRAME_MS, ULAW_FRAME_BYTES

SILENCE_FRAME = b"\xff" * ULAW_FRAME_BYTES
REPLY_TIMEOUT_MS = 6000  # how long a step waits for a bot reply that never comes
GAP_MS = 60  # bot audio resuming within this gap continues the same stretch (frames arrive in bursts)


@dataclass
class LineEvent:
    """Something that happened on the line, at media time `t_ms`."""

    t_ms: int
    kind: str
    detail: dict[str, str | int | float | bool | None] = field(default_factory=dict)


@dataclass
class BotSegment:
    """A stretch of bot audio as the caller heard it."""

    start_ms: int
    end_ms: int | None = None
    cut_off: bool = False


@dataclass
class Tick:
    """What the harness sends for one 20 ms frame: audio, then any DTMF digits and mark echoes."""

    audio: bytes
    dtmf: list[str]
    marks: list[str]
    hangup: bool
    drop: bool = False


class PhoneLine:
    """A caller following a script, and Twilio's buffer of bot audio, on one media clock."""

    def __init__(self, steps: list[CallerStep], audio: list[bytes | None]) -> None:
        self.steps = steps
        self.audio = audio
        self.t_ms = 0
        self.events: list[LineEvent] = []
        self.segments: list[BotSegment] = []
        self.heard = bytearray()  # the bot's audio on the caller's timeline, silence included
        self._step = 0
        self._speaking: memoryview | None = None
        self._action_start = 0
        self._action_end = 0
        self._buffer = bytearray()
        self._consumed = 0
        self._marks: deque[tuple[int, str]] = deque()
        self._echo_now: list[str] = []
        self._idle_since = 0
        self._drained_at: int | None = None  # when the buffer last ran dry, while that may be a gap
        self.finished = False  # the script is done (hung up, or nothing left to do)

    # --- what the server sends ---------------------------------------------------------------------------

    def bot_media(self, ulaw: bytes) -> None:
        if not self._buffer:
            if self._drained_at is not None:
                self._drained_at = None  # more of the same stretch, after a gap in delivery
            else:
                self.segments.append(BotSegment(start_ms=self.t_ms))
                self.events.append(LineEvent(self.t_ms, "bot_audio_start"))
        self._buffer += ulaw

    def bot_mark(self, name: str) -> None:
        self._marks.append((self._consumed + len(self._buffer), name))

    def bot_clear(self) -> None:
        """Twilio empties its buffer and echoes every pending mark at once."""
        if (self._buffer or self._drained_at is not None) and self.segments:
            self.segments[-1].end_ms = self.t_ms if self._buffer else self._drained_at
            self.segments[-1].cut_off = bool(self._buffer)
        self._drained_at = None
        self.events.append(LineEvent(self.t_ms, "clear", {"dropped_ms": len(self._buffer) // 8}))
        self._consumed += len(self._buffer)
        self._buffer.clear()
        self._idle_since = self.t_ms
        while self._marks:
            self._echo_now.append(self._marks.popleft()[1])

    @property
    def bot_speaking(self) -> bool:
        return bool(self._buffer) or self._drained_at is not None

    # --- the clock ---------------------------------------------------------------------------------------

    def tick(self, *, waited_wall_s: float = 1.0) -> Tick:
        """Advance 20 ms; `waited_wall_s` is the wall time since the current step could first start."""
        dtmf: list[str] = []
        hangup = False
        if self._speaking is None and not self.finished:
            step = self.steps[self._step] if self._step < len(self.steps) else None
            if step is None:
                self.finished = True
            elif self._ready(step, waited_wall_s):
                self._action_start = self.t_ms
                if step.kind == "speech":
                    self._speaking = memoryview(self.audio[self._step] or b"")
                    self.events.append(LineEvent(self.t_ms, "caller_speech_start", {"text": step.say}))
                elif step.kind == "silence":
                    self._speaking = memoryview(SILENCE_FRAME * -(-(step.silence_ms or 0) // FRAME_MS))
                    self.events.append(LineEvent(self.t_ms, "caller_silence", {"ms": step.silence_ms}))
                elif step.kind == "dtmf":
                    dtmf = list(step.dtmf or "")
                    self.events.append(LineEvent(self.t_ms, "dtmf", {"digits": step.dtmf}))
                    self._next_step()
                elif step.kind == "drop":
                    self._next_step()
                    self.events.append(LineEvent(self.t_ms, "socket_dropped"))
                    return Tick(audio=SILENCE_FRAME, dtmf=[], marks=[], hangup=False, drop=True)
                else:
                    hangup = True
                    self.finished = True
                    self.events.append(LineEvent(self.t_ms, "caller_hangup"))
        audio = SILENCE_FRAME
        if self._speaking is not None:
            chunk = bytes(self._speaking[:ULAW_FRAME_BYTES])
            self._speaking = self._speaking[ULAW_FRAME_BYTES:]
            audio = chunk + SILENCE_FRAME[len(chunk) :]
            if not len(self._speaking):
                step = self.steps[self._step]
                if step.kind == "speech":
                    self.events.append(LineEvent(self.t_ms + FRAME_MS, "caller_speech_end"))
                self._speaking = None
                self._next_step()
        marks = self._play()
        self.t_ms += FRAME_MS
        return Tick(audio=audio, dtmf=dtmf, marks=marks, hangup=hangup)

    def next_digits(self) -> str | None:
        """After the stream: the next step's keys, for a TwiML <Gather> (None: no input, or hung up)."""
        while self._step < len(self.steps):
            step = self.steps[self._step]
            self._step += 1
            if step.kind == "dtmf":
                return step.dtmf
            if step.kind == "hangup":
                self.finished = True
                return None
            if step.kind == "silence":
                return None
        return None

    def next_message(self) -> tuple[str, bytes] | None:
        """After the stream: the next spoken step, as a voicemail message (text, audio)."""
        while self._step < len(self.steps):
            step = self.steps[self._step]
            index = self._step
            self._step += 1
            if step.kind == "speech":
                return step.say or "", self.audio[index] or b""
            if step.kind == "hangup":
                return None
        return None

    @property
    def waiting(self) -> bool:
        """True when the caller is waiting for the bot (so wall-clock patience applies)."""
        return self._speaking is None and not self.finished

    def _next_step(self) -> None:
        self._step += 1
        self._action_end = self.t_ms + FRAME_MS

    def _ready(self, step: CallerStep, waited_wall_s: float) -> bool:
        if step.barge_in_ms is not None:
            current = self.segments[-1] if self.segments else None
            return (
                current is not None
                and current.end_ms is None
                and current.start_ms >= self._action_end
                and self.t_ms - current.start_ms >= step.barge_in_ms
            )
        if not step.wait_for_bot:
            return self.t_ms - self._action_end >= step.pause_ms
        replied = any(seg.start_ms >= self._action_start for seg in self.segments)
        if replied:
            return not self.bot_speaking and self.t_ms - self._idle_since >= step.pause_ms
        return self.t_ms - self._action_end >= REPLY_TIMEOUT_MS and waited_wall_s >= 0.3

    def _play(self) -> list[str]:
        """Play 20 ms of buffered bot audio; return the marks whose audio has now all played."""
        played = bytes(self._buffer[:ULAW_FRAME_BYTES])
        if played:
            del self._buffer[:ULAW_FRAME_BYTES]
            self._consumed += len(played)
            if not self._buffer:
                self._drained_at = self.t_ms + FRAME_MS
        elif self._drained_at is not None and self.t_ms + FRAME_MS - self._drained_at >= GAP_MS:
            self.segments[-1].end_ms = self._drained_at
            self._idle_since = self._drained_at
            self.events.append(LineEvent(self._drained_at, "bot_audio_end"))
            self._drained_at = None
        self.heard += played + SILENCE_FRAME[len(played) :]
        echoes, self._echo_now = self._echo_now, []
        while self._marks and self._marks[0][0] <= self._consumed:
            echoes.append(self._marks.popleft()[1])
        return echoes

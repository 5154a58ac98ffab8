"""The caller's side of a call: 20 ms frames through the VAD, utterances through the recogniser.

`CallerEars` runs on the event loop for every frame and must stay cheap: decode, VAD, a pre-roll buffer.
Recognition blocks (vosk decodes on the calling thread), so `RecognitionWorker` queues typed operations
and runs the recogniser in an executor, one call's work in order, and hands back transcripts.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

from voice.codec import FRAME_MS, PCM_FRAME_BYTES, ULAW_FRAME_BYTES, UlawDecoder, ulaw_to_pcm16
from voice.stt import StreamingRecognizer, Transcript
from voice.vad import BargeInDetector, EndpointDetector, SpeechEnded, SpeechStarted, VadConfig

log = logging.getLogger(__name__)

PREROLL_FRAMES = 15  # 300 ms kept before the VAD opens an utterance, so its first syllable reaches the recogniser


@dataclass(frozen=True, slots=True)
class Heard:
    """A recogniser's final answer for one utterance (transcript None: speech, but no words)."""

    start_ms: int
    end_ms: int
    last_voiced_ms: int
    transcript: Transcript | None
    window_closed_at: float  # perf_counter() when the frame that closed the utterance arrived


# --- what the worker is asked to do, in order --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartUtterance:
    """The VAD opened an utterance whose first sample (fed next) is at call time `t_ms`."""

    t_ms: int


@dataclass(slots=True)
class Audio:
    """Caller audio (8 kHz PCM16); consecutive pieces are joined while they wait, so one call is one batch."""

    pcm: bytearray


@dataclass(frozen=True, slots=True)
class SetPhrases:
    """Narrow recognition to these phrases from the next utterance on; empty lifts the limit."""

    phrases: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FinishUtterance:
    """The VAD closed the utterance: recognise what was fed and report it."""

    ended: SpeechEnded
    window_closed_at: float


WorkerOp = StartUtterance | Audio | SetPhrases | FinishUtterance


class RecognitionWorker:
    """Feeds one call's recogniser off the event loop, in order, batching audio that piles up."""

    def __init__(
        self,
        recognizer: StreamingRecognizer,
        executor: Executor | None,
        on_final: Callable[[Heard], None],
        on_partial: Callable[[Transcript], None],
        call_sid: str = "",
    ) -> None:
        self._recognizer = recognizer
        self._executor = executor
        self._on_final = on_final
        self._on_partial = on_partial
        self._call_sid = call_sid
        self._ops: list[WorkerOp] = []
        self._wakeup = asyncio.Event()
        self._closed = False
        self._running = False
        # Executor-side: a phrase list waits while an utterance is open, since changing a recogniser's grammar
        # mid-utterance is undefined (vosk aborts the whole process), and applies when that utterance ends.
        self._in_utterance = False
        self._deferred: SetPhrases | None = None
        self._task = asyncio.create_task(self._run(), name=f"recognition-{call_sid}")

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing being recognised."""
        return not self._ops and not self._running

    def start(self, t_ms: int) -> None:
        self._push(StartUtterance(t_ms))

    def audio(self, pcm: bytes) -> None:
        last = self._ops[-1] if self._ops else None
        if type(last) is Audio:
            last.pcm += pcm
        else:
            self._push(Audio(bytearray(pcm)))
        self._wakeup.set()

    def phrases(self, phrases: tuple[str, ...]) -> None:
        """Narrow the recogniser to these phrases for the next utterance (empty: lift the limit)."""
        self._push(SetPhrases(phrases))

    def finish(self, ended: SpeechEnded, window_closed_at: float) -> None:
        self._push(FinishUtterance(ended, window_closed_at))

    async def close(self) -> None:
        """Finish what was queued (no caller's words are dropped), then release the recogniser."""
        self._closed = True
        self._wakeup.set()
        await self._task
        await asyncio.get_running_loop().run_in_executor(self._executor, self._recognizer.close)

    def _push(self, op: WorkerOp) -> None:
        self._ops.append(op)
        self._wakeup.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._ops:
                if self._closed:
                    return
                await self._wakeup.wait()
                self._wakeup.clear()
                continue
            ops, self._ops = self._ops, []
            self._running = True
            try:
                results = await loop.run_in_executor(self._executor, self._apply, ops)
            except Exception:  # a recogniser failure loses this batch, never the call
                log.exception("speech recogniser failed on call %s", self._call_sid)
                continue
            finally:
                self._running = False
            for result in results:
                if isinstance(result, Heard):
                    self._on_final(result)
                else:
                    self._on_partial(result)

    def _apply(self, ops: list[WorkerOp]) -> list[Heard | Transcript]:
        """Executor thread: run the queued operations in order."""
        out: list[Heard | Transcript] = []
        rec = self._recognizer
        for op in ops:
            if type(op) is Audio:
                partial = rec.accept(bytes(op.pcm))
                if partial is not None:
                    out.append(partial)
            elif type(op) is StartUtterance:
                rec.start_utterance(op.t_ms)
                self._in_utterance = True
            elif type(op) is SetPhrases:
                if self._in_utterance:
                    self._deferred = op
                else:
                    rec.set_phrases(op.phrases)
            elif type(op) is FinishUtterance:
                ended = op.ended
                final = rec.finish_utterance(ended.start_ms, ended.end_ms)
                self._in_utterance = False
                out.append(Heard(ended.start_ms, ended.end_ms, ended.last_voiced_ms, final, op.window_closed_at))
                if self._deferred is not None:
                    rec.set_phrases(self._deferred.phrases)
                    self._deferred = None
        return out


class CallerEars:
    """Per-frame listening: decode μ-law, run the VAD, keep pre-roll, spot barge-in while the bot talks."""

    def __init__(self, vad: VadConfig) -> None:
        self.endpoint = EndpointDetector(vad)
        self.barge_in = BargeInDetector(vad)
        self._decoder = UlawDecoder()
        self._preroll: deque[tuple[int, bytes]] = deque(maxlen=PREROLL_FRAMES)
        self._remainder = b""  # μ-law bytes of a payload that was not a whole number of frames
        self.utterance_open = False

    def frames(self, payload: bytes, t_ms: int) -> list[tuple[int, bytes]]:
        """Decode one media payload into (t_ms, 20 ms PCM) frames; Twilio's are exactly one frame."""
        if len(payload) == ULAW_FRAME_BYTES and not self._remainder:
            return [(t_ms, self._decoder.decode(payload))]
        data = self._remainder + payload
        whole = len(data) - len(data) % ULAW_FRAME_BYTES
        self._remainder = data[whole:]
        pcm = ulaw_to_pcm16(data[:whole])
        return [
            (t_ms + i // PCM_FRAME_BYTES * FRAME_MS, pcm[i : i + PCM_FRAME_BYTES])
            for i in range(0, len(pcm), PCM_FRAME_BYTES)
        ]

    def hear(self, pcm: bytes, t_ms: int) -> SpeechStarted | SpeechEnded | None:
        """Feed one frame to the VAD and the pre-roll buffer."""
        event = self.endpoint.feed(pcm, t_ms)
        self._preroll.append((t_ms, pcm))
        return event

    def preroll_since(self, t_ms: int) -> list[bytes]:
        """Frames from `t_ms` on, to give the recogniser the start of an utterance the VAD just opened."""
        return [pcm for t, pcm in self._preroll if t >= t_ms]

"""The caller's side of a call: 20 ms frames through the VAD, utterances through the recogniser.

`CallerEars` runs on the event loop for every frame and must stay cheap: decode, VAD, a pre-roll buffer.
Recognition blocks (vosk decodes on the calling thread), so `RecognitionWorker` batches the audio of an
utterance and runs the recogniser in an executor, one call's work in order, and hands back transcripts.
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


class RecognitionWorker:
    """Feeds one call's recogniser off the event loop, in order, batching audio that piles up."""

    def __init__(
        self,
        recognizer: StreamingRecognizer,
        executor: Executor | None,
        on_final: Callable[[Heard], None],
        on_partial: Callable[[Transcript], None],
    ) -> None:
        self._recognizer = recognizer
        self._executor = executor
        self._on_final = on_final
        self._on_partial = on_partial
        self._ops: list[tuple[str, object]] = []
        self._wakeup = asyncio.Event()
        self._closed = False
        self._task = asyncio.create_task(self._run(), name="recognition")

    def start(self, t_ms: int) -> None:
        self._push("start", t_ms)

    def audio(self, pcm: bytes) -> None:
        self._push("audio", pcm)

    def phrases(self, phrases: tuple[str, ...]) -> None:
        """Narrow the recogniser to these phrases for the next utterance (when the engine can)."""
        self._push("phrases", phrases)

    def finish(self, ended: SpeechEnded, window_closed_at: float) -> None:
        self._push("finish", (ended, window_closed_at))

    async def close(self) -> None:
        """Finish what was queued (no caller's words are dropped), then release the recogniser."""
        self._closed = True
        self._wakeup.set()
        await self._task
        await asyncio.get_running_loop().run_in_executor(self._executor, self._recognizer.close)

    def _push(self, op: str, arg: object) -> None:
        if self._ops and op == "audio" and self._ops[-1][0] == "audio":
            prev = self._ops[-1][1]
            assert isinstance(prev, bytearray)
            prev += arg  # type: ignore[operator]
        else:
            self._ops.append((op, bytearray(arg) if op == "audio" else arg))  # type: ignore[arg-type]
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
            try:
                results = await loop.run_in_executor(self._executor, self._apply, ops)
            except Exception:  # a recogniser failure loses this batch, never the call
                log.exception("speech recogniser failed on call %s", getattr(self._recognizer, "call_sid", "?"))
                continue
            for result in results:
                if isinstance(result, Heard):
                    self._on_final(result)
                else:
                    self._on_partial(result)

    def _apply(self, ops: list[tuple[str, object]]) -> list[Heard | Transcript]:
        """Executor thread: run the queued operations in order."""
        out: list[Heard | Transcript] = []
        rec = self._recognizer
        for op, arg in ops:
            if op == "start":
                rec.start_utterance(arg)  # type: ignore[arg-type]
            elif op == "phrases":
                narrow = getattr(rec, "set_phrases", None)
                if narrow is not None:
                    narrow(arg)
            elif op == "audio":
                partial = rec.accept(bytes(arg))  # type: ignore[arg-type]
                if partial is not None:
                    out.append(partial)
            else:
                ended, closed_at = arg  # type: ignore[misc]
                final = rec.finish_utterance(ended.start_ms, ended.end_ms)
                out.append(Heard(ended.start_ms, ended.end_ms, ended.last_voiced_ms, final, closed_at))
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

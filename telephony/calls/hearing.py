"""The caller's side of a call: 20 ms frames through the VAD, utterances through the recogniser.

`CallerEars` runs on the event loop for every frame and must stay cheap: decode, VAD, a pre-roll buffer.
`RecognitionWorker` queues the typed operations of `voice.recognition` and hands them, one call's work in
order, to the recognition service (an executor, or worker processes), and hands back transcripts.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from contextlib import suppress

from voice.codec import FRAME_MS, PCM_FRAME_BYTES, ULAW_FRAME_BYTES, UlawDecoder, ulaw_to_pcm16
from voice.recognition import (
    Audio,
    CallRecognition,
    FinishUtterance,
    Heard,
    RecognitionOp,
    RecognitionService,
    RecognizerFailed,
    SetPhrases,
    StartUtterance,
)
from voice.stt import Transcript
from voice.vad import BargeInDetector, EndpointDetector, SpeechEnded, SpeechStarted, VadConfig

log = logging.getLogger(__name__)

PREROLL_FRAMES = 15  # 300 ms kept before the VAD opens an utterance, so its first syllable reaches the recogniser


class RecognitionWorker:
    """Feeds one call's recognition in order, batching audio that piles up while a batch is being recognised.

    The recogniser is opened off the event loop when the worker starts; if it cannot be opened, or it fails
    later (its engine died), `on_failure` is told once and nothing more is recognised.
    """

    def __init__(
        self,
        service: RecognitionService,
        call_sid: str,
        on_final: Callable[[Heard], None],
        on_partial: Callable[[Transcript], None],
        on_failure: Callable[[RecognizerFailed], None],
    ) -> None:
        self._service = service
        self._call_sid = call_sid
        self._on_final = on_final
        self._on_partial = on_partial
        self._on_failure = on_failure
        self._recognition: CallRecognition | None = None
        self._ops: list[RecognitionOp] = []
        self._wakeup = asyncio.Event()
        self._closed = False
        self._running = True  # opening the recogniser counts as work in progress
        self.failed = False
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
        if self._recognition is not None:
            with suppress(RecognizerFailed):  # its engine is gone already: nothing to release
                await self._recognition.close()

    def _push(self, op: RecognitionOp) -> None:
        if not self.failed:
            self._ops.append(op)
            self._wakeup.set()

    async def _run(self) -> None:
        try:
            self._recognition = await self._service.open(self._call_sid)
        except RecognizerFailed as exc:
            self._fail(exc)
            return
        finally:
            self._running = False
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
                results = await self._recognition.run(ops)
            except RecognizerFailed as exc:
                self._fail(exc)
                return
            finally:
                self._running = False
            for result in results:
                if isinstance(result, Heard):
                    self._on_final(result)
                else:
                    self._on_partial(result)

    def _fail(self, exc: RecognizerFailed) -> None:
        log.warning("speech recognition failed on call %s: %s", self._call_sid, exc)
        self.failed = True
        self._ops.clear()
        self._on_failure(exc)


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

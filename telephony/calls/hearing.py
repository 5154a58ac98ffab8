"""The caller's side of a call: 20 ms frames through the VAD, utterances through the recogniser.

`CallerEars` runs on the event loop for every frame and must stay cheap: decode, VAD, a pre-roll buffer.
`RecognitionWorker` queues the typed operations of `voice.recognition` and hands them, one call's work in
order, to the recognition service (an executor, or worker processes), and hands back transcripts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from contextlib import suppress

from voice.codec import FRAME_MS, PCM_FRAME_BYTES, ULAW_FRAME_BYTES, UlawDecoder, ulaw_to_pcm16
from voice.recognition import (
    SETTLE,
    Audio,
    CallRecognition,
    FinishUtterance,
    Heard,
    ImmediateRecognition,
    Recognised,
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
TRAILING_PAD_FRAMES = 10  # of a pause inside an utterance, the first 200 ms go to the recogniser at once; the
# rest waits, and goes only if the caller speaks again: the end-of-speech window's silence costs vosk as much
# CPU as speech, and 200 ms is all it needs to close the last word
SETTLE_AFTER_FRAMES = 20  # 400 ms into a pause, the recogniser decodes what it has: the utterance has probably
# ended, and the final is then ready the moment the 600 ms end-of-speech window closes
AUDIO_BATCH_BYTES = 5 * PCM_FRAME_BYTES  # audio goes to the recogniser 100 ms at a time: vosk decodes a batch
# cheaper than five frames one by one, and finishing an utterance sends what is waiting at once


class RecognitionWorker:
    """Feeds one call's recognition in order, batching audio that piles up while a batch is being recognised.

    The recogniser is opened off the event loop when the worker starts; if it cannot be opened, or it fails
    later (its engine died), `on_failure` is told once and nothing more is recognised. A recognition that does
    no waiting (`ImmediateRecognition`) is run in place as work comes due, and what it returns is reported from
    the loop's next turn, as the worker's task would report it, but without the task's wake-up.
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
        self._now: ImmediateRecognition | None = None  # the recognition, once open, if it runs in place
        self._unreported = 0  # results of work run in place, still to be reported
        self.failed = False
        self._task = asyncio.create_task(self._run(), name=f"recognition-{call_sid}")

    @property
    def idle(self) -> bool:
        """Nothing being recognised, and nothing queued but audio waiting to make up a batch."""
        return not self._running and not self._unreported and not self._due()

    def start(self, t_ms: int) -> None:
        self._push(StartUtterance(t_ms))

    def audio(self, pcm: bytes) -> None:
        if self.failed:
            return
        last = self._ops[-1] if self._ops else None
        if type(last) is Audio:
            last.pcm += pcm
        else:
            self._ops.append(Audio(bytearray(pcm)))
        if self._due():
            self._work_due()

    def settle(self) -> None:
        """The caller paused: have the recogniser decode what it has now (see `SettleUtterance`)."""
        self._push(SETTLE)

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
        # Work run in place just before has its results reported on the loop's next turn; reporting one may run
        # more, so this looks again after each turn.
        while self._unreported:  # noqa: ASYNC110
            await asyncio.sleep(0)
        if self._recognition is not None:
            with suppress(RecognizerFailed):  # its engine is gone already: nothing to release
                await self._recognition.close()

    def _push(self, op: RecognitionOp) -> None:
        if not self.failed:
            self._ops.append(op)
            self._work_due()

    def _work_due(self) -> None:
        now = self._now
        if now is None:
            self._wakeup.set()
            return
        ops, self._ops = self._ops, []
        try:
            results = now.run_now(ops)
        except RecognizerFailed as exc:
            self.failed = True  # nothing more is fed; the call hears of it as from the task, on the loop's next turn
            self._ops.clear()
            asyncio.get_running_loop().call_soon(self._fail, exc)
            return
        if results:
            self._unreported += 1
            asyncio.get_running_loop().call_soon(self._report_now, results)

    def _report_now(self, results: list[Recognised]) -> None:
        self._unreported -= 1
        self._report(results)

    def _report(self, results: list[Recognised]) -> None:
        for result in results:
            if isinstance(result, Heard):
                self._on_final(result)
            else:
                self._on_partial(result)

    def _due(self) -> bool:
        """Work worth sending: anything but a short run of audio (which waits for more, or for its end)."""
        if not self._ops:
            return False
        last = self._ops[-1]
        return len(self._ops) > 1 or type(last) is not Audio or len(last.pcm) >= AUDIO_BATCH_BYTES

    async def _run(self) -> None:
        try:
            self._recognition = await self._service.open(self._call_sid)
        except RecognizerFailed as exc:
            self._fail(exc)
            return
        finally:
            self._running = False
        if isinstance(self._recognition, ImmediateRecognition):
            self._now = self._recognition  # from now on, work runs in place as it comes due; this waits to close
        while True:
            if not self._due() and not (self._closed and self._ops):
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
            self._report(results)

    def _fail(self, exc: RecognizerFailed) -> None:
        log.warning("speech recognition failed on call %s: %s", self._call_sid, exc)
        self.failed = True
        self._ops.clear()
        self._on_failure(exc)


class NoiseDropped:
    """The VAD opened an utterance but dropped it: the voiced burst was too short to be speech."""


NOISE_DROPPED = NoiseDropped()
Listened = SpeechStarted | SpeechEnded | NoiseDropped | None


class CallerEars:
    """Per-frame listening: decode μ-law, run the VAD, keep pre-roll, spot barge-in while the bot talks,
    and drive the call's recognition: utterances opened, fed and closed as the VAD hears them."""

    def __init__(self, vad: VadConfig) -> None:
        self.endpoint = EndpointDetector(vad)
        self.barge_in = BargeInDetector(vad)
        self._decoder = UlawDecoder()
        self._preroll: deque[tuple[int, bytes]] = deque(maxlen=PREROLL_FRAMES)
        self._remainder = b""  # μ-law bytes of a payload that was not a whole number of frames
        self.utterance_open = False
        self.utterance_start_ms = 0
        self._quiet = 0  # unvoiced frames in a row inside the open utterance
        self._held: list[bytes] = []  # of those, the ones past the pad: sent only if the caller speaks again

    def frame(self, payload: bytes) -> bytes | None:
        """The PCM of a payload that is exactly one whole frame, as Twilio's are; None for any other: `frames`."""
        if len(payload) == ULAW_FRAME_BYTES and not self._remainder:
            return self._decoder.decode(payload)
        return None

    def frames(self, payload: bytes, t_ms: int) -> list[tuple[int, bytes]]:
        """Decode one media payload of any size into (t_ms, 20 ms PCM) frames; a part frame waits for the rest."""
        pcm = self.frame(payload)
        if pcm is not None:
            return [(t_ms, pcm)]
        data = self._remainder + payload
        whole = len(data) - len(data) % ULAW_FRAME_BYTES
        self._remainder = data[whole:]
        pcm = ulaw_to_pcm16(data[:whole])
        return [
            (t_ms + i // PCM_FRAME_BYTES * FRAME_MS, pcm[i : i + PCM_FRAME_BYTES])
            for i in range(0, len(pcm), PCM_FRAME_BYTES)
        ]

    def listen(self, pcm: bytes, t_ms: int, worker: RecognitionWorker | None) -> Listened:
        """Feed one frame to the VAD and pre-roll, and pass the utterance it belongs to on to `worker`.

        An utterance opens with the pre-roll (its first syllable came before the VAD was sure), is fed
        frame by frame while the caller speaks, and is finished when the end-of-speech window closes.
        """
        event = self.endpoint.feed(pcm, t_ms)
        self._preroll.append((t_ms, pcm))
        if event is None:
            if self.endpoint.in_speech:
                if worker is not None:
                    self._pass_on(pcm, worker)
            elif self.utterance_open:
                self.utterance_open = False
                return NOISE_DROPPED
            return None
        self._quiet = 0
        self._held.clear()
        if isinstance(event, SpeechStarted):
            self.utterance_open = True
            self.utterance_start_ms = event.t_ms
            if worker is not None:
                worker.start(event.t_ms)
                for t, frame in self._preroll:
                    if t >= event.t_ms:
                        worker.audio(frame)
        else:
            self.utterance_open = False
            if worker is not None:
                worker.finish(event, time.perf_counter())
        return event

    def _pass_on(self, pcm: bytes, worker: RecognitionWorker) -> None:
        """One frame of an open utterance: speech goes on, and a pause only as far as the pad, unless speech
        follows it (then the held part goes first, so the recogniser hears the pause as it was)."""
        if self.endpoint.last_voiced:
            for held in self._held:
                worker.audio(held)
            self._held.clear()
            self._quiet = 0
            worker.audio(pcm)
            return
        self._quiet += 1
        if self._quiet <= TRAILING_PAD_FRAMES:
            worker.audio(pcm)
        else:
            self._held.append(pcm)
        if self._quiet == SETTLE_AFTER_FRAMES:
            worker.settle()

    def cut_short(self, worker: RecognitionWorker | None, now_ms: int) -> None:
        """The stream ended mid-sentence: close the open utterance so what the caller said is recognised."""
        if self.utterance_open:
            self.utterance_open = False
            if worker is not None:
                worker.finish(SpeechEnded(self.utterance_start_ms, now_ms, now_ms), time.perf_counter())

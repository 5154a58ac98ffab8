"""The caller's side of a call: what of the caller's audio reaches the recogniser, and when.

Real webrtcvad on a committed caller recording; the recogniser is a recording stand-in, since what is checked
is what it is given.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from telephony.calls.hearing import (
    AUDIO_BATCH_BYTES,
    NOISE_DROPPED,
    TRAILING_PAD_FRAMES,
    CallerEars,
    RecognitionWorker,
)
from voice.codec import FRAME_MS, PCM_FRAME_BYTES, ulaw_to_pcm16
from voice.recognition import (
    Audio,
    CallRecognition,
    FinishUtterance,
    Heard,
    Recognised,
    RecognitionOp,
    RecognizerFailed,
    StartUtterance,
)
from voice.stt import Transcript
from voice.vad import SpeechEnded, SpeechStarted, VadConfig
from voice.wavfile import read_ulaw_wav

ROOT = Path(__file__).resolve().parents[3]
SPEECH = ulaw_to_pcm16(read_ulaw_wav(ROOT / "audio_fixtures" / "person" / "ask_for_agent.wav"))
PAD_BYTES = TRAILING_PAD_FRAMES * PCM_FRAME_BYTES


def quiet(ms: int) -> bytes:
    return bytes(ms * 16)


class HeardAudio:
    """Stands in for a RecognitionWorker: keeps what CallerEars hands it."""

    def __init__(self) -> None:
        self.started: list[int] = []
        self.pcm = bytearray()
        self.finished: list[SpeechEnded] = []
        self.settled_at: list[int] = []  # bytes of audio handed over when the recogniser was asked to settle

    def settle(self) -> None:
        self.settled_at.append(len(self.pcm))

    def start(self, t_ms: int) -> None:
        self.started.append(t_ms)

    def audio(self, pcm: bytes) -> None:
        self.pcm += pcm

    def finish(self, ended: SpeechEnded, window_closed_at: float) -> None:
        self.finished.append(ended)


def listen(pcm: bytes) -> tuple[HeardAudio, list[object]]:
    """Run a stream through CallerEars frame by frame, as the session does."""
    ears = CallerEars(VadConfig())
    worker = HeardAudio()
    events: list[object] = []
    for index in range(len(pcm) // PCM_FRAME_BYTES):
        frame = pcm[index * PCM_FRAME_BYTES : (index + 1) * PCM_FRAME_BYTES]
        event = ears.listen(frame, index * FRAME_MS, worker)  # type: ignore[arg-type]
        if event is not None:
            events.append(event)
    return worker, events


def test_the_recogniser_hears_the_utterance_and_only_a_short_pad_of_the_silence_that_ends_it() -> None:
    stream = quiet(500) + SPEECH + quiet(1500)
    worker, events = listen(stream)
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded]
    (ended,) = worker.finished
    start, last = ended.start_ms * 16, ended.last_voiced_ms * 16
    # everything from the first voiced frame to the last, then the pad; the rest of the window is not decoded
    assert bytes(worker.pcm) == stream[start : last + PAD_BYTES]
    assert ended.end_ms - ended.last_voiced_ms > TRAILING_PAD_FRAMES * FRAME_MS
    # asked to decode ahead once, after the last word and its pad: the window's end then finds it ready
    assert worker.settled_at == [len(worker.pcm)]


def test_a_pause_the_caller_talks_on_after_reaches_the_recogniser_whole_and_in_order() -> None:
    pause = quiet(100)  # with the recording's own 340 ms tail: a 440 ms pause, past the pad, inside the window
    stream = quiet(500) + SPEECH + pause + SPEECH + quiet(1500)
    worker, events = listen(stream)
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded]
    (ended,) = worker.finished
    start, last = ended.start_ms * 16, ended.last_voiced_ms * 16
    assert bytes(worker.pcm) == stream[start : last + PAD_BYTES]
    assert pause in bytes(worker.pcm)
    assert len(worker.settled_at) == 2  # the 440 ms pause settled what came before it; the end did too


def test_a_burst_too_short_to_be_speech_is_dropped_and_said_so() -> None:
    burst = SPEECH[: 100 * 16]  # long enough to open an utterance, shorter than min_speech_ms
    _worker, events = listen(quiet(300) + burst + quiet(1000))
    assert events[0].__class__ is SpeechStarted
    assert NOISE_DROPPED in events
    assert not any(isinstance(e, SpeechEnded) for e in events)


def test_a_stream_cut_mid_sentence_still_finishes_the_utterance() -> None:
    ears = CallerEars(VadConfig())
    worker = HeardAudio()
    for index in range(len(SPEECH) // 2 // PCM_FRAME_BYTES):
        frame = SPEECH[index * PCM_FRAME_BYTES : (index + 1) * PCM_FRAME_BYTES]
        ears.listen(frame, index * FRAME_MS, worker)  # type: ignore[arg-type]
    assert ears.utterance_open
    ears.cut_short(worker, 5000)  # type: ignore[arg-type]
    assert [e.end_ms for e in worker.finished] == [5000] and not ears.utterance_open


# --- RecognitionWorker: batches ---------------------------------------------------------------------


class RecordingCall:
    """A call's recognition that records each batch it is sent."""

    def __init__(self) -> None:
        self.batches: list[list[RecognitionOp]] = []

    async def run(self, ops: Sequence[RecognitionOp]) -> list[Recognised]:
        self.batches.append(list(ops))
        return []

    async def close(self) -> None:
        return None


class OneCallService:
    name = "recording"

    def __init__(self) -> None:
        self.call = RecordingCall()

    async def start(self) -> None:
        return None

    async def open(self, call_sid: str) -> CallRecognition:
        return self.call

    async def aclose(self) -> None:
        return None


def audio_bytes(batch: list[RecognitionOp]) -> int:
    return sum(len(op.pcm) for op in batch if isinstance(op, Audio))


async def test_audio_goes_to_the_recogniser_in_batches_and_the_end_of_an_utterance_at_once() -> None:
    service = OneCallService()
    worker = RecognitionWorker(service, "CA1", lambda heard: None, lambda partial: None, lambda exc: None)
    frame = bytes(PCM_FRAME_BYTES)
    worker.start(0)
    for _ in range(23):  # 460 ms, a frame at a time, the loop free between frames as with a real stream
        worker.audio(frame)
        await asyncio.sleep(0)
    worker.finish(SpeechEnded(0, 1060, 460), 0.0)
    await worker.close()

    batches = service.call.batches
    assert isinstance(batches[0][0], StartUtterance)
    *middle, last = batches
    assert all(audio_bytes(batch) >= AUDIO_BATCH_BYTES for batch in middle[1:])
    assert isinstance(last[-1], FinishUtterance)  # sent with the audio that was waiting, without waiting more
    assert sum(audio_bytes(batch) for batch in batches) == 23 * PCM_FRAME_BYTES  # nothing lost or repeated
    assert worker.idle


async def test_audio_still_waiting_when_the_call_ends_is_recognised() -> None:
    service = OneCallService()
    worker = RecognitionWorker(service, "CA1", lambda heard: None, lambda partial: None, lambda exc: None)
    worker.start(0)
    await asyncio.sleep(0)
    worker.audio(bytes(PCM_FRAME_BYTES))  # less than a batch
    await asyncio.sleep(0)
    assert worker.idle  # a short run of audio waits for more: a virtual clock may move on
    await worker.close()
    assert sum(audio_bytes(batch) for batch in service.call.batches) == PCM_FRAME_BYTES


# --- RecognitionWorker: a recognition that runs in place ----------------------------------------------------


class InPlaceCall(RecordingCall):
    """A recognition that does no waiting (`ImmediateRecognition`): records each batch as it is run in place,
    answers each with a partial, and the end of an utterance with a final; or fails, when told to."""

    def __init__(self) -> None:
        super().__init__()
        self.fail = False

    def run_now(self, ops: Sequence[RecognitionOp]) -> list[Recognised]:
        if self.fail:
            raise RecognizerFailed("engine gone")
        self.batches.append(list(ops))
        out: list[Recognised] = [Transcript("where", 0.9, 0, 100, (), False, "test")]
        for op in ops:
            if isinstance(op, FinishUtterance):
                final = Transcript("where is my order", 0.9, 0, op.ended.end_ms, (), True, "test")
                out.append(Heard(op.ended.start_ms, op.ended.end_ms, op.ended.last_voiced_ms, final, 0.0))
        return out

    async def run(self, ops: Sequence[RecognitionOp]) -> list[Recognised]:
        return self.run_now(ops)


class InPlaceService(OneCallService):
    def __init__(self) -> None:
        self.call = InPlaceCall()


async def test_a_recognition_that_does_no_waiting_runs_as_work_comes_due_and_reports_on_the_next_turn() -> None:
    service = InPlaceService()
    finals: list[Heard] = []
    partials: list[Transcript] = []
    worker = RecognitionWorker(service, "CA1", finals.append, partials.append, lambda exc: None)
    await asyncio.sleep(0)  # the recogniser is opened
    worker.start(0)
    for _ in range(AUDIO_BATCH_BYTES // PCM_FRAME_BYTES):
        worker.audio(bytes(PCM_FRAME_BYTES))
    # run in place, without a turn of the loop: no task was woken for it
    assert [[type(op) for op in batch] for batch in service.call.batches] == [[StartUtterance], [Audio]]
    assert partials == [] and not worker.idle  # reported from the loop's next turn, not from the frame's callback
    await asyncio.sleep(0)
    assert [p.text for p in partials] == ["where", "where"] and worker.idle
    worker.finish(SpeechEnded(0, 900, 300), 0.0)
    await worker.close()  # what was run just before the close is reported before it returns
    assert [h.transcript.text for h in finals if h.transcript is not None] == ["where is my order"]


async def test_a_recognition_that_fails_in_place_is_reported_once_and_fed_no_more() -> None:
    service = InPlaceService()
    failures: list[RecognizerFailed] = []
    worker = RecognitionWorker(service, "CA1", lambda heard: None, lambda partial: None, failures.append)
    await asyncio.sleep(0)
    service.call.fail = True
    worker.start(0)
    assert failures == [] and worker.failed  # fed no more at once; the call hears of it on the next turn
    await asyncio.sleep(0)
    assert [str(f) for f in failures] == ["engine gone"]
    service.call.fail = False
    worker.start(100)
    worker.audio(bytes(AUDIO_BATCH_BYTES))
    await worker.close()
    assert service.call.batches == [] and len(failures) == 1 and worker.idle

"""Recognition as a call sees it: typed operations in order (open an utterance, audio, a phrase list, close it),
and what comes back (partials, and one `Heard` per utterance).

Where the recogniser runs is the service's business: `LocalRecognition` runs it in this process, in an
executor (tests, benchmarks), or on the loop for oracle ASR, which only looks words up in a script;
`voice.asr_pool.PooledRecognition` runs vosk in worker processes, so that an engine fault ends only the
recognition of the calls it served (`RecognizerFailed`), never the server. Nothing that decodes speech
blocks the event loop: even creating a vosk recogniser happens elsewhere.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from voice.errors import VoiceError
from voice.stt import RecognizerFactory, StreamingRecognizer, Transcript
from voice.vad import SpeechEnded


class RecognizerFailed(VoiceError):
    """The engine behind a call's recognition is gone (its worker process died, or it raised); the call
    cannot be heard any more and should be handed to a person with what was already said."""


@dataclass(frozen=True, slots=True)
class Heard:
    """A recogniser's final answer for one utterance (transcript None: speech, but no words)."""

    start_ms: int
    end_ms: int
    last_voiced_ms: int
    transcript: Transcript | None
    window_closed_at: float  # perf_counter() when the frame that closed the utterance arrived


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
class SettleUtterance:
    """The caller has paused long enough that the utterance has probably ended: decode what was heard now,
    so that the final is ready at once when the end-of-speech window closes (speech may still follow)."""


SETTLE = SettleUtterance()


@dataclass(frozen=True, slots=True)
class FinishUtterance:
    """The VAD closed the utterance: recognise what was fed and report it."""

    ended: SpeechEnded
    window_closed_at: float


RecognitionOp = StartUtterance | Audio | SetPhrases | SettleUtterance | FinishUtterance
Recognised = Heard | Transcript  # a final answer, or a partial while the caller speaks


class UtteranceRunner:
    """Applies a call's operations to its recogniser, in order.

    A phrase list waits while an utterance is open and applies when that utterance ends: changing an
    engine's grammar mid-utterance is undefined (vosk aborts the whole process).
    """

    def __init__(self, recognizer: StreamingRecognizer) -> None:
        self.recognizer = recognizer
        self._in_utterance = False
        self._deferred: SetPhrases | None = None

    def apply(self, ops: Sequence[RecognitionOp]) -> list[Recognised]:
        out: list[Recognised] = []
        rec = self.recognizer
        for op in ops:
            if type(op) is Audio:
                partial = rec.accept(bytes(op.pcm))
                if partial is not None:
                    out.append(partial)
            elif type(op) is StartUtterance:
                rec.start_utterance(op.t_ms)
                self._in_utterance = True
            elif type(op) is SettleUtterance:
                if self._in_utterance:
                    rec.settle()
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


class CallRecognition(Protocol):
    """One call's recognition: operations in, results out, in order."""

    async def run(self, ops: Sequence[RecognitionOp]) -> list[Recognised]:
        """Apply the operations; raises RecognizerFailed when the engine is gone."""
        ...

    async def close(self) -> None:
        """The call is over: release the recogniser."""
        ...


@runtime_checkable
class ImmediateRecognition(Protocol):
    """A call's recognition that does no waiting (oracle ASR looks its words up in a script): the caller may run
    it in place with `run_now`, which spares a task's wake-up for every 100 ms of the caller's speech."""

    def run_now(self, ops: Sequence[RecognitionOp]) -> list[Recognised]:
        """`run`, in place; raises RecognizerFailed when the engine is gone."""
        ...


class RecognitionService(Protocol):
    """Where a server's calls are recognised; `name` is the engine ("vosk" or "oracle")."""

    name: str

    async def start(self) -> None:
        """Before the first call (the server's start-up): load what takes long, once."""
        ...

    async def open(self, call_sid: str) -> CallRecognition:
        """A recogniser for a new call, made off the event loop; raises RecognizerFailed when none can be."""
        ...

    async def aclose(self) -> None:
        """The server is stopping."""
        ...


class LocalCall:
    """A call's recogniser in this process, run in an executor thread."""

    def __init__(self, runner: UtteranceRunner, executor: Executor | None) -> None:
        self._runner = runner
        self._executor = executor

    async def run(self, ops: Sequence[RecognitionOp]) -> list[Recognised]:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, self._runner.apply, list(ops))
        except Exception as exc:  # an engine error in this process: the call cannot be heard any more
            raise RecognizerFailed(f"the recogniser raised {type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._runner.recognizer.close)


class InlineCall:
    """A call's recogniser run on the event loop, in place (`ImmediateRecognition`): for recognisers that do no
    real work."""

    def __init__(self, runner: UtteranceRunner) -> None:
        self._runner = runner

    def run_now(self, ops: Sequence[RecognitionOp]) -> list[Recognised]:
        try:
            return self._runner.apply(ops)
        except Exception as exc:  # an engine error in this process: the call cannot be heard any more
            raise RecognizerFailed(f"the recogniser raised {type(exc).__name__}: {exc}") from exc

    async def run(self, ops: Sequence[RecognitionOp]) -> list[Recognised]:
        return self.run_now(ops)

    async def close(self) -> None:
        self._runner.recognizer.close()


class LocalRecognition:
    """Recognition in this process: each call's recogniser made and run in `executor`.

    `inline` runs them on the event loop instead, for recognisers that do no real work (oracle ASR looks its
    words up in a script): for them a thread hop, with its wake-ups and GIL hand-overs, costs far more CPU
    than the recognition, a hop for every 100 ms of the caller's speech.
    """

    def __init__(self, factory: RecognizerFactory, executor: Executor | None = None, inline: bool = False) -> None:
        self.factory = factory
        self.name = factory.name
        self._executor = executor
        self._inline = inline

    async def start(self) -> None:
        return None

    async def open(self, call_sid: str) -> CallRecognition:
        loop = asyncio.get_running_loop()
        try:
            if self._inline:
                recognizer = self.factory.new_recognizer(call_sid)
            else:
                recognizer = await loop.run_in_executor(self._executor, self.factory.new_recognizer, call_sid)
        except Exception as exc:
            raise RecognizerFailed(f"no recogniser for call {call_sid}: {type(exc).__name__}: {exc}") from exc
        runner = UtteranceRunner(recognizer)
        return InlineCall(runner) if self._inline else LocalCall(runner, self._executor)

    async def aclose(self) -> None:
        return None

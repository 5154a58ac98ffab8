"""Speech recognition for one call: what a recogniser is, and vosk on the caller's audio.

A recogniser is fed the caller's 8 kHz PCM between `start_utterance` and `finish_utterance`, which the
session calls when its VAD opens and closes an utterance. Every method here blocks (vosk decodes in C on
the calling thread), so the session runs them off the event loop, in an executor of its own.

Times in a `Transcript` are call-time milliseconds, the clock the VAD and the dialog use.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol, cast

import numpy as np
import soxr
import vosk

from voice.codec import SAMPLE_RATE
from voice.errors import ModelNotFound

log = logging.getLogger(__name__)

VOSK_SAMPLE_RATE = 16000  # the small models are trained on 16 kHz audio; 8000 feeds the phone audio as it is


@dataclass(frozen=True)
class Word:
    """One recognised word and when, in call time, it was said."""

    text: str
    start_ms: int
    end_ms: int
    confidence: float


@dataclass(frozen=True)
class Transcript:
    """What the recogniser heard in one utterance: a `final` result, or a partial one while it goes on.

    `engine` is "vosk" or "oracle", so a stored call says whether its words were recognised or scripted.
    """

    text: str
    confidence: float
    start_ms: int
    end_ms: int
    words: tuple[Word, ...]
    final: bool
    engine: str


class StreamingRecognizer(Protocol):
    """Recognises one call's utterances in turn; blocking, so it runs off the event loop."""

    def start_utterance(self, t_ms: int) -> None:
        """An utterance opens; `t_ms` is the call time of the first sample `accept` will get next."""

    def accept(self, pcm8k: bytes) -> Transcript | None:
        """Feed 8 kHz PCM16; returns a partial transcript when the hypothesis changed."""

    def settle(self) -> None:
        """The caller paused: decode what was heard so far now, so `finish_utterance` has little left to do."""

    def finish_utterance(self, start_ms: int, end_ms: int) -> Transcript | None:
        """The VAD closed the utterance; returns the final transcript, or None if nothing was heard."""

    def set_phrases(self, phrases: tuple[str, ...]) -> None:
        """Narrow recognition to these phrases from the next utterance on; empty lifts the limit."""

    def close(self) -> None:
        """Release the engine's resources; the call is over."""


class RecognizerFactory(Protocol):
    """Makes one recogniser per call; `name` is the engine ("vosk" or "oracle")."""

    name: str

    def new_recognizer(self, call_sid: str) -> StreamingRecognizer: ...


# --- vosk -----------------------------------------------------------------------------------------


class _KaldiRecognizer(Protocol):
    """The part of `vosk.KaldiRecognizer` we use (its names); results are JSON strings."""

    def AcceptWaveform(self, data: bytes) -> bool: ...
    def Result(self) -> str: ...
    def PartialResult(self) -> str: ...
    def FinalResult(self) -> str: ...


FLUSH_SILENCE_BYTES = 320  # 10 ms at 16 kHz: enough for vosk to take input again and finish it
FREE_FORM = "[]"  # vosk's grammar for "no grammar"; anything else empty crashes it


class KaldiHandle:
    """A vosk decoder, its fixed grammar, and how much audio it has been fed (vosk's word times count from
    its creation, so a call that borrows it maps them onto call time from this count)."""

    def __init__(self, kaldi: _KaldiRecognizer, grammar: str = FREE_FORM) -> None:
        self.kaldi = kaldi
        self.grammar = grammar
        self.fed_samples = 0
        self.running = False  # fed audio since the last Result or FinalResult
        self.undecoded = False  # fed audio since the last FinalResult: some of it may not be decoded yet

    def feed(self, pcm: bytes) -> bool:
        self.fed_samples += len(pcm) // 2
        self.running = self.undecoded = True
        return self.kaldi.AcceptWaveform(pcm)

    def result(self) -> str:
        """The segment vosk's endpointer closed. Only what vosk had decoded: up to about half a second of the
        latest audio stays in the decoder and goes into the next segment."""
        self.running = False
        return self.kaldi.Result()

    def final_result(self) -> str:
        """Everything fed, decoded to the end. vosk's FinalResult decodes nothing after a `Result` (the decoder
        is no longer running) and would leave that last half second to open the next utterance, maybe another
        caller's; a moment of silence makes it run again, so the tail is decoded here."""
        if self.undecoded and not self.running:
            self.feed(bytes(FLUSH_SILENCE_BYTES))
        self.running = self.undecoded = False
        return self.kaldi.FinalResult()


class Engines(Protocol):
    """Lends decoders for one utterance at a time: a call holds one only while its caller is talking."""

    def lease(self, grammar: str) -> KaldiHandle:
        """A finished (idle) decoder with this grammar."""
        ...

    def release(self, handle: KaldiHandle) -> None:
        """Take back a decoder the utterance finished with (`FinalResult` taken)."""
        ...


class VoskEngines:
    """This process's vosk decoders, lent per utterance and kept warm between them.

    Why per utterance rather than per call: a free-form vosk decoder is slow until it has decoded some
    twenty seconds of speech (its first utterance costs over a second of CPU, about four times a warm one),
    and lending decoders per utterance means a few hot decoders serve many calls, since callers are silent
    most of the time (the bot is talking). It also means a grammar is never changed on a decoder: vosk
    aborts the whole process on a grammar changed mid-utterance, and lifting a grammar makes a warm
    decoder cold again. Grammar decoders are cheap to make (a fraction of a millisecond) and are kept by
    grammar for the next time that question is asked.
    """

    def __init__(self, model: object, sample_rate: int, free_limit: int = 64, grammar_limit: int = 32) -> None:
        self._model = model
        self._rate = sample_rate
        self._free: list[KaldiHandle] = []  # warm free-form decoders, the hottest last
        self._grammared: OrderedDict[str, list[KaldiHandle]] = OrderedDict()
        self._free_limit = free_limit
        self._grammar_limit = grammar_limit
        self._lock = threading.Lock()
        self.made = 0  # decoders created so far (operators and tests read it)

    def lease(self, grammar: str) -> KaldiHandle:
        with self._lock:
            kept = self._free if grammar == FREE_FORM else self._grammared.get(grammar, [])
            if kept:
                return kept.pop()
        return self._make(grammar)

    def release(self, handle: KaldiHandle) -> None:
        if handle.running:
            handle.final_result()  # never lend a decoder mid-utterance
        with self._lock:
            if handle.grammar == FREE_FORM:
                if len(self._free) < self._free_limit:
                    self._free.append(handle)
                return
            self._grammared.setdefault(handle.grammar, []).append(handle)
            self._grammared.move_to_end(handle.grammar)
            while sum(map(len, self._grammared.values())) > self._grammar_limit:
                oldest = next(iter(self._grammared))
                self._grammared[oldest].pop(0)
                if not self._grammared[oldest]:
                    del self._grammared[oldest]

    @property
    def idle_free_form(self) -> int:
        """Warm free-form decoders waiting for an utterance."""
        return len(self._free)

    def warm(self, count: int, pcm: bytes) -> None:
        """Make `count` free-form decoders and let each decode `pcm` (speech at the model's rate), so the
        first calls do not pay a cold decoder's cost; a host does this once, before forking its workers."""
        handles = [self._make(FREE_FORM) for _ in range(count)]
        step = self._rate * 2 // 5  # 200 ms a call
        for handle in handles:
            for offset in range(0, len(pcm), step):
                handle.feed(pcm[offset : offset + step])
            handle.final_result()
        for handle in handles:
            self.release(handle)

    def _make(self, grammar: str) -> KaldiHandle:
        kaldi = (
            vosk.KaldiRecognizer(self._model, self._rate)
            if grammar == FREE_FORM
            else vosk.KaldiRecognizer(self._model, self._rate, grammar)
        )
        kaldi.SetWords(True)
        kaldi.SetPartialWords(False)  # partial words make partials late and sparse, and nothing reads them
        with self._lock:
            self.made += 1
        return KaldiHandle(cast(_KaldiRecognizer, kaldi), grammar)


class VoskRecognizerFactory:
    """Recognises with vosk; the model (tens to hundreds of MB in memory) loads once per process and path."""

    name = "vosk"
    _models: ClassVar[dict[Path, object]] = {}  # vosk.Model by resolved path
    _models_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, model_path: Path, sample_rate: int = VOSK_SAMPLE_RATE, warm_limit: int = 64) -> None:
        """Load the model now (seconds, blocking), so a bad model stops start-up, not the first call."""
        self.model_path = model_path.expanduser().resolve()
        self.sample_rate = sample_rate
        self._model = self._load(self.model_path)
        self.engines = VoskEngines(self._model, sample_rate, free_limit=warm_limit)

    @classmethod
    def _load(cls, path: Path) -> object:
        with cls._models_lock:
            model = cls._models.get(path)
            if model is None:
                vosk.SetLogLevel(-1)  # Kaldi's LOG lines would go to stderr for every recogniser
                try:
                    model = vosk.Model(str(path))
                except Exception as exc:  # vosk raises a bare Exception("Failed to create a model")
                    raise ModelNotFound(
                        f"vosk could not load the model in {path} ({exc}); run `handoff models fetch` "
                        "for a fresh copy, or set HANDOFF_VOSK_MODEL_PATH to an unpacked model folder."
                    ) from exc
                cls._models[path] = model
                log.info("vosk model loaded from %s", path)
            return model

    def knows(self, word: str) -> bool:
        """Whether the model's vocabulary has this word (a grammar of unknown words recognises nothing)."""
        find = getattr(self._model, "vosk_model_find_word", None)
        return bool(find is None or find(word) >= 0)

    def grammar(self, phrases: Sequence[str]) -> str:
        """A vosk grammar for these phrases: only phrases every word of which the model knows, JSON with the
        words as they are (escaped words are missing from any vocabulary), and "[]" for none (free form)."""
        kept = [p for p in dict.fromkeys(" ".join(p.split()) for p in phrases) if p and all(map(self.knows, p.split()))]
        if not kept:
            return FREE_FORM
        if self.knows("[unk]"):  # speech outside the grammar comes back unknown, not forced onto a phrase
            kept.append("[unk]")
        return json.dumps(kept, ensure_ascii=False)

    def warm(self, count: int, pcm8k: bytes) -> None:
        """Warm `count` free-form decoders on this speech (8 kHz PCM16), for the first calls after start-up."""
        if count > 0 and pcm8k:
            samples = np.frombuffer(pcm8k, dtype="<i2")
            if self.sample_rate != SAMPLE_RATE:
                samples = soxr.resample(samples, SAMPLE_RATE, self.sample_rate).astype("<i2")
            self.engines.warm(count, samples.tobytes())

    def new_recognizer(self, call_sid: str) -> VoskRecognizer:
        return VoskRecognizer(call_sid, self.engines, self.sample_rate, self.grammar)


def plain_grammar(phrases: Sequence[str]) -> str:
    """A vosk grammar of these phrases as given (no vocabulary check): JSON, unescaped; "[]" for none."""
    return json.dumps(list(phrases), ensure_ascii=False) if phrases else FREE_FORM


class VoskRecognizer:
    """One call's recognition with vosk, fed 8 kHz audio upsampled to the model's rate.

    The call borrows a decoder from `engines` when an utterance opens and gives it back when the utterance
    is finished, so a phrase list asked for at any time simply applies from the next utterance on. vosk
    stamps words in seconds of audio fed to the decoder since its creation, so the decoder's count at the
    start of the utterance maps its clock onto call time. vosk may close a segment on its own (its
    endpointer) mid-utterance; those pieces are kept and joined into the one final the VAD asks for.
    """

    def __init__(
        self,
        call_sid: str,
        engines: Engines,
        sample_rate: int = VOSK_SAMPLE_RATE,
        grammar: Callable[[Sequence[str]], str] | None = None,
    ) -> None:
        self.call_sid = call_sid
        self._engines = engines
        self._rate = sample_rate
        self._grammar = grammar or plain_grammar
        self._next_grammar = FREE_FORM  # for the next utterance
        self._handle: KaldiHandle | None = None  # borrowed while an utterance is open
        # A streaming resampler keeps its filter state across 20 ms frames; resampling each frame on
        # its own would put an edge (a click) every 20 ms into what vosk hears. It releases audio in
        # blocks of about 100 ms, which paces partials; finish_utterance flushes the rest.
        self._resampler = (
            soxr.ResampleStream(SAMPLE_RATE, sample_rate, 1, dtype="int16") if sample_rate != SAMPLE_RATE else None
        )
        self._origin_samples = 0  # the decoder's count when this utterance's audio began
        self._origin_ms: int | None = None  # call time at that point, once known
        self._pieces: list[tuple[str, list[_VoskWord]]] = []  # segments vosk closed by itself
        self._partial_text = ""

    def start_utterance(self, t_ms: int) -> None:
        """Open an utterance whose first sample (given to `accept` next) is at call time `t_ms`."""
        self._begin(t_ms)

    def accept(self, pcm8k: bytes) -> Transcript | None:
        """Decode more audio; returns a partial when the words so far changed (every few 100 ms)."""
        handle = self._handle if self._handle is not None else self._begin(None)
        if self._resampler is not None:
            upsampled = self._resampler.resample_chunk(np.frombuffer(pcm8k, dtype="<i2"))
            if not upsampled.size:
                return None  # the resampler is still filling its filter
            pcm8k = upsampled.astype("<i2", copy=False).tobytes()
        self._feed(handle, pcm8k)
        partial_text, partial_words = _parse_vosk(handle.kaldi.PartialResult(), "partial_result", "partial")
        pieces = [*self._pieces, (partial_text, partial_words)]
        text = _join(pieces)
        if not text or text == self._partial_text:
            return None
        self._partial_text = text
        words = self._words(pieces)
        origin = self._origin_ms or 0
        end_ms = words[-1].end_ms if words else origin + self._elapsed_ms(handle)
        return Transcript(text, mean_confidence(words), origin, end_ms, words, False, "vosk")

    def settle(self) -> None:
        """Close the segment heard so far: its words are decoded to the end now (while the end-of-speech window
        runs) and kept; if the caller goes on, a new segment follows. vosk's `Result` would leave the last half
        second undecoded, so the segment is finished with `FinalResult` (vosk's clock runs on regardless)."""
        handle = self._handle
        if handle is None or not handle.running:
            return
        self._flush_resampler(handle)
        self._pieces.append(_parse_vosk(handle.final_result(), "result", "text"))

    def finish_utterance(self, start_ms: int, end_ms: int) -> Transcript | None:
        """Flush and finalise; the transcript spans the VAD's [start_ms, end_ms], its words their own."""
        handle = self._handle
        if handle is None:
            return None  # no audio since the last utterance: nothing was heard
        if self._origin_ms is None:
            self._origin_ms = start_ms
        self._flush_resampler(handle)
        pieces = [*self._pieces, _parse_vosk(handle.final_result(), "result", "text")]
        words = self._words(pieces)
        text = _join(pieces)
        self._give_back()
        if not text:
            return None
        return Transcript(text, mean_confidence(words), start_ms, end_ms, words, True, "vosk")

    def close(self) -> None:
        """The call is over: an unfinished utterance is dropped and its decoder given back."""
        self._give_back()

    def set_phrases(self, phrases: tuple[str, ...]) -> None:
        """Limit recognition to these phrases (digits for an order number, say); empty lifts the limit.

        From the next utterance on: an utterance already open keeps the decoder it started with.
        """
        self._next_grammar = self._grammar(phrases)

    def _begin(self, t_ms: int | None) -> KaldiHandle:
        self._give_back()  # an utterance opened again without finishing: drop what it heard
        if self._resampler is not None:
            self._resampler.clear()
        handle = self._engines.lease(self._next_grammar)
        self._handle = handle
        self._origin_samples = handle.fed_samples
        self._origin_ms = t_ms
        return handle

    def _flush_resampler(self, handle: KaldiHandle) -> None:
        """Feed what the resampler still holds (up to ~100 ms) and start it afresh."""
        if self._resampler is not None:
            tail = self._resampler.resample_chunk(np.zeros(0, dtype="<i2"), last=True)
            self._resampler.clear()
            if tail.size:
                self._feed(handle, tail.astype("<i2", copy=False).tobytes())

    def _give_back(self) -> None:
        handle, self._handle = self._handle, None
        self._pieces = []
        self._partial_text = ""
        if handle is not None:
            if handle.undecoded:  # finished, never Reset: vosk's Reset keeps the audio for the next utterance
                handle.final_result()
            self._engines.release(handle)

    def _feed(self, handle: KaldiHandle, pcm: bytes) -> None:
        """Give vosk audio, keeping the segment its endpointer closes, if it does."""
        if handle.feed(pcm):
            self._pieces.append(_parse_vosk(handle.result(), "result", "text"))

    def _words(self, pieces: Sequence[tuple[str, list[_VoskWord]]]) -> tuple[Word, ...]:
        """Map vosk's seconds-since-creation onto call-time milliseconds."""
        shift_ms = (self._origin_ms or 0) - self._origin_samples * 1000 / self._rate
        return tuple(
            Word(w.text, round(w.start_s * 1000 + shift_ms), round(w.end_s * 1000 + shift_ms), w.conf)
            for _, raw in pieces
            for w in raw
        )

    def _elapsed_ms(self, handle: KaldiHandle) -> int:
        return (handle.fed_samples - self._origin_samples) * 1000 // self._rate


@dataclass(frozen=True)
class _VoskWord:
    text: str
    start_s: float
    end_s: float
    conf: float


def _join(pieces: Sequence[tuple[str, list[_VoskWord]]]) -> str:
    return " ".join(text for text, _ in pieces if text)


def _parse_vosk(raw: str, words_key: str, text_key: str) -> tuple[str, list[_VoskWord]]:
    """Read vosk's JSON ({"text": ..., "result": [{"word", "start", "end", "conf"}, ...]})."""
    data = json.loads(raw)
    words = [
        _VoskWord(str(w["word"]), float(w["start"]), float(w["end"]), float(w.get("conf", 1.0)))
        for w in data.get(words_key, [])
    ]
    return str(data.get(text_key, "")).strip(), words


def mean_confidence(words: Sequence[Word]) -> float:
    """An utterance's confidence: the mean of its words' (0 with no words)."""
    return sum(w.confidence for w in words) / len(words) if words else 0.0

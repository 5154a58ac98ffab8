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
    def Reset(self) -> None: ...
    def SetGrammar(self, grammar: str) -> None: ...


class VoskRecognizerFactory:
    """Recognises with vosk; the model (tens to hundreds of MB in memory) loads once per process and path.

    Recognisers are kept warm: a call's recogniser goes back to a free list when the call ends, finished
    cleanly (`FinalResult`) and without its grammar, and the next call reuses it. A new free-form vosk
    recogniser pays tens of ms to make and over a second of CPU on its first utterance; a warm one pays
    neither.
    """

    name = "vosk"
    _models: ClassVar[dict[Path, object]] = {}  # vosk.Model by resolved path
    _models_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, model_path: Path, sample_rate: int = VOSK_SAMPLE_RATE, warm_limit: int = 64) -> None:
        """Load the model now (seconds, blocking), so a bad model stops start-up, not the first call."""
        self.model_path = model_path.expanduser().resolve()
        self.sample_rate = sample_rate
        self._model = self._load(self.model_path)
        self._warm: list[KaldiHandle] = []
        self._warm_lock = threading.Lock()
        self._warm_limit = warm_limit

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
            return "[]"
        if self.knows("[unk]"):  # speech outside the grammar comes back unknown, not forced onto a phrase
            kept.append("[unk]")
        return json.dumps(kept, ensure_ascii=False)

    def new_recognizer(self, call_sid: str) -> VoskRecognizer:
        with self._warm_lock:
            handle = self._warm.pop() if self._warm else None
        if handle is None:
            kaldi = vosk.KaldiRecognizer(self._model, self.sample_rate)
            kaldi.SetWords(True)
            kaldi.SetPartialWords(False)  # partial words make partials late and sparse, and nothing reads them
            handle = KaldiHandle(cast(_KaldiRecognizer, kaldi))
        return VoskRecognizer(call_sid, handle, self.sample_rate, self.grammar, self._give_back)

    def _give_back(self, handle: KaldiHandle) -> None:
        with self._warm_lock:
            if len(self._warm) < self._warm_limit:
                self._warm.append(handle)


class KaldiHandle:
    """A vosk recogniser and what must travel with it between calls: how much audio it has been fed (vosk's
    word times count from its creation), whether it is mid-utterance, and its grammar."""

    def __init__(self, kaldi: _KaldiRecognizer) -> None:
        self.kaldi = kaldi
        self.fed_samples = 0
        self.running = False  # fed audio since the last Result, FinalResult or Reset: no grammar change now
        self.grammar = "[]"

    def feed(self, pcm: bytes) -> bool:
        self.fed_samples += len(pcm) // 2
        self.running = True
        return self.kaldi.AcceptWaveform(pcm)

    def result(self) -> str:
        self.running = False
        return self.kaldi.Result()

    def final_result(self) -> str:
        self.running = False
        return self.kaldi.FinalResult()

    def set_grammar(self, grammar: str) -> bool:
        """Change the grammar, only when the recogniser is idle; False (and nothing done) when it is not."""
        if self.running:
            return False
        if grammar != self.grammar:
            self.kaldi.SetGrammar(grammar)  # "[]" exactly lifts it; anything else empty crashes vosk
            self.grammar = grammar
        return True


class VoskRecognizer:
    """One call's vosk decoder, fed 8 kHz audio upsampled to the model's rate.

    vosk stamps words in seconds of audio fed since the recogniser was created, so we count what we
    feed and map its clock onto call time at each `start_utterance`. vosk may close a segment on its
    own (its endpointer) mid-utterance; those pieces are kept and joined into the one final the VAD
    asks for. A phrase list asked for mid-utterance waits for the utterance to end.
    """

    def __init__(
        self,
        call_sid: str,
        handle: KaldiHandle | _KaldiRecognizer,
        sample_rate: int = VOSK_SAMPLE_RATE,
        grammar: Callable[[Sequence[str]], str] | None = None,
        give_back: Callable[[KaldiHandle], None] | None = None,
    ) -> None:
        self.call_sid = call_sid
        self._handle = handle if isinstance(handle, KaldiHandle) else KaldiHandle(handle)
        self._kaldi = self._handle.kaldi
        self._rate = sample_rate
        self._grammar = grammar or (lambda phrases: json.dumps(list(phrases), ensure_ascii=False) if phrases else "[]")
        self._give_back = give_back
        # A streaming resampler keeps its filter state across 20 ms frames; resampling each frame on
        # its own would put an edge (a click) every 20 ms into what vosk hears. It releases audio in
        # blocks of about 100 ms, which paces partials; finish_utterance flushes the rest.
        self._resampler = (
            soxr.ResampleStream(SAMPLE_RATE, sample_rate, 1, dtype="int16") if sample_rate != SAMPLE_RATE else None
        )
        self._origin_samples = self._handle.fed_samples  # vosk's clock when this utterance's audio began
        self._origin_ms: int | None = None  # call time at that point, once known
        self._pieces: list[tuple[str, list[_VoskWord]]] = []  # segments vosk closed by itself
        self._partial_text = ""
        self._in_utterance = False
        self._pending_grammar: str | None = None

    def start_utterance(self, t_ms: int) -> None:
        """Open an utterance whose first sample (given to `accept` next) is at call time `t_ms`."""
        self._begin(t_ms)

    def accept(self, pcm8k: bytes) -> Transcript | None:
        """Decode more audio; returns a partial when the words so far changed (every few 100 ms)."""
        if not self._in_utterance:
            self._begin(None)  # no start_utterance: the final's start_ms will anchor the clock
        if self._resampler is not None:
            upsampled = self._resampler.resample_chunk(np.frombuffer(pcm8k, dtype="<i2"))
            if not upsampled.size:
                return None  # the resampler is still filling its filter
            pcm8k = upsampled.astype("<i2", copy=False).tobytes()
        self._feed(pcm8k)
        partial_text, partial_words = _parse_vosk(self._kaldi.PartialResult(), "partial_result", "partial")
        pieces = [*self._pieces, (partial_text, partial_words)]
        text = _join(pieces)
        if not text or text == self._partial_text:
            return None
        self._partial_text = text
        words = self._words(pieces)
        origin = self._origin_ms or 0
        end_ms = words[-1].end_ms if words else origin + self._elapsed_ms()
        return Transcript(text, mean_confidence(words), origin, end_ms, words, False, "vosk")

    def finish_utterance(self, start_ms: int, end_ms: int) -> Transcript | None:
        """Flush and finalise; the transcript spans the VAD's [start_ms, end_ms], its words their own."""
        if self._origin_ms is None:
            self._origin_ms = start_ms
        if self._resampler is not None:
            tail = self._resampler.resample_chunk(np.zeros(0, dtype="<i2"), last=True)
            self._resampler.clear()
            if tail.size:
                self._feed(tail.astype("<i2", copy=False).tobytes())
        pieces = [*self._pieces, _parse_vosk(self._handle.final_result(), "result", "text")]
        words = self._words(pieces)
        text = _join(pieces)
        self._in_utterance = False
        self._pieces = []
        self._partial_text = ""
        if self._pending_grammar is not None:
            self._handle.set_grammar(self._pending_grammar)
            self._pending_grammar = None
        if not text:
            return None
        return Transcript(text, mean_confidence(words), start_ms, end_ms, words, True, "vosk")

    def close(self) -> None:
        """The call is over: the recogniser is finished cleanly and, without its grammar, kept for another call."""
        self._pieces = []
        self._in_utterance = False
        if self._handle.running:
            self._handle.final_result()  # drops what an unfinished utterance heard (a Reset would keep it)
        self._handle.set_grammar("[]")
        if self._give_back is not None:
            self._give_back(self._handle)
            self._give_back = None

    def set_phrases(self, phrases: tuple[str, ...]) -> None:
        """Limit recognition to these phrases (digits for an order number, say); empty lifts the limit.

        Never mid-utterance: vosk aborts the whole process if a grammar changes while it decodes, so a list
        that arrives then waits for the utterance to end.
        """
        grammar = self._grammar(phrases)
        if self._in_utterance or not self._handle.set_grammar(grammar):
            self._pending_grammar = grammar

    def _begin(self, t_ms: int | None) -> None:
        if self._in_utterance:
            self._handle.final_result()  # an utterance opened again without finishing: drop what it heard
        if self._resampler is not None:
            self._resampler.clear()
        self._origin_samples = self._handle.fed_samples
        self._origin_ms = t_ms
        self._pieces = []
        self._partial_text = ""
        self._in_utterance = True

    def _feed(self, pcm: bytes) -> None:
        """Give vosk audio, keeping the segment its endpointer closes, if it does."""
        if self._handle.feed(pcm):
            self._pieces.append(_parse_vosk(self._handle.result(), "result", "text"))

    def _words(self, pieces: Sequence[tuple[str, list[_VoskWord]]]) -> tuple[Word, ...]:
        """Map vosk's seconds-since-creation onto call-time milliseconds."""
        shift_ms = (self._origin_ms or 0) - self._origin_samples * 1000 / self._rate
        return tuple(
            Word(w.text, round(w.start_s * 1000 + shift_ms), round(w.end_s * 1000 + shift_ms), w.conf)
            for _, raw in pieces
            for w in raw
        )

    def _elapsed_ms(self) -> int:
        return (self._handle.fed_samples - self._origin_samples) * 1000 // self._rate


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

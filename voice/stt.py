"""Speech recognition for one call: vosk on the caller's audio, or "oracle ASR" from a reference script.

A recogniser is fed the caller's 8 kHz PCM between `start_utterance` and `finish_utterance`, which the
session calls when its VAD opens and closes an utterance. Every method here blocks (vosk decodes in C on
the calling thread), so the session runs them off the event loop, in an executor of its own.

Times in a `Transcript` are call-time milliseconds, the clock the VAD and the dialog use.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol, cast

import numpy as np
import soxr
import vosk

from voice.codec import SAMPLE_RATE
from voice.errors import ModelNotFound
from voice.models import locate_model

log = logging.getLogger(__name__)

VOSK_SAMPLE_RATE = 16000  # the small English models are trained on 16 kHz audio
_ORACLE_PARTIAL_EVERY_FRAMES = 10  # one partial per 200 ms of audio, like a streaming engine's cadence
_ORACLE_MS_PER_PARTIAL_WORD = 200
_PCM_BYTES_PER_MS = SAMPLE_RATE * 2 // 1000


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

    def close(self) -> None:
        """Release the engine's resources; the call is over."""


class RecognizerFactory(Protocol):
    """Makes one recogniser per call; `name` is the engine ("vosk" or "oracle")."""

    name: str

    def new_recognizer(self, call_sid: str) -> StreamingRecognizer: ...


def build_recognizer_factory(kind: str, model_path: Path | None, cache_dir: Path, model_name: str) -> RecognizerFactory:
    """The factory the settings ask for: "vosk" (raises ModelNotFound without a model) or "oracle"."""
    if kind == "vosk":
        return VoskRecognizerFactory(locate_model(model_path, cache_dir, model_name))
    if kind == "oracle":
        return OracleRecognizerFactory()
    raise ValueError(f"unknown recogniser kind {kind!r}; expected 'vosk' or 'oracle'")


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
    """Recognises with vosk; the model (tens to hundreds of MB in memory) loads once per process and path."""

    name = "vosk"
    _models: ClassVar[dict[Path, object]] = {}  # vosk.Model by resolved path
    _models_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, model_path: Path) -> None:
        """Load the model now (seconds, blocking), so a bad model stops start-up, not the first call."""
        self.model_path = model_path.expanduser().resolve()
        self._model = self._load(self.model_path)

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

    def new_recognizer(self, call_sid: str) -> VoskRecognizer:
        kaldi = vosk.KaldiRecognizer(self._model, VOSK_SAMPLE_RATE)
        kaldi.SetWords(True)
        kaldi.SetPartialWords(True)
        return VoskRecognizer(call_sid, cast(_KaldiRecognizer, kaldi))


class VoskRecognizer:
    """One call's vosk decoder, fed 8 kHz audio upsampled to the model's 16 kHz.

    vosk stamps words in seconds of audio fed since the recogniser was created, so we count what we
    feed and map its clock onto call time at each `start_utterance`. vosk may close a segment on its
    own (its endpointer) mid-utterance; those pieces are kept and joined into the one final the VAD
    asks for.
    """

    def __init__(self, call_sid: str, kaldi: _KaldiRecognizer) -> None:
        self.call_sid = call_sid
        self._kaldi = kaldi
        # A streaming resampler keeps its filter state across 20 ms frames; resampling each frame on
        # its own would put an edge (a click) every 20 ms into what vosk hears. It releases audio in
        # blocks of about 100 ms, which paces partials; finish_utterance flushes the rest.
        self._resampler = soxr.ResampleStream(SAMPLE_RATE, VOSK_SAMPLE_RATE, 1, dtype="int16")
        self._fed_samples = 0  # 16 kHz samples given to vosk, ever: vosk's clock
        self._origin_samples = 0  # vosk's clock when this utterance's audio began
        self._origin_ms: int | None = None  # call time at that point, once known
        self._pieces: list[tuple[str, list[_VoskWord]]] = []  # segments vosk closed by itself
        self._partial_text = ""
        self._in_utterance = False

    def start_utterance(self, t_ms: int) -> None:
        """Open an utterance whose first sample (given to `accept` next) is at call time `t_ms`."""
        self._begin(t_ms)

    def accept(self, pcm8k: bytes) -> Transcript | None:
        """Decode more audio; returns a partial when the words so far changed (every few 100 ms)."""
        if not self._in_utterance:
            self._begin(None)  # no start_utterance: the final's start_ms will anchor the clock
        upsampled = self._resampler.resample_chunk(np.frombuffer(pcm8k, dtype="<i2"))
        if not upsampled.size:
            return None  # the resampler is still filling its filter
        self._feed(upsampled.astype("<i2", copy=False).tobytes())
        partial_text, partial_words = _parse_vosk(self._kaldi.PartialResult(), "partial_result", "partial")
        pieces = [*self._pieces, (partial_text, partial_words)]
        text = _join(pieces)
        if not text or text == self._partial_text:
            return None
        self._partial_text = text
        words = self._words(pieces)
        origin = self._origin_ms or 0
        end_ms = words[-1].end_ms if words else origin + self._elapsed_ms()
        return Transcript(text, _mean_confidence(words), origin, end_ms, words, False, "vosk")

    def finish_utterance(self, start_ms: int, end_ms: int) -> Transcript | None:
        """Flush and finalise; the transcript spans the VAD's [start_ms, end_ms], its words their own."""
        if self._origin_ms is None:
            self._origin_ms = start_ms
        tail = self._resampler.resample_chunk(np.zeros(0, dtype="<i2"), last=True)
        self._resampler.clear()
        if tail.size:
            self._feed(tail.astype("<i2", copy=False).tobytes())
        pieces = [*self._pieces, _parse_vosk(self._kaldi.FinalResult(), "result", "text")]
        words = self._words(pieces)
        text = _join(pieces)
        self._in_utterance = False
        self._pieces = []
        self._partial_text = ""
        if not text:
            return None
        return Transcript(text, _mean_confidence(words), start_ms, end_ms, words, True, "vosk")

    def close(self) -> None:
        self._pieces = []
        self._in_utterance = False

    def set_phrases(self, phrases: tuple[str, ...]) -> None:
        """Limit recognition to these words (digits for an order number, say); empty lifts the limit.

        "[unk]" stays in the grammar so speech outside it is reported as unknown rather than forced onto
        the nearest phrase. Models without a dynamic graph ignore the grammar (vosk logs a warning).
        """
        grammar = [*phrases, "[unk]"] if phrases else []
        self._kaldi.SetGrammar(json.dumps(grammar) if grammar else "[]")

    def _begin(self, t_ms: int | None) -> None:
        if self._in_utterance:
            self._kaldi.Reset()  # an utterance opened again without finishing: drop what it heard
        self._resampler.clear()
        self._origin_samples = self._fed_samples
        self._origin_ms = t_ms
        self._pieces = []
        self._partial_text = ""
        self._in_utterance = True

    def _feed(self, pcm16k: bytes) -> None:
        """Give vosk audio, keeping the segment its endpointer closes, if it does."""
        self._fed_samples += len(pcm16k) // 2
        if self._kaldi.AcceptWaveform(pcm16k):
            self._pieces.append(_parse_vosk(self._kaldi.Result(), "result", "text"))

    def _words(self, pieces: Sequence[tuple[str, list[_VoskWord]]]) -> tuple[Word, ...]:
        """Map vosk's seconds-since-creation onto call-time milliseconds."""
        shift_ms = (self._origin_ms or 0) - self._origin_samples * 1000 / VOSK_SAMPLE_RATE
        return tuple(
            Word(w.text, round(w.start_s * 1000 + shift_ms), round(w.end_s * 1000 + shift_ms), w.conf)
            for _, raw in pieces
            for w in raw
        )

    def _elapsed_ms(self) -> int:
        return (self._fed_samples - self._origin_samples) * 1000 // VOSK_SAMPLE_RATE


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


def _mean_confidence(words: Sequence[Word]) -> float:
    return sum(w.confidence for w in words) / len(words) if words else 0.0


# --- oracle ASR -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class OracleUtterance:
    """One caller turn in an oracle ASR script: what was said and the confidence to report for it.

    An empty `text` scripts a turn where the VAD fires but nothing is recognised (a cough, line noise).
    """

    text: str
    confidence: float = 1.0


# Words a noisy recogniser plausibly puts in place of another: short, common, often confused.
_SUBSTITUTES = (
    "a", "the", "and", "in", "on", "to", "uh", "um", "yeah", "no", "know", "now", "can", "an", "of",
    "it", "is", "that", "what", "for",
)  # fmt: skip
_SUBSTITUTED_CONFIDENCE = 0.4  # a substituted word carries a low confidence, as real misrecognitions do


class OracleRecognizerFactory:
    """Oracle ASR: each call's reference transcript stands in for recognition, timed by the real VAD.

    The spoken-dialog research term: the recogniser is replaced by the reference ("oracle") text, so a
    scenario tests the dialog and the turn-taking without a model, and runs the same everywhere. With
    `wer` > 0 words are substituted or dropped at that rate, deterministically for a `seed` and call SID.
    """

    name = "oracle"

    def __init__(self, wer: float = 0.0, seed: int = 0) -> None:
        if not 0.0 <= wer <= 1.0:
            raise ValueError(f"wer must be between 0 and 1, got {wer}")
        self.wer = wer
        self.seed = seed
        self._scripts: dict[str, tuple[tuple[OracleUtterance, ...], float, int]] = {}

    def register(
        self,
        call_sid: str,
        utterances: list[OracleUtterance],
        *,
        wer: float | None = None,
        seed: int | None = None,
        noise_key: str | None = None,
    ) -> None:
        """Script what the caller on `call_sid` says, turn by turn, before the call's recogniser is made.

        `wer` and `seed` override the factory's for this call; `noise_key` (a scenario name, say) seeds
        the noise instead of the call SID, so a replay with a fresh SID repeats the same substitutions.
        """
        wer = self.wer if wer is None else wer
        if not 0.0 <= wer <= 1.0:
            raise ValueError(f"wer must be between 0 and 1, got {wer}")
        key = noise_key if noise_key is not None else call_sid
        self._scripts[call_sid] = (
            tuple(utterances),
            wer,
            (self.seed if seed is None else seed) + zlib.crc32(key.encode()),
        )

    def new_recognizer(self, call_sid: str) -> OracleRecognizer:
        entry = self._scripts.get(call_sid)
        if entry is None:
            log.warning("oracle ASR: no script registered for call %s; it will hear nothing", call_sid)
            entry = ((), self.wer, self.seed + zlib.crc32(call_sid.encode()))
        script, wer, seed = entry
        # crc32, not hash(): str hashes are salted per process, and a run must repeat exactly.
        return OracleRecognizer(call_sid, script, wer, random.Random(seed))


class OracleRecognizer:
    """Oracle ASR for one call: ignores the audio's content and says the next scripted utterance.

    The audio still matters: the VAD decides when an utterance starts and ends, `accept` counts frames
    to reveal the text as growing partials, and the final's words are spread evenly over the VAD span.
    """

    def __init__(self, call_sid: str, script: Sequence[OracleUtterance], wer: float, rng: random.Random) -> None:
        self.call_sid = call_sid
        self._script = script
        self._wer = wer
        self._rng = rng
        self._next = 0
        self._current: tuple[tuple[str, float], ...] | None = None  # (word, confidence) of the turn
        self._start_ms = 0
        self._frames = 0
        self._revealed = 0

    def start_utterance(self, t_ms: int) -> None:
        self._start_ms = t_ms
        self._frames = 0
        self._revealed = 0

    def accept(self, pcm8k: bytes) -> Transcript | None:
        self._frames += len(pcm8k) // (_PCM_BYTES_PER_MS * 20)
        words = self._turn()
        if words is None:
            return None
        shown = min(len(words), self._frames // _ORACLE_PARTIAL_EVERY_FRAMES)
        if shown <= self._revealed:
            return None
        self._revealed = shown
        step = _ORACLE_MS_PER_PARTIAL_WORD
        timed = tuple(
            Word(text, self._start_ms + i * step, self._start_ms + (i + 1) * step, conf)
            for i, (text, conf) in enumerate(words[:shown])
        )
        return self._transcript(timed, self._start_ms, self._start_ms + self._frames * 20, final=False)

    def finish_utterance(self, start_ms: int, end_ms: int) -> Transcript | None:
        words = self._turn()
        self._current = None
        self._frames = 0
        self._revealed = 0
        if words is None:
            log.info(
                "oracle ASR: the VAD found speech beyond the script on call %s (%d-%d ms); reporting nothing",
                self.call_sid,
                start_ms,
                end_ms,
            )
            return None
        self._next += 1
        if not words:
            return None
        span = max(end_ms - start_ms, 0) / len(words)
        timed = tuple(
            Word(text, start_ms + round(i * span), start_ms + round((i + 1) * span), conf)
            for i, (text, conf) in enumerate(words)
        )
        return self._transcript(timed, start_ms, end_ms, final=True)

    def close(self) -> None:
        self._current = None

    def _turn(self) -> tuple[tuple[str, float], ...] | None:
        """The words of the current scripted turn with noise applied once, or None past the script."""
        if self._current is None:
            if self._next >= len(self._script):
                return None
            utterance = self._script[self._next]
            self._current = self._noisy(utterance.text.split(), utterance.confidence)
        return self._current

    def _noisy(self, words: list[str], confidence: float) -> tuple[tuple[str, float], ...]:
        """Substitute or drop each word with probability `wer` (half each); wer=0 is the identity."""
        out: list[tuple[str, float]] = []
        for word in words:
            if self._wer == 0.0 or self._rng.random() >= self._wer:
                out.append((word, confidence))
            elif self._rng.random() < 0.5:
                choices = [s for s in _SUBSTITUTES if s != word.lower()]
                out.append((self._rng.choice(choices), min(confidence, _SUBSTITUTED_CONFIDENCE)))
            # else: dropped
        return tuple(out)

    def _transcript(self, words: tuple[Word, ...], start_ms: int, end_ms: int, final: bool) -> Transcript:
        text = " ".join(w.text for w in words)
        return Transcript(text, _mean_confidence(words), start_ms, end_ms, words, final, "oracle")

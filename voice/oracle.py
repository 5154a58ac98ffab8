"""Oracle ASR: each call's reference transcript stands in for recognition, timed by the real VAD.

The spoken-dialog research term: the recogniser is replaced by the reference ("oracle") text, so a scenario
tests the dialog and the turn-taking without a model, and runs the same everywhere. Everything that reports
its results says so (`engine == "oracle"`). For tests and replays only.
"""

from __future__ import annotations

import logging
import random
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from voice.codec import SAMPLE_RATE
from voice.stt import Transcript, Word, mean_confidence

log = logging.getLogger(__name__)

_ORACLE_PARTIAL_EVERY_FRAMES = 10  # one partial per 200 ms of audio, like a streaming engine's cadence
_ORACLE_MS_PER_PARTIAL_WORD = 200
_PCM_BYTES_PER_MS = SAMPLE_RATE * 2 // 1000


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


def misrecognise(
    words: Sequence[str], confidence: float, wer: float, rng: random.Random
) -> tuple[tuple[str, float], ...]:
    """Oracle ASR's noise: each word substituted (by a short common word, at low confidence) or dropped with
    probability `wer`, half each; wer=0 is the identity. Deterministic for a seeded `rng`."""
    out: list[tuple[str, float]] = []
    for word in words:
        if wer == 0.0 or rng.random() >= wer:
            out.append((word, confidence))
        elif rng.random() < 0.5:
            choices = [s for s in _SUBSTITUTES if s != word.lower()]
            out.append((rng.choice(choices), min(confidence, _SUBSTITUTED_CONFIDENCE)))
        # else: dropped
    return tuple(out)


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

    def settle(self) -> None:
        """Nothing to decode ahead: the script already holds the words."""

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

    def set_phrases(self, phrases: tuple[str, ...]) -> None:
        """The script is the answer whatever the phrases; oracle ASR keeps no grammar."""

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
        return misrecognise(words, confidence, self._wer, self._rng)

    def _transcript(self, words: tuple[Word, ...], start_ms: int, end_ms: int, final: bool) -> Transcript:
        text = " ".join(w.text for w in words)
        return Transcript(text, mean_confidence(words), start_ms, end_ms, words, final, "oracle")

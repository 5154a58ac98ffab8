"""Endpointing and barge-in on 20 ms frames: when the caller starts and stops talking, and interrupts.

WebRTC's VAD gives one voiced/unvoiced decision per frame; the detectors here turn runs of those
decisions into events. Durations are whole frames: each `*_ms` setting is rounded up to a multiple of
`FRAME_MS`, and all times are milliseconds on the caller's media clock (frame start times).
"""

from __future__ import annotations

from dataclasses import dataclass

import _webrtcvad  # webrtcvad's C extension: its `Vad.is_speech` wrapper is a Python call per frame

from voice.codec import FRAME_MS

_WEBRTC_RATES = (8000, 16000, 32000, 48000)
_MAX_WINDOW_MS = 60_000  # a setting longer than a minute is a typo (seconds for milliseconds)
_is_speech = _webrtcvad.process  # (handle, sample rate, PCM16 frame, samples) -> voiced


def _new_vad(mode: int) -> object:
    """A fresh webrtcvad instance in `mode`, as `webrtcvad.Vad(mode)` makes it, without the Python wrapper."""
    handle = _webrtcvad.create()
    _webrtcvad.init(handle)
    _webrtcvad.set_mode(handle, mode)
    return handle


def _frames(ms: int) -> int:
    """Whole 20 ms frames needed to cover `ms`."""
    return -(-ms // FRAME_MS)


@dataclass(frozen=True, slots=True)
class VadConfig:
    """How eager the caller-side endpointing is; validated here so a bad bot pack fails at load time."""

    aggressiveness: int = 2  # webrtcvad mode 0 (least) .. 3 (most eager to call a frame unvoiced)
    end_of_speech_ms: int = 600  # trailing silence that closes an utterance
    min_speech_ms: int = 200  # shorter voiced bursts are noise, not an utterance
    start_speech_ms: int = 60  # voiced run needed to open an utterance
    barge_in_ms: int = 200  # voiced run while the bot speaks that counts as barge-in

    def __post_init__(self) -> None:
        for name in ("aggressiveness", "end_of_speech_ms", "min_speech_ms", "start_speech_ms", "barge_in_ms"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"VadConfig.{name} must be an int, got {value!r}")
        if not 0 <= self.aggressiveness <= 3:
            raise ValueError(f"VadConfig.aggressiveness must be 0..3 (webrtcvad modes), got {self.aggressiveness}")
        windows = {
            "end_of_speech_ms": (self.end_of_speech_ms, FRAME_MS),
            "start_speech_ms": (self.start_speech_ms, FRAME_MS),
            "barge_in_ms": (self.barge_in_ms, FRAME_MS),
            "min_speech_ms": (self.min_speech_ms, 0),
        }
        for name, (value, low) in windows.items():
            if not low <= value <= _MAX_WINDOW_MS:
                raise ValueError(f"VadConfig.{name} must be {low}..{_MAX_WINDOW_MS} ms, got {value}")


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """The caller started an utterance; `t_ms` is the start of its first voiced frame."""

    t_ms: int


@dataclass(frozen=True, slots=True)
class SpeechEnded:
    """The caller finished an utterance.

    `end_ms` is when the end-of-speech window closed (end of the frame that completed it);
    `last_voiced_ms` is the end of the last voiced frame, so the utterance's audio is start..last_voiced.
    """

    start_ms: int
    end_ms: int
    last_voiced_ms: int


class EndpointDetector:
    """Turns per-frame VAD decisions into one SpeechStarted / SpeechEnded pair per utterance.

    An utterance opens after `start_speech_ms` of consecutive voiced frames and closes after
    `end_of_speech_ms` of consecutive unvoiced ones. If its voiced span (start to the end of the last
    voiced frame) is shorter than `min_speech_ms`, it is dropped silently: `feed` returns None instead
    of SpeechEnded and `in_speech` turns False. A cough or click is then never transcribed, but a
    caller that began work on SpeechStarted must notice `in_speech` going False without a SpeechEnded
    (or simply the next SpeechStarted) and discard that work.

    `last_voiced` is the VAD decision for the last frame fed, so the session can drive a
    `BargeInDetector` without running webrtcvad twice on the same frame.
    """

    __slots__ = (
        "_end_frames",
        "_frame_bytes",
        "_frame_samples",
        "_last_voiced_end",
        "_min_speech_ms",
        "_mode",
        "_run",
        "_run_start",
        "_sample_rate",
        "_start_frames",
        "_unvoiced",
        "_utterance_start",
        "_vad",
        "in_speech",
        "last_voiced",
    )

    in_speech: bool  # True between SpeechStarted and the end of that utterance
    _run: int
    _run_start: int
    _utterance_start: int
    _last_voiced_end: int
    _unvoiced: int
    last_voiced: bool

    def __init__(self, config: VadConfig, sample_rate: int = 8000) -> None:
        if sample_rate not in _WEBRTC_RATES:
            raise ValueError(f"webrtcvad supports sample rates {_WEBRTC_RATES}, got {sample_rate}")
        self._mode = config.aggressiveness
        self._sample_rate = sample_rate
        self._frame_samples = sample_rate * FRAME_MS // 1000
        self._frame_bytes = self._frame_samples * 2
        self._start_frames = _frames(config.start_speech_ms)
        self._end_frames = _frames(config.end_of_speech_ms)
        self._min_speech_ms = config.min_speech_ms
        self._vad = _new_vad(self._mode)
        self.last_voiced = False
        self._clear()

    def closing_within(self, frames: int) -> bool:
        """The end-of-speech window closes within `frames` more unvoiced frames: the utterance may be about to end."""
        return self.in_speech and self._unvoiced >= self._end_frames - frames

    def reset(self) -> None:
        """Forget any open utterance and the VAD's adapted noise state, as if newly created."""
        self._vad = _new_vad(self._mode)
        self.last_voiced = False
        self._clear()

    def feed(self, pcm_frame: bytes, t_ms: int) -> SpeechStarted | SpeechEnded | None:
        """Classify one 20 ms PCM16 frame starting at `t_ms`; return the event it completes, if any."""
        if len(pcm_frame) != self._frame_bytes:
            raise ValueError(f"VAD frames must be {self._frame_bytes} bytes (20 ms), got {len(pcm_frame)}")
        voiced: bool = _is_speech(self._vad, self._sample_rate, pcm_frame, self._frame_samples)
        self.last_voiced = voiced
        if self.in_speech:
            if voiced:
                self._last_voiced_end = t_ms + FRAME_MS
                self._unvoiced = 0
                return None
            self._unvoiced += 1
            if self._unvoiced < self._end_frames:
                return None
            start, last_voiced = self._utterance_start, self._last_voiced_end
            self._clear()
            if last_voiced - start < self._min_speech_ms:
                return None
            return SpeechEnded(start, t_ms + FRAME_MS, last_voiced)
        if not voiced:
            self._run = 0
            return None
        if self._run == 0:
            self._run_start = t_ms
        self._run += 1
        if self._run < self._start_frames:
            return None
        self.in_speech = True
        self._utterance_start = self._run_start
        self._last_voiced_end = t_ms + FRAME_MS
        self._unvoiced = 0
        return SpeechStarted(self._run_start)

    def _clear(self) -> None:
        self.in_speech = False
        self._run = 0
        self._run_start = 0
        self._utterance_start = 0
        self._last_voiced_end = 0
        self._unvoiced = 0


class BargeInDetector:
    """Fires once when the caller talks over the bot for `barge_in_ms`; `reset()` re-arms it."""

    __slots__ = ("_armed", "_needed", "_run", "_run_start")

    _armed: bool
    _run: int
    _run_start: int

    def __init__(self, config: VadConfig) -> None:
        self._needed = _frames(config.barge_in_ms)
        self.reset()

    def reset(self) -> None:
        """Re-arm, typically when the bot starts a new prompt."""
        self._armed = True
        self._run = 0
        self._run_start = 0

    def may_fire_within(self, frames: int) -> bool:
        """One of the next `frames` frames may complete a barge-in: a voiced run is under way, or a run shorter
        than that is all it takes (then any frame may start one that ends inside the span)."""
        return self._armed and (self._run > 0 or self._needed < frames)

    def feed(self, voiced: bool, t_ms: int) -> int | None:
        """Take one frame's VAD decision; return the voiced run's onset the first time it is long enough."""
        if not self._armed:
            return None
        if not voiced:
            self._run = 0
            return None
        if self._run == 0:
            self._run_start = t_ms
        self._run += 1
        if self._run < self._needed:
            return None
        self._armed = False
        return self._run_start

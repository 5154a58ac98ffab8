"""Speaking prompts: pyttsx3 (espeak-ng on Linux) rendered to 8 kHz μ-law, cached in memory and on disk.

Prompts repeat across calls, so each text is synthesised once per voice and rate and then served from
the cache; `warm` renders a bot's known prompts at start-up so calls only ever hit memory.

Why the engine is handled the way it is (pyttsx3 2.99, espeak-ng 1.51, measured):

- espeak-ng is one C library instance per process, with one global synth callback and one global voice
  and rate; pyttsx3 is not thread-safe over it. So all synthesis goes through one worker thread per
  synthesiser, and, across synthesisers, one process-wide lock.
- `save_to_file` keeps only the last file name it was given, so queueing several before `runAndWait`
  writes only the last one: we run exactly one `save_to_file` + `runAndWait` per utterance.
- `runAndWait` does not wait for espeak: it returns about 10 ms after starting the synthesis, which
  espeak finishes on a thread of its own, and the WAV is written from there. On a busy machine the
  file is not there yet when `runAndWait` returns. We wait for the engine's "finished-utterance" event
  (with a timeout) before reading the file.
- Every new pyttsx3 engine re-registers espeak's one callback, and a collected engine unregisters it
  (sets it to NULL), so a second engine alive in the process silently breaks the first: its
  `runAndWait` returns and no file is ever written. We create a fresh engine for each utterance inside
  the lock and drop it, once espeak's thread is idle, before releasing the lock; an engine costs about
  0.2 ms to make, against 10-30 ms to synthesise a prompt, and each utterance starts from known voice
  and rate settings. (Any other pyttsx3 engine alive in the process would break this, as it would
  break any pyttsx3 user: keep all speech in this module.)
- pyttsx3 reports a bad voice name only through its "error" event and then speaks with the default
  voice; we listen for it and raise SynthesisError instead.
- The driver writes the WAV header with a hard-coded 22050 Hz (espeak-ng's rate for its own voices; an
  mbrola voice would be mislabelled), and we take the rate from that header. It also `print`s
  "Audio saved to <file>" for every prompt; we give the driver module a `print` of its own that logs
  at debug level instead, rather than swap `sys.stdout` for the whole process.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyttsx3

from voice.codec import SAMPLE_RATE, pcm16_to_ulaw, resample_pcm16
from voice.errors import AudioFormatError, SynthesisError
from voice.wavfile import read_pcm16_wav

log = logging.getLogger(__name__)

_ESPEAK_LOCK = threading.Lock()  # espeak-ng is a process-wide singleton; see the module docstring
_LEAD_THRESHOLD = 100  # |sample| above this (about -50 dBFS) is where speech starts
_LEAD_PAD_MS = 20  # kept before the first loud sample, so the onset is not clipped
_TEXT_IN_ERRORS = 60  # characters of a prompt quoted in an error message


class SpeechSynthesizer:
    """Turns prompt text into 8 kHz μ-law for the phone line, through pyttsx3 on one worker thread.

    `syntheses` counts engine runs (not cache hits), for tests and metrics.
    """

    def __init__(
        self,
        cache_dir: Path | None,
        voice: str | None = None,
        rate: int = 175,
        *,
        timeout_s: float = 15.0,
    ) -> None:
        self.cache_dir = cache_dir
        self.voice = voice
        self.rate = rate
        self.timeout_s = timeout_s
        self.syntheses = 0
        self._memory: dict[str, bytes] = {}
        self._inflight: dict[str, asyncio.Future[bytes]] = {}
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tts")
        self._scratch: Path | None = None  # where the engine writes its WAVs; made on first use
        self._closed = False
        if cache_dir is not None:
            cache_dir.mkdir(parents=True, exist_ok=True)

    def cached(self, text: str) -> bytes | None:
        """The prompt's audio if it was synthesised before (memory, then disk), else None."""
        return self._lookup(_cache_key(self.voice, self.rate, _spoken(text)))

    async def synthesize(self, text: str) -> bytes:
        """8 kHz μ-law for `text`: from the cache, or rendered on the worker thread.

        Concurrent requests for the same text share one synthesis. Raises SynthesisError.
        """
        spoken = _spoken(text)
        key = _cache_key(self.voice, self.rate, spoken)
        # Disk hits are read here: a prompt file is a few KB, cheaper to read than a thread hop.
        audio = self._lookup(key)
        if audio is not None:
            return audio
        if self._closed:
            raise SynthesisError(f"the synthesiser is closed; cannot speak {_quote(spoken)}")
        pending = self._inflight.get(key)
        if pending is None:
            pending = asyncio.get_running_loop().run_in_executor(self._worker, self._render, spoken, key)
            self._inflight[key] = pending
            pending.add_done_callback(lambda done: self._settled(key, done))
        # shield: a caller cancelled by barge-in must not cancel the synthesis others wait for
        return await asyncio.shield(pending)

    async def warm(self, texts: Iterable[str]) -> None:
        """Synthesise every prompt a bot may say, at start-up, so calls are served from memory."""
        await asyncio.gather(*(self.synthesize(text) for text in dict.fromkeys(texts)))

    def close(self) -> None:
        """Stop the worker and delete its scratch files; blocks until a synthesis in progress ends (ms)."""
        self._closed = True
        self._worker.shutdown(wait=True, cancel_futures=True)
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def _settled(self, key: str, done: asyncio.Future[bytes]) -> None:
        if self._inflight.get(key) is done:
            del self._inflight[key]
        if not done.cancelled():
            done.exception()  # marks it retrieved: every waiter may have gone, e.g. on barge-in

    def _lookup(self, key: str) -> bytes | None:
        audio = self._memory.get(key)
        if audio is not None or self.cache_dir is None:
            return audio
        try:
            audio = (self.cache_dir / f"{key}.ulaw").read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("unreadable TTS cache file for key %s: %s", key, exc)
            return None
        if not audio:
            return None
        self._memory[key] = audio
        return audio

    def _render(self, spoken: str, key: str) -> bytes:
        """Worker thread: synthesise, convert to 8 kHz μ-law, and store in both caches."""
        audio = self._lookup(key)  # another synthesiser sharing the cache folder may have made it
        if audio is not None:
            return audio
        started = time.perf_counter()
        pcm, rate = self._run_engine(spoken)
        audio = pcm16_to_ulaw(resample_pcm16(_trim_leading_silence(pcm, rate), rate, SAMPLE_RATE))
        self._memory[key] = audio
        if self.cache_dir is not None:
            _write_atomic(self.cache_dir / f"{key}.ulaw", audio)
        log.debug(
            "synthesised %s in %.0f ms (%d ms of audio)",
            _quote(spoken),
            (time.perf_counter() - started) * 1000,
            len(audio) * 1000 // SAMPLE_RATE,
        )
        return audio

    def _run_engine(self, spoken: str) -> tuple[bytes, int]:
        """One save_to_file + runAndWait on a fresh engine, under the process-wide espeak lock."""
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="handoff-tts-"))
        wav_path = self._scratch / f"{self.syntheses}.wav"
        finished = threading.Event()
        outcome: list[bool] = []  # the "completed" flag of the finished-utterance event
        errors: list[object] = []

        def on_finished(completed: bool = False, **_: object) -> None:
            outcome.append(completed)
            finished.set()

        def on_error(exception: object = None, **_: object) -> None:
            errors.append(exception)

        with _ESPEAK_LOCK:
            self.syntheses += 1
            deadline = time.monotonic() + self.timeout_s
            try:
                engine = pyttsx3.Engine()
                _quieten_driver(engine)
            except Exception as exc:  # pyttsx3 raises whatever its driver raises (no espeak, ...)
                raise SynthesisError(f"pyttsx3 could not start to speak {_quote(spoken)}: {exc}") from exc
            try:
                engine.connect("finished-utterance", on_finished)
                engine.connect("error", on_error)
                if self.voice is not None:
                    engine.setProperty("voice", self.voice)
                engine.setProperty("rate", self.rate)
                engine.save_to_file(spoken, str(wav_path))
                engine.runAndWait()
                done = finished.wait(max(0.0, deadline - time.monotonic()))
                if engine.driver_name == "espeak":
                    done = _espeak_idle(deadline) and done
                if not done:
                    engine.stop()
            except Exception as exc:
                raise SynthesisError(f"pyttsx3 failed to speak {_quote(spoken)}: {exc}") from exc
            finally:
                del engine  # collecting it unregisters espeak's callback: let that happen inside the lock
        try:
            if errors:
                raise SynthesisError(f"pyttsx3 failed to speak {_quote(spoken)}: {errors[0]}")
            if not done:
                raise SynthesisError(f"espeak did not finish {_quote(spoken)} within {self.timeout_s:g} s")
            if not outcome[0] or not wav_path.is_file():
                raise SynthesisError(f"espeak was interrupted and wrote no audio for {_quote(spoken)}")
            try:
                pcm, rate = read_pcm16_wav(wav_path)
            except AudioFormatError as exc:
                raise SynthesisError(f"espeak wrote unusable audio for {_quote(spoken)}: {exc}") from exc
            if not pcm:
                raise SynthesisError(f"espeak produced no samples for {_quote(spoken)}")
            return pcm, rate
        finally:
            wav_path.unlink(missing_ok=True)


def _quieten_driver(engine: pyttsx3.Engine) -> None:
    """Send the espeak driver's `print("Audio saved to ...")` to our debug log instead of stdout."""
    module = sys.modules.get(f"pyttsx3.drivers.{engine.driver_name}")
    if module is not None and not hasattr(module, "print"):
        # A module-level name shadows the builtin for that module's code only.
        vars(module)["print"] = lambda *args, **_: log.debug("pyttsx3: %s", " ".join(map(str, args)))


def _espeak_idle(deadline: float) -> bool:
    """Wait until espeak's own thread has returned from our callback (or the deadline passes).

    "finished-utterance" fires from inside pyttsx3's callback, before it returns; dropping the engine
    then would free the callback while espeak's thread still runs it. espeak_IsPlaying stays 1 until
    the command, callbacks included, is done.
    """
    from pyttsx3.drivers import _espeak  # loads libespeak-ng; only reached with the espeak driver

    while _espeak.IsPlaying():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


def voices() -> list[str]:
    """The voice ids the TTS engine offers (espeak-ng: "gmw/en-us", ...), for `voice=` and the CLI."""
    with _ESPEAK_LOCK:
        engine = pyttsx3.Engine()
        try:
            return [str(v.id) for v in engine.getProperty("voices")]
        finally:
            del engine


def _spoken(text: str) -> str:
    """The text as it is spoken and cached: whitespace runs collapsed; empty text is an error."""
    spoken = " ".join(text.split())
    if not spoken:
        raise SynthesisError(f"cannot synthesise empty or whitespace-only text {text!r}")
    return spoken


def _cache_key(voice: str | None, rate: int, spoken: str) -> str:
    return hashlib.sha256(f"{voice or ''}|{rate}|{spoken}".encode()).hexdigest()


def _quote(text: str) -> str:
    return repr(text if len(text) <= _TEXT_IN_ERRORS else text[: _TEXT_IN_ERRORS - 1] + "…")


def _trim_leading_silence(pcm: bytes, rate: int) -> bytes:
    """Drop silence before the speech, keeping 20 ms: every ms of it is a ms more before the caller
    hears the bot. (espeak-ng 1.51 leads with about 11 ms; other voices and engines lead with more.)
    Trailing silence is kept: the sentence-final pause (about 235 ms) separates consecutive prompts.
    """
    samples = np.frombuffer(pcm, dtype="<i2")
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > _LEAD_THRESHOLD)
    if not loud.size:
        return pcm
    start = max(0, int(loud[0]) - rate * _LEAD_PAD_MS // 1000)
    return pcm[start * 2 :]


def _write_atomic(path: Path, data: bytes) -> None:
    """Write via a temporary file and a rename, so a reader never sees half a prompt."""
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp_name, path)
    except OSError as exc:
        Path(tmp_name).unlink(missing_ok=True)
        log.warning("could not store TTS cache file %s: %s", path, exc)

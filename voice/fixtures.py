"""`handoff fixtures build`: the caller recordings tests replay, made reproducibly from a text manifest.

Each manifest entry becomes `<id>.wav` (8 kHz μ-law, as a phone line carries it) with `<id>.txt` beside it
holding the words, so a recording and its reference transcript never drift apart. Speech comes from
espeak-ng through pyttsx3; an optional `noise` adds seeded line hiss, for callers on a bad line. The same
manifest and espeak-ng version give the same bytes.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from voice.codec import pcm16_to_ulaw, ulaw_to_pcm16
from voice.errors import AudioFormatError
from voice.tts import SpeechSynthesizer
from voice.wavfile import write_ulaw_wav


class FixtureEntry(BaseModel):
    """One caller recording: where it goes (relative id, no suffix) and what is said."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z0-9_]+(/[a-z0-9_]+)*$")
    text: str = Field(min_length=1)
    noise: float = Field(0.0, ge=0.0, le=0.5, description="hiss level, as a fraction of full scale (RMS)")
    rate: int | None = Field(None, ge=80, le=400)
    voice: str | None = Field(
        None, description="espeak-ng voice for this entry (`ko` for Korean); the manifest's if unset"
    )


class FixtureManifest(BaseModel):
    """All recordings, and the caller voice they are spoken in."""

    model_config = ConfigDict(extra="forbid")
    voice: str | None = None
    rate: int = Field(160, ge=80, le=400)
    espeak_ng: str | None = Field(None, description="espeak-ng version the committed recordings were built with")
    utterances: list[FixtureEntry]


def load_manifest(path: Path) -> FixtureManifest:
    """Read the manifest; errors name the file and the entry."""
    try:
        return FixtureManifest.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError) as exc:
        raise AudioFormatError(f"{path}: cannot read the fixture manifest: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False, include_input=False)
        )
        raise AudioFormatError(f"{path}: {problems}") from None


def add_line_noise(ulaw: bytes, level: float, seed_text: str) -> bytes:
    """Mix seeded white noise into μ-law audio: the same text and level always give the same hiss."""
    if level <= 0:
        return ulaw
    rng = np.random.default_rng(zlib.crc32(seed_text.encode()))
    pcm = np.frombuffer(ulaw_to_pcm16(ulaw), dtype="<i2").astype(np.float64)
    noisy = pcm + rng.normal(0.0, level * 32767, size=pcm.size)
    return pcm16_to_ulaw(np.clip(np.rint(noisy), -32768, 32767).astype("<i2").tobytes())


async def _agreed(pool: ProcessPoolExecutor, text: str, voice: str | None, rate: int) -> bytes:
    """The audio two fresh syntheses agree on (AudioFormatError when none do within MAX_RUNS)."""
    loop = asyncio.get_running_loop()
    seen: dict[bytes, int] = {}
    for _ in range(MAX_RUNS):
        audio = await loop.run_in_executor(pool, _synthesize_fresh, text, voice, rate)
        seen[audio] = seen.get(audio, 0) + 1
        if seen[audio] >= AGREEING_RUNS:
            return audio
    raise AudioFormatError(f"espeak-ng gave {len(seen)} different recordings of {text!r} in {MAX_RUNS} runs")


def _synthesize_fresh(text: str, voice: str | None, rate: int) -> bytes:
    """Child process: speak one text with a fresh espeak-ng.

    espeak-ng carries state from one utterance to the next inside a process, so the same text comes out a
    few samples different depending on what was said before; a fresh process per recording makes every
    recording depend only on its own entry.
    """
    synth = SpeechSynthesizer(None, voice=voice, rate=rate)
    try:
        return asyncio.run(synth.synthesize(text))
    finally:
        synth.close()


AGREEING_RUNS = 2  # fresh syntheses that must give the same bytes before a recording is written
MAX_RUNS = 6


async def build_fixtures(manifest_path: Path, out_dir: Path | None = None) -> list[Path]:
    """Synthesise every entry of the manifest, each in a fresh process; returns the WAV files written.

    Each entry is synthesised until two fresh runs agree: pyttsx3's espeak driver now and then drops the end
    of an utterance on a busy machine (it collects espeak's audio on espeak's own thread), and a recording
    that depended on the machine's load would not be reproducible.
    """
    manifest = load_manifest(manifest_path)
    out_dir = out_dir or manifest_path.parent
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=context, max_tasks_per_child=1) as pool:
        spoken = await asyncio.gather(*(
            _agreed(pool, entry.text, entry.voice or manifest.voice, entry.rate or manifest.rate)
            for entry in manifest.utterances
        ))  # fmt: skip
    written: list[Path] = []
    for entry, audio in zip(manifest.utterances, spoken, strict=True):
        wav = out_dir / f"{entry.id}.wav"
        wav.parent.mkdir(parents=True, exist_ok=True)
        write_ulaw_wav(wav, add_line_noise(audio, entry.noise, entry.id))
        wav.with_suffix(".txt").write_text(entry.text + "\n", encoding="utf-8")
        written.append(wav)
    return written

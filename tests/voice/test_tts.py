"""Prompt synthesis with the real pyttsx3 and espeak-ng, and its memory and disk caches."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from voice.codec import SAMPLE_RATE, ulaw_to_pcm16
from voice.errors import SynthesisError
from voice.tts import SpeechSynthesizer, _trim_leading_silence, voices

MakeSynth = Callable[..., SpeechSynthesizer]

SHORT = "Yes."
LONG = "Please hold while I find someone who can help you with your billing question today."


@pytest.fixture
def make_synth(tmp_path: Path) -> Iterator[MakeSynth]:
    """SpeechSynthesizer with its cache in tmp_path by default, closed after the test."""
    made: list[SpeechSynthesizer] = []

    def make(cache_dir: Path | None = tmp_path / "tts", **kwargs: object) -> SpeechSynthesizer:
        synth = SpeechSynthesizer(cache_dir, **kwargs)  # type: ignore[arg-type]  # keywords as given
        made.append(synth)
        return synth

    yield make
    for synth in made:
        synth.close()


def seconds(ulaw: bytes) -> float:
    return len(ulaw) / SAMPLE_RATE


def rms(ulaw: bytes) -> float:
    samples = np.frombuffer(ulaw_to_pcm16(ulaw), dtype="<i2").astype(np.float64)
    return float(np.sqrt(np.mean(samples**2)))


async def test_speech_is_8khz_ulaw_of_plausible_length(make_synth: MakeSynth) -> None:
    synth = make_synth()
    audio = await synth.synthesize("Thank you for calling, let me connect you to an agent.")
    assert 1.5 < seconds(audio) < 6.0  # ten words at 175 words a minute, plus a sentence pause
    assert rms(audio) > 500  # speech, not silence (espeak speaks at roughly 3000 RMS)
    assert synth.syntheses == 1


async def test_second_request_is_served_from_memory(make_synth: MakeSynth) -> None:
    synth = make_synth()
    first = await synth.synthesize(SHORT)
    again = await synth.synthesize(SHORT)
    assert again is first
    assert synth.cached("  Yes. ") is first  # spoken text is whitespace-normalised
    assert synth.syntheses == 1


async def test_new_synthesizer_reads_the_disk_cache(make_synth: MakeSynth, tmp_path: Path) -> None:
    audio = await make_synth().synthesize(SHORT)
    files = list((tmp_path / "tts").glob("*.ulaw"))
    assert len(files) == 1 and files[0].read_bytes() == audio

    reborn = make_synth()
    assert reborn.cached(SHORT) == audio
    assert await reborn.synthesize(SHORT) == audio
    assert reborn.syntheses == 0


async def test_rate_is_part_of_the_cache_key(make_synth: MakeSynth, tmp_path: Path) -> None:
    normal = await make_synth(rate=175).synthesize(LONG)
    slow_synth = make_synth(rate=100)
    assert slow_synth.cached(LONG) is None
    slow = await slow_synth.synthesize(LONG)
    assert slow_synth.syntheses == 1
    assert seconds(slow) > 1.4 * seconds(normal)
    assert len(list((tmp_path / "tts").glob("*.ulaw"))) == 2


async def test_concurrent_texts_each_get_their_own_audio(make_synth: MakeSynth) -> None:
    """pyttsx3 writes only the last of several queued files; each request must still get its own."""
    synth = make_synth(cache_dir=None)
    short, long = await asyncio.gather(synth.synthesize(SHORT), synth.synthesize(LONG))
    assert synth.syntheses == 2
    assert seconds(short) < 1.2
    assert seconds(long) > 3 * seconds(short)
    assert rms(short) > 500 and rms(long) > 500


async def test_concurrent_requests_for_one_text_share_a_synthesis(make_synth: MakeSynth) -> None:
    synth = make_synth()
    results = await asyncio.gather(*(synth.synthesize(LONG) for _ in range(4)))
    assert synth.syntheses == 1
    assert all(r == results[0] for r in results)


async def test_a_cancelled_waiter_does_not_cancel_the_shared_synthesis(
    make_synth: MakeSynth,
) -> None:
    synth = make_synth()
    interrupted = asyncio.ensure_future(synth.synthesize(LONG))
    patient = asyncio.ensure_future(synth.synthesize(LONG))
    await asyncio.sleep(0)
    interrupted.cancel()  # e.g. the caller barged in before the prompt was ready
    assert seconds(await patient) > 2
    # Cancelling only asks; the waiter finishes cancelling on its next turn of the loop, which under load can
    # come after the shared synthesis ended. Wait for it, rather than race it.
    done = await asyncio.gather(interrupted, return_exceptions=True)
    assert isinstance(done[0], asyncio.CancelledError)
    assert interrupted.cancelled()
    assert synth.syntheses == 1


async def test_warm_synthesises_each_prompt_once(make_synth: MakeSynth) -> None:
    synth = make_synth()
    await synth.warm([SHORT, LONG, SHORT])
    assert synth.syntheses == 2
    assert synth.cached(SHORT) is not None and synth.cached(LONG) is not None


@pytest.mark.parametrize("text", ["", "   \n\t"])
async def test_empty_text_is_refused(make_synth: MakeSynth, text: str) -> None:
    synth = make_synth()
    with pytest.raises(SynthesisError, match="empty"):
        await synth.synthesize(text)
    assert synth.syntheses == 0


async def test_unknown_voice_is_an_error_not_a_silent_fallback(make_synth: MakeSynth) -> None:
    synth = make_synth(voice="no-such-voice")
    with pytest.raises(SynthesisError, match="no-such-voice"):
        await synth.synthesize(SHORT)


async def test_a_named_voice_speaks(make_synth: MakeSynth) -> None:
    assert "gmw/en-us" in voices()
    audio = await make_synth(voice="gmw/en-us").synthesize(SHORT)
    assert rms(audio) > 500


async def test_long_text_is_truncated_in_errors(make_synth: MakeSynth) -> None:
    synth = make_synth(voice="no-such-voice")
    with pytest.raises(SynthesisError) as caught:
        await synth.synthesize("word " * 100)
    assert "…" in str(caught.value) and len(str(caught.value)) < 300


async def test_closed_synthesizer_refuses_new_work_but_serves_its_cache(
    make_synth: MakeSynth,
) -> None:
    synth = make_synth()
    audio = await synth.synthesize(SHORT)
    synth.close()
    assert await synth.synthesize(SHORT) == audio
    with pytest.raises(SynthesisError, match="closed"):
        await synth.synthesize(LONG)


def test_leading_silence_is_trimmed_to_a_20ms_pad() -> None:
    rate = 22050
    tone = (np.sin(np.arange(rate // 10) * 0.3) * 8000).astype("<i2")
    pcm = np.concatenate([np.zeros(rate // 2, dtype="<i2"), tone]).tobytes()
    trimmed = _trim_leading_silence(pcm, rate)
    lead = np.flatnonzero(np.abs(np.frombuffer(trimmed, dtype="<i2")) > 100)[0]
    assert lead == pytest.approx(rate * 20 // 1000, abs=3)
    assert _trim_leading_silence(bytes(1000), rate) == bytes(1000)  # all silence: left as is

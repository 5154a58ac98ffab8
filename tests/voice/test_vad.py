"""Endpointing and barge-in with the real webrtcvad on silence, noise, tones and espeak-ng speech."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field

import numpy as np
import pytest

from voice.codec import FRAME_MS, PCM_FRAME_BYTES, resample_pcm16, split_frames
from voice.vad import BargeInDetector, EndpointDetector, SpeechEnded, SpeechStarted, VadConfig
from voice.wavfile import read_pcm16_wav

SILENCE_1S = bytes(16000)  # one second of 8 kHz PCM16 zeros


def silence(ms: int) -> bytes:
    return bytes(ms * 16)


@dataclass
class Run:
    """Everything the detector said while a stream was fed to it, frame by frame."""

    events: list[tuple[int, SpeechStarted | SpeechEnded]] = field(default_factory=list)
    voiced: list[bool] = field(default_factory=list)
    in_speech: list[bool] = field(default_factory=list)

    def kinds(self) -> list[type]:
        return [type(event) for _, event in self.events]


def feed(detector: EndpointDetector, pcm: bytes) -> Run:
    run = Run()
    for index, frame in enumerate(split_frames(pcm, PCM_FRAME_BYTES, pad=0)):
        event = detector.feed(frame, index * FRAME_MS)
        run.voiced.append(detector.last_voiced)
        run.in_speech.append(detector.in_speech)
        if event is not None:
            run.events.append((index, event))
    return run


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """'hello there this is a test' spoken by espeak-ng, as 8 kHz PCM16."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        pytest.skip("espeak-ng is not installed; it synthesizes the speech these tests listen to")
    path = tmp_path_factory.mktemp("speech") / "hello.wav"
    subprocess.run([espeak, "-w", str(path), "hello there this is a test"], check=True, timeout=60)
    pcm, rate = read_pcm16_wav(path)
    return resample_pcm16(pcm, rate, 8000)


def tone_burst(ms: int, hz: float = 300.0, amplitude: float = 15000.0) -> bytes:
    samples = ms * 8
    window = np.hanning(samples)
    wave = amplitude * window * np.sin(2 * np.pi * hz * np.arange(samples) / 8000)
    return np.rint(wave).astype("<i2").tobytes()


# --- EndpointDetector ------------------------------------------------------------------------------


def test_silence_produces_no_events() -> None:
    run = feed(EndpointDetector(VadConfig()), SILENCE_1S * 3)
    assert run.events == []
    assert not any(run.voiced)
    assert not any(run.in_speech)


def test_low_level_line_noise_never_completes_an_utterance() -> None:
    noise = np.random.default_rng(7).normal(0, 30, 5 * 8000)
    run = feed(EndpointDetector(VadConfig()), np.rint(noise).astype("<i2").tobytes())
    assert SpeechEnded not in run.kinds()


def test_speech_gives_one_start_then_one_end_timed_by_the_vad(speech: bytes) -> None:
    config = VadConfig()
    speech_ms = len(speech) // 16
    run = feed(EndpointDetector(config), SILENCE_1S + speech + silence(1500))

    assert run.kinds() == [SpeechStarted, SpeechEnded]
    (start_index, started), (end_index, ended) = run.events
    assert isinstance(started, SpeechStarted) and isinstance(ended, SpeechEnded)

    # the utterance opens on the run of voiced frames that starts the speech, not in the silence before
    first_voiced = run.voiced.index(True)
    assert started.t_ms == ended.start_ms == first_voiced * FRAME_MS
    assert 1000 <= started.t_ms <= 1100
    assert start_index == first_voiced + 2  # 60 ms = three voiced frames
    # the utterance closes end_of_speech_ms after the last voiced frame, at the end of the closing frame
    last_voiced = max(i for i in range(end_index) if run.voiced[i])
    assert ended.last_voiced_ms == (last_voiced + 1) * FRAME_MS
    assert abs(ended.end_ms - ended.last_voiced_ms - config.end_of_speech_ms) <= FRAME_MS
    assert ended.end_ms == (end_index + 1) * FRAME_MS
    assert 1000 + speech_ms // 2 <= ended.last_voiced_ms <= 1000 + speech_ms + 200
    assert run.in_speech[start_index:end_index] == [True] * (end_index - start_index)
    assert not any(run.in_speech[end_index:])


def test_two_utterances_separated_by_a_long_pause_are_two(speech: bytes) -> None:
    run = feed(EndpointDetector(VadConfig()), SILENCE_1S + speech + silence(1000) + speech + SILENCE_1S)
    assert run.kinds() == [SpeechStarted, SpeechEnded, SpeechStarted, SpeechEnded]
    first_end, second_start = run.events[1][1], run.events[2][1]
    assert isinstance(first_end, SpeechEnded) and isinstance(second_start, SpeechStarted)
    assert second_start.t_ms >= first_end.end_ms


def test_a_pause_shorter_than_the_end_window_keeps_one_utterance(speech: bytes) -> None:
    run = feed(EndpointDetector(VadConfig()), SILENCE_1S + speech + silence(300) + speech + SILENCE_1S)
    assert run.kinds() == [SpeechStarted, SpeechEnded]


def test_a_click_shorter_than_min_speech_is_discarded() -> None:
    stream = SILENCE_1S + tone_burst(100) + SILENCE_1S
    run = feed(EndpointDetector(VadConfig(min_speech_ms=200)), stream)
    assert SpeechEnded not in run.kinds()
    assert not run.in_speech[-1]


def test_the_same_click_is_an_utterance_when_min_speech_allows_it() -> None:
    stream = SILENCE_1S + tone_burst(100) + SILENCE_1S
    run = feed(EndpointDetector(VadConfig(min_speech_ms=0)), stream)
    assert run.kinds() == [SpeechStarted, SpeechEnded]
    ended = run.events[1][1]
    assert isinstance(ended, SpeechEnded)
    assert ended.last_voiced_ms - ended.start_ms < 200


def test_reset_forgets_an_open_utterance(speech: bytes) -> None:
    detector = EndpointDetector(VadConfig())
    run = feed(detector, SILENCE_1S + speech[:8000])  # half a second of speech, no ending
    assert run.kinds() == [SpeechStarted]
    assert detector.in_speech

    detector.reset()

    assert not detector.in_speech and not detector.last_voiced
    assert feed(detector, SILENCE_1S * 2).events == []


@pytest.mark.parametrize("size", [0, 160, 318, 322, 640])
def test_frames_of_the_wrong_length_are_rejected(size: int) -> None:
    with pytest.raises(ValueError, match=f"320 bytes \\(20 ms\\), got {size}"):
        EndpointDetector(VadConfig()).feed(bytes(size), 0)


def test_a_16k_detector_takes_640_byte_frames() -> None:
    detector = EndpointDetector(VadConfig(), sample_rate=16000)
    assert detector.feed(bytes(640), 0) is None
    with pytest.raises(ValueError, match="640 bytes"):
        detector.feed(bytes(320), 20)


def test_an_unsupported_sample_rate_is_rejected() -> None:
    with pytest.raises(ValueError, match="sample rates"):
        EndpointDetector(VadConfig(), sample_rate=11025)


# --- VadConfig -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field_name", "value"),
    [
        ("aggressiveness", -1),
        ("aggressiveness", 4),
        ("aggressiveness", True),
        ("end_of_speech_ms", 0),
        ("end_of_speech_ms", 600_000),
        ("start_speech_ms", 10),
        ("min_speech_ms", -1),
        ("barge_in_ms", 0),
        ("barge_in_ms", 200.0),
    ],
)
def test_config_rejects_out_of_range_values_naming_the_field(field_name: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"VadConfig.{field_name}"):
        VadConfig(**{field_name: value})  # type: ignore[arg-type]


def test_config_defaults_are_the_documented_ones() -> None:
    assert VadConfig() == VadConfig(
        aggressiveness=2, end_of_speech_ms=600, min_speech_ms=200, start_speech_ms=60, barge_in_ms=200
    )


# --- BargeInDetector -------------------------------------------------------------------------------


def test_barge_in_fires_once_with_the_onset_after_barge_in_ms() -> None:
    detector = BargeInDetector(VadConfig(barge_in_ms=200))
    fired = [(t, detector.feed(t >= 1000, t)) for t in range(0, 3000, FRAME_MS)]
    hits = [(t, onset) for t, onset in fired if onset is not None]
    assert hits == [(1180, 1000)]  # the tenth voiced frame completes 200 ms


def test_barge_in_needs_a_consecutive_run() -> None:
    detector = BargeInDetector(VadConfig(barge_in_ms=100))
    pattern = [True] * 4 + [False] + [True] * 5
    results = [detector.feed(voiced, i * FRAME_MS) for i, voiced in enumerate(pattern)]
    assert results == [None] * 9 + [100]


def test_barge_in_rounds_its_window_up_to_whole_frames() -> None:
    detector = BargeInDetector(VadConfig(barge_in_ms=50))
    assert [detector.feed(True, t) for t in (0, 20, 40)] == [None, None, 0]


def test_barge_in_rearms_only_on_reset() -> None:
    detector = BargeInDetector(VadConfig(barge_in_ms=40))
    assert [detector.feed(True, t) for t in (0, 20, 40, 60)] == [None, 0, None, None]
    detector.reset()
    assert [detector.feed(True, t) for t in (80, 100)] == [None, 80]


def test_a_barge_in_may_fire_exactly_while_a_voiced_run_may_still_become_one() -> None:
    detector = BargeInDetector(VadConfig(barge_in_ms=60))  # 3 frames: within a span of 3 only once a run is under way
    may_fire = []
    for voiced in (False, True, False, True, True, True, True):
        detector.feed(voiced, 0)
        may_fire.append(detector.may_fire_within(3))
    # a run counts from its first voiced frame; a gap ends it; once it fires, nothing counts until reset
    assert may_fire == [False, True, False, True, True, False, False]
    detector.reset()
    assert not detector.may_fire_within(3)


def test_barge_in_from_real_speech_via_last_voiced(speech: bytes) -> None:
    config = VadConfig()
    endpoint, barge_in = EndpointDetector(config), BargeInDetector(config)
    fired = []
    for index, frame in enumerate(split_frames(SILENCE_1S + speech, PCM_FRAME_BYTES, pad=0)):
        t_ms = index * FRAME_MS
        endpoint.feed(frame, t_ms)
        onset = barge_in.feed(endpoint.last_voiced, t_ms)
        if onset is not None:
            fired.append((t_ms, onset))
    assert len(fired) == 1
    fired_at, onset = fired[0]
    assert 1000 <= onset <= 1100
    assert fired_at == onset + config.barge_in_ms - FRAME_MS


def test_closing_within_is_true_for_the_frames_just_before_the_window_closes(speech: bytes) -> None:
    detector = EndpointDetector(VadConfig())
    closing: list[bool] = []
    end_index = None
    for index, frame in enumerate(split_frames(SILENCE_1S + speech + silence(1500), PCM_FRAME_BYTES, pad=0)):
        event = detector.feed(frame, index * FRAME_MS)
        closing.append(detector.closing_within(3))
        if isinstance(event, SpeechEnded):
            end_index = index
    assert end_index is not None
    assert [i for i, soon in enumerate(closing) if soon] == [end_index - 3, end_index - 2, end_index - 1]


def test_a_barge_in_may_fire_within_a_span_once_a_voiced_run_starts_or_always_when_it_is_shorter() -> None:
    """The session reads each frame as it comes over the bot only while one of the next frames may cut it off."""
    usual = BargeInDetector(VadConfig(barge_in_ms=200))  # 10 frames
    assert not usual.may_fire_within(10)
    usual.feed(True, 0)
    assert usual.may_fire_within(10)
    quick = BargeInDetector(VadConfig(barge_in_ms=100))  # 5 frames: fits inside a read of 10
    assert quick.may_fire_within(10) and not quick.may_fire_within(5)
    for n in range(5):
        quick.feed(True, n * FRAME_MS)
    assert not quick.may_fire_within(10)  # it has fired: nothing more to cut off until re-armed

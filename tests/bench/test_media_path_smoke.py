"""The media-path benchmark still runs against the real protocol, codec and VAD (a few frames; no timing)."""

from __future__ import annotations

import pytest

from bench.media_path import Stage, media_messages, run_pass, speech_audio

FRAMES = 250  # 5 s: more than one cycle of the benchmark's speech and pause


@pytest.mark.parametrize("prefer_espeak", [True, False], ids=["espeak-or-stand-in", "numpy-stand-in"])
def test_every_stage_processes_each_frame_and_the_vad_hears_speech(prefer_espeak: bool) -> None:
    messages = media_messages(speech_audio(prefer_espeak), FRAMES)

    results = {stage: run_pass(messages, stage) for stage in Stage}

    assert {stage: result.frames for stage, result in results.items()} == dict.fromkeys(Stage, FRAMES)
    vad = results[Stage.VAD]
    assert vad.voiced_frames >= 1
    assert vad.voiced_frames < FRAMES  # the pause between utterances is heard as silence

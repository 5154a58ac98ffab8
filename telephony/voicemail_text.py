"""Voicemail to text: a recording fetched from Twilio, transcribed offline by the server's own recogniser."""

from __future__ import annotations

import tempfile
from pathlib import Path

from voice.codec import PCM_FRAME_BYTES, SAMPLE_RATE, resample_pcm16
from voice.stt import RecognizerFactory
from voice.wavfile import read_pcm16_wav


def transcribe_wav(wav: bytes, factory: RecognizerFactory, key: str) -> str | None:
    """The words in a WAV recording (any rate, PCM16), or None when nothing was recognised. Blocking."""
    with tempfile.TemporaryDirectory(prefix="handoff-voicemail-") as folder:
        path = Path(folder) / "message.wav"
        path.write_bytes(wav)
        pcm, rate = read_pcm16_wav(path)
    pcm = resample_pcm16(pcm, rate, SAMPLE_RATE)
    recognizer = factory.new_recognizer(key)
    try:
        recognizer.start_utterance(0)
        for i in range(0, len(pcm), PCM_FRAME_BYTES * 10):
            recognizer.accept(pcm[i : i + PCM_FRAME_BYTES * 10])
        final = recognizer.finish_utterance(0, len(pcm) * 1000 // (SAMPLE_RATE * 2))
    finally:
        recognizer.close()
    return final.text if final is not None and final.text else None

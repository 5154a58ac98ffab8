"""WAV reading and writing: μ-law round trips, PCM16 conversion, and a named error for every bad file."""

from __future__ import annotations

import struct
import wave
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voice.codec import pcm16_to_ulaw, ulaw_to_pcm16
from voice.errors import AudioFormatError
from voice.wavfile import read_pcm16_wav, read_ulaw_wav, write_pcm16_wav, write_ulaw_wav


def riff(fmt: bytes, data: bytes, extra_chunks: bytes = b"") -> bytes:
    """A RIFF/WAVE file built by hand, independent of the code under test."""
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra_chunks
    body += b"data" + struct.pack("<I", len(data)) + data + (b"\x00" if len(data) % 2 else b"")
    return b"RIFF" + struct.pack("<I", len(body)) + body


def fmt_chunk(tag: int, channels: int, rate: int, bits: int) -> bytes:
    block = channels * bits // 8
    return struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)


def tone(samples: int, rate: int, amplitude: float = 8000.0, hz: float = 440.0) -> np.ndarray:
    return np.rint(amplitude * np.sin(2 * np.pi * hz * np.arange(samples) / rate)).astype("<i2")


# --- μ-law files -----------------------------------------------------------------------------------


@settings(max_examples=30)
@given(st.binary(max_size=3001))
def test_ulaw_round_trips_through_a_file(tmp_path_factory: pytest.TempPathFactory, ulaw: bytes) -> None:
    path = tmp_path_factory.mktemp("wav") / "prompt.wav"
    write_ulaw_wav(path, ulaw)
    assert read_ulaw_wav(path) == ulaw


def test_ulaw_file_has_a_wave_format_mulaw_header(tmp_path: Path) -> None:
    path = tmp_path / "prompt.wav"
    write_ulaw_wav(path, b"\x01\x02\x03")
    raw = path.read_bytes()
    assert raw[:4] == b"RIFF" and raw[8:12] == b"WAVE"
    assert struct.unpack_from("<I", raw, 4)[0] == len(raw) - 8
    assert raw[12:16] == b"fmt " and struct.unpack_from("<I", raw, 16)[0] == 18
    tag, channels, rate, byte_rate, block_align, bits, cb_size = struct.unpack_from("<HHIIHHH", raw, 20)
    assert (tag, channels, rate, byte_rate, block_align, bits, cb_size) == (7, 1, 8000, 8000, 1, 8, 0)
    assert raw[38:42] == b"fact" and struct.unpack_from("<II", raw, 42) == (4, 3)
    assert raw[50:54] == b"data" and struct.unpack_from("<I", raw, 54)[0] == 3
    assert raw[58:] == b"\x01\x02\x03\x00"  # odd-sized data chunk is padded to an even length


def test_ulaw_reader_skips_unknown_chunks(tmp_path: Path) -> None:
    path = tmp_path / "tagged.wav"
    listing = b"LIST" + struct.pack("<I", 5) + b"INFOx\x00"
    path.write_bytes(riff(fmt_chunk(7, 1, 8000, 8) + b"\x00\x00", b"\x10\x20", extra_chunks=listing))
    assert read_ulaw_wav(path) == b"\x10\x20"


# --- PCM16 files -----------------------------------------------------------------------------------


def test_pcm16_round_trips_through_a_file(tmp_path: Path) -> None:
    path = tmp_path / "speech.wav"
    pcm = tone(1234, 22050).tobytes()
    write_pcm16_wav(path, pcm, 22050)
    assert read_pcm16_wav(path) == (pcm, 22050)
    with wave.open(str(path)) as check:  # the stdlib agrees it is plain mono PCM16
        assert (check.getnchannels(), check.getsampwidth(), check.getframerate()) == (1, 2, 22050)


def test_pcm16_at_8k_mono_is_encoded_without_resampling(tmp_path: Path) -> None:
    path = tmp_path / "speech.wav"
    pcm = tone(800, 8000).tobytes()
    write_pcm16_wav(path, pcm, 8000)
    assert read_ulaw_wav(path) == pcm16_to_ulaw(pcm)


def test_pcm16_16k_stereo_becomes_8k_mono_ulaw(tmp_path: Path) -> None:
    path = tmp_path / "stereo.wav"
    left = tone(16000, 16000, amplitude=16000)
    right = np.zeros_like(left)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(np.column_stack((left, right)).astype("<i2").tobytes())

    ulaw = read_ulaw_wav(path)

    assert len(ulaw) == 8000  # one second at 8 kHz, one byte a sample
    decoded = np.frombuffer(ulaw_to_pcm16(ulaw), dtype="<i2").astype(np.float64)
    expected = tone(8000, 8000, amplitude=8000).astype(np.float64)  # the average of tone and silence
    assert np.corrcoef(decoded, expected)[0, 1] > 0.99
    assert 7000 < np.abs(decoded[100:-100]).max() < 9000


def test_pcm16_in_wave_format_extensible_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "extensible.wav"
    pcm_guid = struct.pack("<H", 1) + bytes.fromhex("000000001000800000aa00389b71")
    fmt = fmt_chunk(0xFFFE, 1, 8000, 16) + struct.pack("<HHI", 22, 16, 0x4) + pcm_guid
    pcm = tone(400, 8000).tobytes()
    path.write_bytes(riff(fmt, pcm))
    assert read_pcm16_wav(path) == (pcm, 8000)
    assert read_ulaw_wav(path) == pcm16_to_ulaw(pcm)


# --- files we refuse -------------------------------------------------------------------------------


def _pcm8(path: Path) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(1)
        out.setframerate(8000)
        out.writeframes(b"\x80" * 160)


def _truncated(path: Path) -> None:
    write_ulaw_wav(path, b"\xff" * 400)
    path.write_bytes(path.read_bytes()[:200])


BAD_FILES = {
    "8-bit PCM": (_pcm8, "8-bit PCM"),
    "24-bit PCM": (lambda p: p.write_bytes(riff(fmt_chunk(1, 1, 8000, 24), b"\x00" * 30)), "24-bit PCM"),
    "float": (lambda p: p.write_bytes(riff(fmt_chunk(3, 1, 8000, 32), b"\x00" * 32)), "IEEE float"),
    "a-law": (lambda p: p.write_bytes(riff(fmt_chunk(6, 1, 8000, 8) + b"\0\0", b"\xd5" * 16)), "A-law"),
    "μ-law 16 kHz": (lambda p: write_ulaw_wav(p, b"\xff" * 16, sample_rate=16000), "16000 Hz"),
    "stereo μ-law": (
        lambda p: p.write_bytes(riff(fmt_chunk(7, 2, 8000, 8) + b"\0\0", b"\xff" * 16)),
        "2 channels",
    ),
    "truncated": (_truncated, "truncated"),
    "cut inside a chunk header": (
        lambda p: p.write_bytes(riff(fmt_chunk(1, 1, 8000, 16), b"")[:16]),
        "truncated",
    ),
    "no data chunk": (lambda p: p.write_bytes(riff(fmt_chunk(1, 1, 8000, 16), b"")[:36]), "no data chunk"),
    "short fmt chunk": (lambda p: p.write_bytes(riff(b"\x01\x00\x01\x00", b"")), "fmt chunk is 4 bytes"),
    "garbage": (lambda p: p.write_bytes(b"\x00\x01garbage" * 10), "not a RIFF/WAVE file"),
    "empty": (lambda p: p.write_bytes(b""), "not a RIFF/WAVE file"),
    "mp3 named .wav": (lambda p: p.write_bytes(b"ID3\x04\x00" + b"\x00" * 100), "not a RIFF/WAVE file"),
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_unusable_files_raise_audio_format_error_naming_the_file(tmp_path: Path, kind: str) -> None:
    make, reason = BAD_FILES[kind]
    path = tmp_path / "bad-prompt.wav"
    make(path)
    with pytest.raises(AudioFormatError) as raised:
        read_ulaw_wav(path)
    assert str(path) in str(raised.value)
    assert reason in str(raised.value)


def test_pcm_reader_refuses_ulaw_files(tmp_path: Path) -> None:
    path = tmp_path / "prompt.wav"
    write_ulaw_wav(path, b"\xff" * 10)
    with pytest.raises(AudioFormatError, match="μ-law audio is not supported"):
        read_pcm16_wav(path)


def test_a_missing_file_is_an_os_error_not_a_format_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_ulaw_wav(tmp_path / "nope.wav")

"""WAV files in the two shapes the project uses: 8 kHz μ-law (what the phone line carries) and PCM16.

Python's `wave` module refuses WAVE_FORMAT_MULAW (and, before 3.12, WAVE_FORMAT_EXTENSIBLE), so the
reader parses the RIFF chunks itself; one parser also gives every failure the same `AudioFormatError`
that names the file and what is wrong with it.
"""

from __future__ import annotations

import os
import struct
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from voice.codec import SAMPLE_RATE, pcm16_to_ulaw, resample_pcm16
from voice.errors import AudioFormatError

StrPath = str | os.PathLike[str]

_WAVE_FORMAT_PCM = 0x0001
_WAVE_FORMAT_MULAW = 0x0007
_WAVE_FORMAT_EXTENSIBLE = 0xFFFE
_FORMAT_NAMES = {
    0x0001: "PCM",
    0x0003: "IEEE float",
    0x0006: "A-law",
    0x0007: "μ-law",
    0x0011: "IMA ADPCM",
    0x0055: "MP3",
}
_ACCEPTED = "expected 8 kHz mono μ-law or 16-bit PCM"


@dataclass(frozen=True, slots=True)
class _WavInfo:
    """What the fmt and data chunks say, with WAVE_FORMAT_EXTENSIBLE resolved to its sub-format."""

    format_tag: int
    channels: int
    sample_rate: int
    bits_per_sample: int
    data: bytes


def write_ulaw_wav(path: StrPath, ulaw: bytes, sample_rate: int = SAMPLE_RATE) -> None:
    """Write mono μ-law as WAVE_FORMAT_MULAW (7), playable as is and readable by `read_ulaw_wav`."""
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    # 18-byte WAVEFORMATEX (cbSize=0): non-PCM formats need cbSize, and then a fact chunk.
    fmt = struct.pack("<HHIIHHH", _WAVE_FORMAT_MULAW, 1, sample_rate, sample_rate, 1, 8, 0)
    fact = struct.pack("<I", len(ulaw))
    pad = b"\x00" if len(ulaw) % 2 else b""  # RIFF chunks start on even offsets
    body = b"".join(
        (
            b"WAVE",
            b"fmt ",
            struct.pack("<I", len(fmt)),
            fmt,
            b"fact",
            struct.pack("<I", len(fact)),
            fact,
            b"data",
            struct.pack("<I", len(ulaw)),
            bytes(ulaw),
            pad,
        )
    )
    Path(path).write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def write_pcm16_wav(path: StrPath, pcm: bytes, sample_rate: int) -> None:
    """Write mono PCM16 as a plain WAVE_FORMAT_PCM file."""
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if len(pcm) % 2:
        raise AudioFormatError(f"{path}: PCM16 audio must have an even number of bytes, got {len(pcm)}")
    with wave.open(os.fspath(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm)


def read_ulaw_wav(path: StrPath) -> bytes:
    """Read a prompt as 8 kHz mono μ-law, converting PCM16 of any rate and channel count on the way."""
    info = _read_wav(path)
    if info.format_tag == _WAVE_FORMAT_MULAW:
        if info.bits_per_sample != 8:
            raise AudioFormatError(f"{path}: μ-law with {info.bits_per_sample} bits per sample; {_ACCEPTED}")
        if info.channels != 1:
            raise AudioFormatError(f"{path}: μ-law with {info.channels} channels; {_ACCEPTED}")
        if info.sample_rate != SAMPLE_RATE:
            raise AudioFormatError(f"{path}: μ-law at {info.sample_rate} Hz; {_ACCEPTED}")
        return info.data
    pcm = _mono_pcm16(path, info)
    return pcm16_to_ulaw(resample_pcm16(pcm, info.sample_rate, SAMPLE_RATE))


def read_pcm16_wav(path: StrPath) -> tuple[bytes, int]:
    """Read a 16-bit PCM WAV as mono PCM16 (channels averaged) and its sample rate."""
    info = _read_wav(path)
    return _mono_pcm16(path, info), info.sample_rate


def _mono_pcm16(path: StrPath, info: _WavInfo) -> bytes:
    """Check that the file is 16-bit PCM and average its channels."""
    if info.format_tag != _WAVE_FORMAT_PCM:
        name = _FORMAT_NAMES.get(info.format_tag, f"format tag 0x{info.format_tag:04x}")
        raise AudioFormatError(f"{path}: {name} audio is not supported; {_ACCEPTED}")
    if info.bits_per_sample != 16:
        raise AudioFormatError(f"{path}: {info.bits_per_sample}-bit PCM is not supported; {_ACCEPTED}")
    frame_bytes = 2 * info.channels
    usable = len(info.data) - len(info.data) % frame_bytes  # drop a trailing partial sample frame
    if info.channels == 1:
        return info.data[:usable]
    samples = np.frombuffer(info.data, dtype="<i2", count=usable // 2).reshape(-1, info.channels)
    mixed: npt.NDArray[np.int16] = np.rint(samples.mean(axis=1, dtype=np.float64)).astype("<i2")
    return mixed.tobytes()


def _read_wav(path: StrPath) -> _WavInfo:
    """Parse the RIFF chunk list for the fmt and data chunks; OSError (missing file) passes through."""
    raw = Path(path).read_bytes()
    if len(raw) < 12 or raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise AudioFormatError(f"{path}: not a RIFF/WAVE file")
    declared_end = 8 + struct.unpack_from("<I", raw, 4)[0]
    # Trust the RIFF size only when it is plausible: streaming writers leave it 0 or 0xFFFFFFFF.
    end = declared_end if 12 <= declared_end <= len(raw) else len(raw)
    fmt: bytes | None = None
    data: bytes | None = None
    offset = 12
    while offset + 8 <= end:
        chunk_id = raw[offset : offset + 4]
        (size,) = struct.unpack_from("<I", raw, offset + 4)
        body_start = offset + 8
        if body_start + size > len(raw):
            name = chunk_id.decode("latin-1")
            have = len(raw) - body_start
            raise AudioFormatError(f"{path}: truncated: {name!r} chunk says {size} bytes, file has {have}")
        if chunk_id == b"fmt " and fmt is None:
            fmt = raw[body_start : body_start + size]
        elif chunk_id == b"data" and data is None:
            data = raw[body_start : body_start + size]
        offset = body_start + size + (size & 1)
    if (fmt is None or data is None) and offset < end:
        raise AudioFormatError(f"{path}: truncated: {end - offset} bytes of an incomplete chunk header")
    if fmt is None:
        raise AudioFormatError(f"{path}: no fmt chunk, so the audio format is unknown")
    if data is None:
        raise AudioFormatError(f"{path}: no data chunk")
    return _parse_fmt(path, fmt, data)


def _parse_fmt(path: StrPath, fmt: bytes, data: bytes) -> _WavInfo:
    """Read WAVEFORMAT(EX/EXTENSIBLE) fields and check they describe something decodable."""
    if len(fmt) < 16:
        raise AudioFormatError(f"{path}: fmt chunk is {len(fmt)} bytes, shorter than the 16 it needs")
    tag, channels, rate, _byte_rate, _block_align, bits = struct.unpack_from("<HHIIHH", fmt)
    if tag == _WAVE_FORMAT_EXTENSIBLE:
        if len(fmt) < 40:
            raise AudioFormatError(f"{path}: WAVE_FORMAT_EXTENSIBLE fmt chunk is {len(fmt)} bytes, not 40")
        (tag,) = struct.unpack_from("<H", fmt, 24)  # first two bytes of the sub-format GUID
    if channels == 0 or rate == 0:
        raise AudioFormatError(f"{path}: fmt chunk declares {channels} channels at {rate} Hz")
    return _WavInfo(tag, channels, rate, bits, data)

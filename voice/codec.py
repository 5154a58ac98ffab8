"""G.711 μ-law codec, resampling and framing for Twilio Media Streams (8 kHz μ-law, 20 ms frames).

Both directions of the codec are numpy lookup tables (256 entries to decode, 65536 to encode) built once
from the G.711 definition: a table lookup is one vectorised C loop per frame instead of 160 Python
steps. The 50-frames-a-second decode (`UlawDecoder`) uses the C codec `audioop` where this Python has it
(up to 3.12; the `audioop-lts` package after): on a loaded server each frame is decoded from cold caches,
and numpy's machinery then cost about 2 µs more a frame. Both give the same bytes (tests/voice/test_codec.py).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import soxr

from voice.errors import AudioFormatError

SAMPLE_RATE = 8000
FRAME_MS = 20
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000
ULAW_FRAME_BYTES = FRAME_SAMPLES
PCM_FRAME_BYTES = FRAME_SAMPLES * 2

_BIAS = 0x84  # 132: shifts every magnitude into segment 0's range so segments are powers of two
_CLIP = 32635  # 32767 - _BIAS: the largest magnitude that still fits after the bias
_PCM16 = np.dtype("<i2")  # the project's PCM: signed 16-bit little-endian


def _build_decode_table() -> npt.NDArray[np.int16]:
    """Decode every μ-law byte with the G.711 formula (the bits are stored inverted)."""
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    magnitude = (((u & 0x0F) << 3) + _BIAS) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, _BIAS - magnitude, magnitude - _BIAS).astype(_PCM16)


def _build_encode_table() -> npt.NDArray[np.uint8]:
    """Encode every int16 sample; the table is indexed by the sample's uint16 bit pattern.

    G.711 quantises a 14-bit signal, so the two low bits are dropped (rounding toward −∞) before the
    sign is split off, as Sun's reference g711.c does; this makes the table bit-exact with `audioop`.
    """
    pcm = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.int16).astype(np.int32)
    grid = pcm & ~3
    negative = grid < 0
    magnitude = np.minimum(np.where(negative, -grid, grid), _CLIP) + _BIAS
    # segment = position of the top bit above bit 7; biased magnitudes lie in [132, 32767]
    segment = np.searchsorted(np.array([0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF, 0x3FFF]), magnitude)
    mantissa = (magnitude >> (segment + 3)) & 0x0F
    code = (segment << 4) | mantissa
    table: npt.NDArray[np.uint8] = (np.where(negative, 0x7F, 0xFF) ^ code).astype(np.uint8)
    return table


ULAW_TO_PCM16: npt.NDArray[np.int16] = _build_decode_table()
"""The G.711 μ-law decode table: shape (256,), int16, indexed by the μ-law byte."""
ULAW_TO_PCM16.flags.writeable = False

_PCM16_TO_ULAW: npt.NDArray[np.uint8] = _build_encode_table()
_PCM16_TO_ULAW.flags.writeable = False


def _c_decoder() -> Callable[[bytes, int], bytes] | None:
    """audioop's μ-law decoder, when this Python has it and its native byte order is the project's."""
    if sys.byteorder != "little":
        return None
    with warnings.catch_warnings():  # deprecated in the standard library (3.11, 3.12), kept by audioop-lts
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            from audioop import ulaw2lin
        except ImportError:
            return None
    return ulaw2lin


_ULAW2LIN = _c_decoder()


def ulaw_to_pcm16(ulaw: bytes) -> bytes:
    """Decode μ-law bytes of any length to PCM16 (for whole buffers; per frame use `UlawDecoder`)."""
    return ULAW_TO_PCM16.take(np.frombuffer(ulaw, dtype=np.uint8)).tobytes()


def pcm16_to_ulaw(pcm: bytes) -> bytes:
    """Encode PCM16 to μ-law with the G.711 encoder (bias 0x84, clip 32635), bit-exact with `audioop`."""
    if len(pcm) % 2:
        raise AudioFormatError(f"PCM16 audio must have an even number of bytes, got {len(pcm)}")
    return _PCM16_TO_ULAW.take(np.frombuffer(pcm, dtype=np.uint16)).tobytes()


def resample_pcm16(pcm: bytes, src_rate: int, dst_rate: int) -> bytes:
    """Resample mono PCM16 with soxr (high quality); the same rate returns the input unchanged."""
    if src_rate <= 0 or dst_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {src_rate} -> {dst_rate}")
    if len(pcm) % 2:
        raise AudioFormatError(f"PCM16 audio must have an even number of bytes, got {len(pcm)}")
    if src_rate == dst_rate or not pcm:
        return bytes(pcm)
    samples = np.frombuffer(pcm, dtype=_PCM16)
    resampled: npt.NDArray[np.int16] = soxr.resample(samples, src_rate, dst_rate)
    return resampled.astype(_PCM16, copy=False).tobytes()


def split_frames(data: bytes, frame_bytes: int = ULAW_FRAME_BYTES, pad: int = 0xFF) -> list[bytes]:
    """Cut audio into fixed-size frames, padding the last one with `pad` (0xFF is μ-law silence)."""
    if frame_bytes <= 0:
        raise ValueError(f"frame_bytes must be positive, got {frame_bytes}")
    if not 0 <= pad <= 0xFF:
        raise ValueError(f"pad must be a byte value 0..255, got {pad}")
    frames = [bytes(data[i : i + frame_bytes]) for i in range(0, len(data), frame_bytes)]
    if frames and len(frames[-1]) < frame_bytes:
        frames[-1] += bytes((pad,)) * (frame_bytes - len(frames[-1]))
    return frames


class UlawDecoder:
    """Decodes one 20 ms μ-law frame at a time into reusable buffers, for the 50-frames-a-second path."""

    __slots__ = ("_c_decode", "_index", "_input", "_output", "_take")

    def __init__(self) -> None:
        self._c_decode = _ULAW2LIN
        staging = bytearray(ULAW_FRAME_BYTES)
        self._input = memoryview(staging)
        self._index = np.frombuffer(staging, dtype=np.uint8)  # a view of `staging`, not a copy
        self._output = np.empty(FRAME_SAMPLES, dtype=_PCM16)
        self._take = ULAW_TO_PCM16.take

    def decode(self, ulaw_frame: bytes) -> bytes:
        """Decode 160 μ-law bytes to 320 bytes of PCM16; the result is a new `bytes`, safe to keep."""
        if self._c_decode is not None and len(ulaw_frame) == ULAW_FRAME_BYTES:
            return self._c_decode(ulaw_frame, 2)
        # Copying into a fixed buffer is cheaper than np.frombuffer's new array, and checks the length.
        try:
            self._input[:] = ulaw_frame
        except ValueError:
            raise ValueError(f"a μ-law frame must be {ULAW_FRAME_BYTES} bytes, got {len(ulaw_frame)}") from None
        # mode="clip" skips the bounds check: a uint8 index cannot leave a 256-entry table.
        self._take(self._index, out=self._output, mode="clip")
        return self._output.tobytes()

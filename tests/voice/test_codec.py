"""μ-law codec, resampling and framing, checked against references written independently of voice.codec."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from voice import codec
from voice.codec import (
    FRAME_MS,
    FRAME_SAMPLES,
    PCM_FRAME_BYTES,
    SAMPLE_RATE,
    ULAW_FRAME_BYTES,
    ULAW_TO_PCM16,
    UlawDecoder,
    pcm16_to_ulaw,
    resample_pcm16,
    split_frames,
    ulaw_to_pcm16,
)
from voice.errors import AudioFormatError

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import audioop
    except ImportError:  # removed in Python 3.13
        audioop = None  # type: ignore[assignment]

needs_audioop = pytest.mark.skipif(audioop is None, reason="audioop was removed in Python 3.13")

ALL_ULAW = bytes(range(256))
ALL_PCM16 = np.arange(-32768, 32768, dtype="<i2").tobytes()


# --- reference codec: Sun Microsystems' g711.c, transcribed one sample at a time -------------------

_SEG_UEND = (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)


def ref_ulaw2linear(u_val: int) -> int:
    u_val = ~u_val & 0xFF
    t = ((u_val & 0x0F) << 3) + 0x84
    t <<= (u_val & 0x70) >> 4
    return 0x84 - t if u_val & 0x80 else t - 0x84


def ref_linear2ulaw(pcm_val: int) -> int:
    pcm_val >>= 2  # g711.c works on the 14-bit signal
    if pcm_val < 0:
        pcm_val = -pcm_val
        mask = 0x7F
    else:
        mask = 0xFF
    pcm_val = min(pcm_val, 8159) + (0x84 >> 2)
    seg = next((i for i, end in enumerate(_SEG_UEND) if pcm_val <= end), 8)
    if seg >= 8:
        return 0x7F ^ mask
    return ((seg << 4) | ((pcm_val >> (seg + 1)) & 0x0F)) ^ mask


# Well-known G.711 points: full scale, segment edges, the smallest steps, and both zeros.
KNOWN_DECODE = {
    0x00: -32124,
    0x0F: -16764,
    0x10: -15996,
    0x70: -120,
    0x7E: -8,
    0x7F: 0,
    0x80: 32124,
    0x8F: 16764,
    0xFE: 8,
    0xFF: 0,
}
KNOWN_ENCODE = {0: 0xFF, 8: 0xFE, -4: 0x7E, 16764: 0x8F, -16764: 0x0F, 32767: 0x80, -32768: 0x00}


def test_reference_codec_agrees_with_known_g711_values() -> None:
    assert {u: ref_ulaw2linear(u) for u in KNOWN_DECODE} == KNOWN_DECODE
    assert {x: ref_linear2ulaw(x) for x in KNOWN_ENCODE} == KNOWN_ENCODE


def test_decode_table_matches_known_g711_values() -> None:
    assert {u: int(ULAW_TO_PCM16[u]) for u in KNOWN_DECODE} == KNOWN_DECODE


def test_encoder_matches_known_g711_values() -> None:
    pcm = np.array(list(KNOWN_ENCODE), dtype="<i2").tobytes()
    assert list(pcm16_to_ulaw(pcm)) == list(KNOWN_ENCODE.values())


def test_decode_table_is_int16_with_256_entries_matching_the_reference() -> None:
    assert ULAW_TO_PCM16.dtype == np.int16
    assert ULAW_TO_PCM16.shape == (256,)
    assert ULAW_TO_PCM16.tolist() == [ref_ulaw2linear(u) for u in range(256)]


def test_encoder_matches_the_reference_for_every_int16_sample() -> None:
    expected = bytes(ref_linear2ulaw(x) for x in range(-32768, 32768))
    assert pcm16_to_ulaw(ALL_PCM16) == expected


@needs_audioop
def test_decoder_is_bit_exact_with_audioop() -> None:
    assert audioop is not None
    assert ulaw_to_pcm16(ALL_ULAW) == audioop.ulaw2lin(ALL_ULAW, 2)


@needs_audioop
def test_encoder_is_bit_exact_with_audioop_for_every_int16_sample() -> None:
    assert audioop is not None
    assert pcm16_to_ulaw(ALL_PCM16) == audioop.lin2ulaw(ALL_PCM16, 2)


def test_frame_constants_describe_twilio_media_streams() -> None:
    assert (SAMPLE_RATE, FRAME_MS, FRAME_SAMPLES) == (8000, 20, 160)
    assert (ULAW_FRAME_BYTES, PCM_FRAME_BYTES) == (160, 320)


@given(st.binary(max_size=2000))
def test_encoding_decoded_audio_is_lossless(ulaw: bytes) -> None:
    decoded = ulaw_to_pcm16(ulaw)
    assert ulaw_to_pcm16(pcm16_to_ulaw(decoded)) == decoded


@given(st.integers(-32768, 32767), st.integers(-32768, 32767))
def test_encoder_is_monotonic(a: int, b: int) -> None:
    low, high = sorted((a, b))
    codes = pcm16_to_ulaw(np.array([low, high], dtype="<i2").tobytes())
    decoded = np.frombuffer(ulaw_to_pcm16(codes), dtype="<i2")
    assert decoded[0] <= decoded[1]


def test_encoder_is_monotonic_over_the_whole_int16_range() -> None:
    decoded = np.frombuffer(ulaw_to_pcm16(pcm16_to_ulaw(ALL_PCM16)), dtype="<i2")
    assert np.all(np.diff(decoded.astype(np.int32)) >= 0)


def test_odd_length_pcm_is_rejected() -> None:
    with pytest.raises(AudioFormatError, match="even number of bytes"):
        pcm16_to_ulaw(b"\x00\x01\x02")


# --- UlawDecoder -----------------------------------------------------------------------------------


@given(st.binary(min_size=ULAW_FRAME_BYTES, max_size=ULAW_FRAME_BYTES))
def test_frame_decoder_matches_the_buffer_decoder(frame: bytes) -> None:
    assert UlawDecoder().decode(frame) == ulaw_to_pcm16(frame)


def test_frame_decoder_uses_the_c_codec_where_there_is_one_and_it_agrees_with_the_table_on_every_code() -> None:
    assert (codec._ULAW2LIN is not None) == (audioop is not None and sys.byteorder == "little")
    decoder = UlawDecoder()
    for frame in (bytes(range(160)), bytes(range(96, 256))):
        assert decoder.decode(frame) == ULAW_TO_PCM16.take(np.frombuffer(frame, dtype=np.uint8)).tobytes()


def test_frame_decoder_results_survive_the_next_decode() -> None:
    decoder = UlawDecoder()
    first = decoder.decode(bytes(range(160)))
    decoder.decode(b"\x00" * 160)
    assert first == ulaw_to_pcm16(bytes(range(160)))
    assert len(first) == PCM_FRAME_BYTES


@pytest.mark.parametrize("size", [0, 159, 161, 320])
def test_frame_decoder_rejects_frames_of_the_wrong_length(size: int) -> None:
    with pytest.raises(ValueError, match=f"160 bytes, got {size}"):
        UlawDecoder().decode(b"\xff" * size)


# --- resampling ------------------------------------------------------------------------------------


def _tone(samples: int, rate: int, amplitude: float, hz: float = 440.0) -> np.ndarray:
    t = np.arange(samples) / rate
    return np.rint(amplitude * np.sin(2 * np.pi * hz * t)).astype("<i2")


@given(st.integers(800, 8000), st.floats(500, 20000))
def test_resampling_up_and_back_keeps_length_and_signal(samples: int, amplitude: float) -> None:
    tone = _tone(samples, 8000, amplitude)
    up = resample_pcm16(tone.tobytes(), 8000, 16000)
    back = np.frombuffer(resample_pcm16(up, 16000, 8000), dtype="<i2")
    assert len(up) == 2 * tone.nbytes
    assert len(back) == samples
    assert np.corrcoef(tone.astype(np.float64), back.astype(np.float64))[0, 1] > 0.99


def test_resampling_to_8k_keeps_a_440_hz_tone() -> None:
    original = _tone(16000, 16000, 10000)
    resampled = np.frombuffer(resample_pcm16(original.tobytes(), 16000, 8000), dtype="<i2")
    expected = _tone(8000, 8000, 10000)
    assert len(resampled) == 8000
    assert np.corrcoef(expected.astype(np.float64), resampled.astype(np.float64))[0, 1] > 0.99


def test_resampling_at_the_same_rate_returns_the_input() -> None:
    pcm = _tone(160, 8000, 1000).tobytes()
    assert resample_pcm16(pcm, 8000, 8000) == pcm


@pytest.mark.parametrize(("src", "dst"), [(0, 8000), (8000, -1)])
def test_resampling_rejects_non_positive_rates(src: int, dst: int) -> None:
    with pytest.raises(ValueError, match="sample rates must be positive"):
        resample_pcm16(b"\x00\x00", src, dst)


# --- framing ---------------------------------------------------------------------------------------


@given(st.binary(max_size=1000), st.integers(1, 400), st.integers(0, 255))
def test_split_frames_pads_only_the_last_frame(data: bytes, frame_bytes: int, pad: int) -> None:
    frames = split_frames(data, frame_bytes, pad)
    assert len(frames) == -(-len(data) // frame_bytes)
    assert all(len(frame) == frame_bytes for frame in frames)
    joined = b"".join(frames)
    assert joined[: len(data)] == data
    assert joined[len(data) :] == bytes([pad]) * (len(joined) - len(data))


def test_split_frames_pads_mulaw_with_silence_by_default() -> None:
    frames = split_frames(b"\x01" * 170)
    assert frames == [b"\x01" * 160, b"\x01" * 10 + b"\xff" * 150]


@pytest.mark.parametrize(("frame_bytes", "pad"), [(0, 0xFF), (160, 256), (160, -1)])
def test_split_frames_rejects_bad_arguments(frame_bytes: int, pad: int) -> None:
    with pytest.raises(ValueError):
        split_frames(b"abc", frame_bytes, pad)

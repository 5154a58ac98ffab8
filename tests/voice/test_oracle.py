"""Oracle ASR: the reference script, timed by the VAD, with seeded word errors."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from voice.codec import PCM_FRAME_BYTES
from voice.oracle import OracleRecognizerFactory, OracleUtterance
from voice.stt import Transcript

SILENCE = bytes(PCM_FRAME_BYTES)  # 20 ms of 8 kHz PCM16; oracle ASR ignores what is in it
SCRIPT = [
    OracleUtterance("I need to talk to a person", 0.9),
    OracleUtterance("my bill is wrong"),
    OracleUtterance("yes"),
]


def feed(recognizer: object, frames: int) -> list[Transcript]:
    accept = recognizer.accept  # type: ignore[attr-defined]
    return [t for t in (accept(SILENCE) for _ in range(frames)) if t is not None]


# --- oracle ASR -------------------------------------------------------------------------------------


def test_oracle_says_the_script_in_order_timed_by_the_vad() -> None:
    factory = OracleRecognizerFactory()
    factory.register("CA1", SCRIPT)
    rec = factory.new_recognizer("CA1")

    finals = []
    for start, end in [(1000, 2400), (5000, 6000), (9000, 9300)]:
        rec.start_utterance(start)
        feed(rec, (end - start) // 20)
        finals.append(rec.finish_utterance(start, end))

    assert [t.text if t else None for t in finals] == [u.text for u in SCRIPT]
    first = finals[0]
    assert first is not None
    assert (first.start_ms, first.end_ms, first.final, first.engine) == (1000, 2400, True, "oracle")
    assert first.confidence == pytest.approx(0.9)
    assert all(w.confidence == pytest.approx(0.9) for w in first.words)


def test_oracle_spreads_words_evenly_across_the_span() -> None:
    factory = OracleRecognizerFactory()
    factory.register("CA1", [OracleUtterance("one two three four")])
    rec = factory.new_recognizer("CA1")

    result = rec.finish_utterance(1000, 1800)

    assert result is not None
    assert [(w.text, w.start_ms, w.end_ms) for w in result.words] == [
        ("one", 1000, 1200),
        ("two", 1200, 1400),
        ("three", 1400, 1600),
        ("four", 1600, 1800),
    ]


def test_oracle_past_the_script_returns_none_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    factory = OracleRecognizerFactory()
    factory.register("CA1", [OracleUtterance("hello")])
    rec = factory.new_recognizer("CA1")
    assert rec.finish_utterance(0, 500) is not None

    with caplog.at_level(logging.INFO, logger="voice.oracle"):
        assert rec.finish_utterance(1000, 1500) is None

    assert "beyond the script" in caplog.text and "CA1" in caplog.text


def test_oracle_empty_utterance_is_vad_noise_that_recognises_nothing() -> None:
    factory = OracleRecognizerFactory()
    factory.register("CA1", [OracleUtterance(""), OracleUtterance("agent")])
    rec = factory.new_recognizer("CA1")
    assert rec.finish_utterance(0, 300) is None
    second = rec.finish_utterance(1000, 1400)
    assert second is not None and second.text == "agent"


def test_oracle_unregistered_call_hears_nothing() -> None:
    rec = OracleRecognizerFactory().new_recognizer("CA-unknown")
    assert feed(rec, 40) == []
    assert rec.finish_utterance(0, 800) is None


def test_oracle_partials_grow_every_ten_frames() -> None:
    factory = OracleRecognizerFactory()
    factory.register("CA1", [OracleUtterance("my bill is wrong"), OracleUtterance("yes")])
    rec = factory.new_recognizer("CA1")
    rec.start_utterance(2000)

    partials = feed(rec, 60)

    assert [p.text for p in partials] == ["my", "my bill", "my bill is", "my bill is wrong"]
    assert all(not p.final and p.engine == "oracle" and p.start_ms == 2000 for p in partials)
    assert [p.end_ms for p in partials] == [2200, 2400, 2600, 2800]
    final = rec.finish_utterance(2000, 3400)
    assert final is not None and final.text == "my bill is wrong"

    rec.start_utterance(5000)  # the next turn starts its partials afresh
    assert [p.text for p in feed(rec, 10)] == ["yes"]


def noisy_run(wer: float, seed: int, call_sid: str = "CA1") -> list[str]:
    words = [f"w{i}" for i in range(40)]
    factory = OracleRecognizerFactory(wer=wer, seed=seed)
    factory.register(call_sid, [OracleUtterance(" ".join(words[:20])), OracleUtterance(" ".join(words[20:]))])
    rec = factory.new_recognizer(call_sid)
    results = [rec.finish_utterance(0, 2000), rec.finish_utterance(3000, 5000)]
    return [r.text if r else "" for r in results]


def test_oracle_wer_zero_is_the_identity() -> None:
    assert noisy_run(0.0, seed=3) == [
        " ".join(f"w{i}" for i in range(20)),
        " ".join(f"w{i}" for i in range(20, 40)),
    ]


def test_oracle_wer_noise_changes_words_deterministically() -> None:
    clean = " ".join(noisy_run(0.0, seed=3)).split()
    noisy = " ".join(noisy_run(0.5, seed=3)).split()

    assert noisy_run(0.5, seed=3) == noisy_run(0.5, seed=3)
    assert noisy != clean
    kept = [w for w in noisy if w.startswith("w")]
    assert 8 <= len(kept) <= 32  # about half of the 40 words survive
    assert len(noisy) < len(clean)  # some were dropped
    assert any(not w.startswith("w") for w in noisy)  # some were substituted
    assert noisy_run(0.5, seed=4) != noisy_run(0.5, seed=3)
    assert noisy_run(0.5, seed=3, call_sid="CA2") != noisy_run(0.5, seed=3)


def test_oracle_noise_lowers_confidence_of_substituted_words() -> None:
    factory = OracleRecognizerFactory(wer=1.0, seed=1)
    factory.register("CA1", [OracleUtterance("alpha bravo charlie delta echo foxtrot golf hotel")])
    result = factory.new_recognizer("CA1").finish_utterance(0, 1000)
    assert result is not None
    assert all(w.confidence <= 0.4 for w in result.words)
    assert result.confidence <= 0.4


def test_oracle_noise_is_the_same_in_another_process() -> None:
    """crc32, not the salted hash(): the same seed gives the same errors under any PYTHONHASHSEED."""
    code = "from tests.voice.test_oracle import noisy_run; print(noisy_run(0.5, seed=3))"
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parents[2],
        ).stdout
        for hash_seed in ("1", "2")
    }
    assert outputs == {f"{noisy_run(0.5, seed=3)}\n"}


def test_oracle_rejects_an_impossible_wer() -> None:
    with pytest.raises(ValueError, match="wer"):
        OracleRecognizerFactory(wer=1.5)

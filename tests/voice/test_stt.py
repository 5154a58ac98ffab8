"""Recognisers: oracle ASR, the vosk adapter over a scripted decoder, and real vosk when a model exists."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from voice.codec import PCM_FRAME_BYTES, ulaw_to_pcm16
from voice.errors import ModelNotFound
from voice.models import DEFAULT_CACHE_DIR, DEFAULT_MODEL_NAME, MODEL_PATH_ENV, locate_model
from voice.stt import (
    OracleRecognizerFactory,
    OracleUtterance,
    Transcript,
    VoskRecognizer,
    VoskRecognizerFactory,
    build_recognizer_factory,
)

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

    with caplog.at_level(logging.INFO, logger="voice.stt"):
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
    code = "from tests.voice.test_stt import noisy_run; print(noisy_run(0.5, seed=3))"
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


# --- building a factory -----------------------------------------------------------------------------


def test_build_oracle_factory(tmp_path: Path) -> None:
    factory = build_recognizer_factory("oracle", None, tmp_path, DEFAULT_MODEL_NAME)
    assert isinstance(factory, OracleRecognizerFactory)
    assert factory.name == "oracle"


def test_build_vosk_factory_without_a_model_says_how_to_get_one(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound) as caught:
        build_recognizer_factory("vosk", None, tmp_path / "models", DEFAULT_MODEL_NAME)
    message = str(caught.value)
    assert "`handoff models fetch`" in message
    assert message.endswith(".") and ". " not in message and "\n" not in message  # one sentence


def test_build_unknown_kind_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'whisper'"):
        build_recognizer_factory("whisper", None, tmp_path, DEFAULT_MODEL_NAME)


def test_vosk_refusing_a_model_folder_is_model_not_found(tmp_path: Path) -> None:
    """Real vosk on a folder with the right layout but garbage inside."""
    for name in ("am/final.mdl", "conf/model.conf", "conf/mfcc.conf", "graph/HCLG.fst"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("not kaldi\n")
    with pytest.raises(ModelNotFound, match="vosk could not load the model"):
        VoskRecognizerFactory(tmp_path)


# --- the vosk adapter, over a decoder that replays vosk's JSON ---------------------------------------


class ScriptedKaldi:
    """Stands in for vosk.KaldiRecognizer: counts audio and replays the JSON vosk would return."""

    def __init__(self, partials: list[dict[str, object]], endpoint_after: int | None = None) -> None:
        self.partials = partials  # PartialResult for each AcceptWaveform call, in turn
        self.endpoint_after = endpoint_after  # AcceptWaveform call after which vosk "endpoints"
        self.results: list[dict[str, object]] = []  # Result() answers, one per endpoint
        self.final: dict[str, object] = {"text": ""}
        self.samples = 0
        self.calls = 0
        self.resets = 0

    def AcceptWaveform(self, data: bytes) -> bool:
        self.samples += len(data) // 2
        self.calls += 1
        return self.calls == self.endpoint_after

    def Result(self) -> str:
        return json.dumps(self.results.pop(0))

    def PartialResult(self) -> str:
        index = min(self.calls, len(self.partials)) - 1
        return json.dumps(self.partials[index] if index >= 0 else {"partial": ""})

    def FinalResult(self) -> str:
        return json.dumps(self.final)

    def Reset(self) -> None:
        self.resets += 1


def word(text: str, start: float, end: float, conf: float = 1.0) -> dict[str, object]:
    return {"word": text, "start": start, "end": end, "conf": conf}


def test_vosk_adapter_maps_vosk_seconds_to_call_time() -> None:
    kaldi = ScriptedKaldi(partials=[{"partial": ""}])
    rec = VoskRecognizer("CA1", kaldi)
    # First utterance: 1 s of audio at call time 10 s; vosk's clock starts at 0.
    rec.start_utterance(10_000)
    feed(rec, 50)
    kaldi.final = {
        "text": "hello there",
        "result": [word("hello", 0.30, 0.60, 0.8), word("there", 0.60, 0.90, 0.6)],
    }
    first = rec.finish_utterance(10_000, 11_600)
    vosk_clock_after_first = kaldi.samples / 16000

    # Second utterance at call time 30 s; vosk's clock has moved on only by the audio it was fed.
    rec.start_utterance(30_000)
    feed(rec, 50)
    kaldi.final = {
        "text": "agent",
        "result": [word("agent", vosk_clock_after_first + 0.25, vosk_clock_after_first + 0.70)],
    }
    second = rec.finish_utterance(30_000, 31_500)

    assert first is not None and second is not None
    assert (first.text, first.start_ms, first.end_ms, first.final, first.engine) == (
        "hello there", 10_000, 11_600, True, "vosk"
    )  # fmt: skip
    assert [(w.start_ms, w.end_ms) for w in first.words] == [(10_300, 10_600), (10_600, 10_900)]
    assert first.confidence == pytest.approx(0.7)
    assert [(w.text, w.start_ms, w.end_ms) for w in second.words] == [("agent", 30_250, 30_700)]
    assert kaldi.samples == 2 * 16000  # 2 s of 8 kHz audio became 2 s at 16 kHz, resampler flushed


def test_vosk_adapter_partials_only_when_the_text_changes() -> None:
    hello: dict[str, object] = {"partial": "hello", "partial_result": [word("hello", 0.1, 0.4, 0.9)]}
    kaldi = ScriptedKaldi(partials=[{"partial": ""}, hello, hello, {"partial": "hello agent", "partial_result": []}])
    rec = VoskRecognizer("CA1", kaldi)
    rec.start_utterance(1000)

    partials = feed(rec, 40)  # soxr's stream hands vosk audio in ~100 ms blocks: about 7 calls

    assert [p.text for p in partials] == ["hello", "hello agent"]
    assert all(not p.final and p.engine == "vosk" and p.start_ms == 1000 for p in partials)
    assert [(w.text, w.start_ms) for w in partials[0].words] == [("hello", 1100)]


def test_vosk_adapter_joins_segments_vosk_closed_by_itself() -> None:
    kaldi = ScriptedKaldi(partials=[{"partial": "i need"}], endpoint_after=3)
    kaldi.results = [{"text": "i need", "result": [word("i", 0.1, 0.2), word("need", 0.2, 0.5)]}]
    rec = VoskRecognizer("CA1", kaldi)
    rec.start_utterance(0)
    feed(rec, 30)
    kaldi.final = {"text": "an agent", "result": [word("an", 1.0, 1.1, 0.5), word("agent", 1.1, 1.6, 0.5)]}

    final = rec.finish_utterance(0, 2000)

    assert final is not None
    assert final.text == "i need an agent"
    assert [w.text for w in final.words] == ["i", "need", "an", "agent"]
    assert final.confidence == pytest.approx(0.75)


def test_vosk_adapter_nothing_heard_is_none() -> None:
    rec = VoskRecognizer("CA1", ScriptedKaldi(partials=[{"partial": ""}]))
    rec.start_utterance(0)
    assert feed(rec, 25) == []
    assert rec.finish_utterance(0, 500) is None


def test_vosk_adapter_reopened_utterance_drops_the_unfinished_one() -> None:
    kaldi = ScriptedKaldi(partials=[{"partial": ""}])
    rec = VoskRecognizer("CA1", kaldi)
    rec.start_utterance(0)
    feed(rec, 10)
    rec.start_utterance(5000)
    assert kaldi.resets == 1


def test_vosk_adapter_without_start_utterance_anchors_at_the_vad_start() -> None:
    kaldi = ScriptedKaldi(partials=[{"partial": ""}])
    rec = VoskRecognizer("CA1", kaldi)
    feed(rec, 25)
    kaldi.final = {"text": "yes", "result": [word("yes", 0.2, 0.4)]}
    final = rec.finish_utterance(7000, 7500)
    assert final is not None and [(w.start_ms, w.end_ms) for w in final.words] == [(7200, 7400)]


# --- real vosk --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vosk_factory() -> Iterator[VoskRecognizerFactory]:
    explicit = os.environ.get(MODEL_PATH_ENV)
    try:
        path = locate_model(Path(explicit) if explicit else None, DEFAULT_CACHE_DIR, DEFAULT_MODEL_NAME)
    except ModelNotFound as exc:
        pytest.skip(str(exc))
    yield VoskRecognizerFactory(path)


@pytest.mark.vosk
async def test_vosk_recognises_synthesised_speech(vosk_factory: VoskRecognizerFactory, tmp_path: Path) -> None:
    from voice.tts import SpeechSynthesizer

    synthesizer = SpeechSynthesizer(tmp_path, rate=150)
    try:
        ulaw = await synthesizer.synthesize("I would like to speak to an agent please.")
    finally:
        synthesizer.close()
    pcm = ulaw_to_pcm16(ulaw) + bytes(PCM_FRAME_BYTES * 25)  # and 0.5 s of silence after it
    rec = vosk_factory.new_recognizer("CA-vosk")
    rec.start_utterance(4000)
    partials = [t for t in (rec.accept(pcm[i : i + PCM_FRAME_BYTES]) for i in range(0, len(pcm), PCM_FRAME_BYTES)) if t]
    end_ms = 4000 + len(pcm) // 16
    final = rec.finish_utterance(4000, end_ms)
    rec.close()

    assert final is not None, "vosk heard nothing in clearly synthesised speech"
    assert final.final and final.engine == "vosk"
    assert "agent" in final.text.split()
    assert 0.0 < final.confidence <= 1.0
    assert all(4000 <= w.start_ms <= w.end_ms <= end_ms + 100 for w in final.words)
    assert partials and not partials[-1].final
    assert np.diff([w.start_ms for w in final.words]).min() >= 0

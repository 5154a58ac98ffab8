"""The vosk adapter over a scripted decoder, and real vosk when a model exists."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from voice.codec import PCM_FRAME_BYTES, ulaw_to_pcm16
from voice.errors import ModelNotFound
from voice.models import DEFAULT_CACHE_DIR, DEFAULT_MODEL_NAME, MODEL_PATH_ENV, locate_model
from voice.stt import KaldiHandle, Transcript, VoskRecognizer, VoskRecognizerFactory

SILENCE = bytes(PCM_FRAME_BYTES)  # 20 ms of 8 kHz PCM16; the scripted decoder ignores what is in it


def feed(recognizer: object, frames: int) -> list[Transcript]:
    accept = recognizer.accept  # type: ignore[attr-defined]
    return [t for t in (accept(SILENCE) for _ in range(frames)) if t is not None]


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
        self.early_finals: list[dict[str, object]] = []  # FinalResult answers before `final`, in turn
        self.fed: list[bytes] = []  # what AcceptWaveform was given, in turn
        self.samples = 0
        self.calls = 0
        self.resets = 0
        self.finals = 0
        self.running = False  # fed audio since the last Result, FinalResult or Reset

    def AcceptWaveform(self, data: bytes) -> bool:
        self.running = True
        self.samples += len(data) // 2
        self.calls += 1
        self.fed.append(data)
        return self.calls == self.endpoint_after

    def Result(self) -> str:
        self.running = False
        return json.dumps(self.results.pop(0))

    def PartialResult(self) -> str:
        index = min(self.calls, len(self.partials)) - 1
        return json.dumps(self.partials[index] if index >= 0 else {"partial": ""})

    def FinalResult(self) -> str:
        self.running = False
        self.finals += 1
        return json.dumps(self.early_finals.pop(0) if self.early_finals else self.final)

    def Reset(self) -> None:
        self.running = False
        self.resets += 1


class ScriptedEngines:
    """Lends the one scripted decoder, and records the grammar of each loan and each return."""

    def __init__(self, kaldi: ScriptedKaldi) -> None:
        self.handle = KaldiHandle(kaldi)
        self.leases: list[str] = []
        self.returned_running = 0  # decoders given back mid-utterance (the engines would have to finish them)
        self.returns = 0

    def lease(self, grammar: str) -> KaldiHandle:
        assert self.returns == len(self.leases), "one call borrowed a second decoder before giving back the first"
        self.leases.append(grammar)
        self.handle.grammar = grammar
        return self.handle

    def release(self, handle: KaldiHandle) -> None:
        self.returns += 1
        self.returned_running += handle.running


def word(text: str, start: float, end: float, conf: float = 1.0) -> dict[str, object]:
    return {"word": text, "start": start, "end": end, "conf": conf}


def test_vosk_adapter_maps_vosk_seconds_to_call_time() -> None:
    kaldi = ScriptedKaldi(partials=[{"partial": ""}])
    rec = VoskRecognizer("CA1", ScriptedEngines(kaldi))
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
    rec = VoskRecognizer("CA1", ScriptedEngines(kaldi))
    rec.start_utterance(1000)

    partials = feed(rec, 40)  # soxr's stream hands vosk audio in ~100 ms blocks: about 7 calls

    assert [p.text for p in partials] == ["hello", "hello agent"]
    assert all(not p.final and p.engine == "vosk" and p.start_ms == 1000 for p in partials)
    assert [(w.text, w.start_ms) for w in partials[0].words] == [("hello", 1100)]


def test_vosk_adapter_joins_segments_vosk_closed_by_itself() -> None:
    kaldi = ScriptedKaldi(partials=[{"partial": "i need"}], endpoint_after=3)
    kaldi.results = [{"text": "i need", "result": [word("i", 0.1, 0.2), word("need", 0.2, 0.5)]}]
    rec = VoskRecognizer("CA1", ScriptedEngines(kaldi))
    rec.start_utterance(0)
    feed(rec, 30)
    kaldi.final = {"text": "an agent", "result": [word("an", 1.0, 1.1, 0.5), word("agent", 1.1, 1.6, 0.5)]}

    final = rec.finish_utterance(0, 2000)

    assert final is not None
    assert final.text == "i need an agent"
    assert [w.text for w in final.words] == ["i", "need", "an", "agent"]
    assert final.confidence == pytest.approx(0.75)


def test_settling_at_a_pause_decodes_ahead_and_the_final_joins_what_followed() -> None:
    kaldi = ScriptedKaldi(partials=[{"partial": ""}])
    kaldi.early_finals = [{"text": "my order", "result": [word("my", 0.1, 0.3), word("order", 0.3, 0.7)]}]
    rec = VoskRecognizer("CA1", ScriptedEngines(kaldi))
    rec.start_utterance(2000)
    feed(rec, 30)
    rec.settle()  # the caller paused
    # decoded to the end with FinalResult (Result would leave the last half second in the decoder)
    assert not kaldi.running and kaldi.finals == 1
    rec.settle()  # nothing new since: nothing to do
    feed(rec, 20)  # ...and went on talking
    kaldi.final = {"text": "is late", "result": [word("is", 1.2, 1.4), word("late", 1.4, 1.8)]}
    final = rec.finish_utterance(2000, 4400)
    assert final is not None and final.text == "my order is late"
    assert [w.start_ms for w in final.words] == [2100, 2300, 3200, 3400]


def test_a_segment_vosk_closed_at_the_very_end_has_its_tail_decoded_before_the_final() -> None:
    kaldi = ScriptedKaldi(partials=[{"partial": ""}])
    kaldi.results = [{"text": "my order", "result": [word("my", 0.1, 0.3), word("order", 0.3, 0.7)]}]
    rec = VoskRecognizer("CA1", ScriptedEngines(kaldi))
    rec.start_utterance(0)
    feed(rec, 40)  # soxr hands vosk its audio in blocks
    kaldi.endpoint_after = kaldi.calls + 1  # the endpointer fires on the resampler's last block
    kaldi.final = {"text": "is late", "result": [word("is", 0.8, 1.0), word("late", 1.0, 1.3)]}
    final = rec.finish_utterance(0, 1600)
    # vosk's FinalResult decodes nothing unless it is running: a moment of silence first, then the tail is heard
    assert kaldi.calls == kaldi.endpoint_after + 1 and kaldi.fed[-1] == bytes(len(kaldi.fed[-1]))
    assert final is not None and final.text == "my order is late"


def test_vosk_adapter_nothing_heard_is_none() -> None:
    rec = VoskRecognizer("CA1", ScriptedEngines(ScriptedKaldi(partials=[{"partial": ""}])))
    rec.start_utterance(0)
    assert feed(rec, 25) == []
    assert rec.finish_utterance(0, 500) is None


def test_vosk_adapter_reopened_utterance_drops_the_unfinished_one() -> None:
    kaldi = ScriptedKaldi(partials=[{"partial": ""}])
    rec = VoskRecognizer("CA1", ScriptedEngines(kaldi))
    rec.start_utterance(0)
    feed(rec, 10)
    rec.start_utterance(5000)
    # finished, not Reset: vosk's Reset keeps the audio already fed, and it would leak into the next utterance
    assert kaldi.finals == 1 and kaldi.resets == 0


def test_a_phrase_list_asked_for_mid_utterance_applies_from_the_next_utterance() -> None:
    engines = ScriptedEngines(ScriptedKaldi(partials=[{"partial": ""}]))
    rec = VoskRecognizer("CA1", engines)
    rec.start_utterance(0)
    feed(rec, 10)
    rec.set_phrases(("one", "two"))  # the dialog asked for digits while the caller was still talking
    rec.finish_utterance(0, 200)
    rec.start_utterance(1000)
    assert engines.leases == ["[]", '["one", "two"]']  # the open utterance kept its decoder; no grammar changed


def test_an_empty_phrase_list_lifts_the_grammar_for_the_next_utterance() -> None:
    engines = ScriptedEngines(ScriptedKaldi(partials=[{"partial": ""}]))
    rec = VoskRecognizer("CA1", engines)
    rec.set_phrases(("네", "아니요"))
    rec.start_utterance(0)
    rec.finish_utterance(0, 100)
    rec.set_phrases(())
    rec.start_utterance(500)
    assert engines.leases == ['["네", "아니요"]', "[]"]  # not escaped: vosk would not find escaped words


def test_closing_mid_utterance_finishes_the_decoder_before_giving_it_back() -> None:
    kaldi = ScriptedKaldi(partials=[{"partial": ""}])
    engines = ScriptedEngines(kaldi)
    rec = VoskRecognizer("CA1", engines)
    rec.start_utterance(0)
    feed(rec, 20)
    assert kaldi.running
    rec.close()
    assert kaldi.finals == 1 and kaldi.resets == 0
    assert (engines.returns, engines.returned_running) == (1, 0)


def test_a_call_holds_no_decoder_between_utterances() -> None:
    engines = ScriptedEngines(ScriptedKaldi(partials=[{"partial": ""}]))
    rec = VoskRecognizer("CA1", engines)
    rec.start_utterance(0)
    feed(rec, 5)
    rec.finish_utterance(0, 100)
    assert engines.returns == len(engines.leases) == 1  # given back the moment the utterance was finished
    assert rec.finish_utterance(200, 300) is None  # no audio since: nothing heard, nothing borrowed
    assert len(engines.leases) == 1


def test_vosk_adapter_without_start_utterance_anchors_at_the_vad_start() -> None:
    kaldi = ScriptedKaldi(partials=[{"partial": ""}])
    rec = VoskRecognizer("CA1", ScriptedEngines(kaldi))
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

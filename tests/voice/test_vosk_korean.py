"""Real vosk, with the Korean test model and espeak-ng Korean callers (audio_fixtures/ko/): final results and
their word times, partials, sentence and digit grammars, a grammar lifted, a long utterance vosk splits itself,
decoders lent per utterance and kept warm, and the engine's mid-utterance abort kept away from the process.

Every test here depends on Korean: the model and the recordings are Korean.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from voice.codec import PCM_FRAME_BYTES, ulaw_to_pcm16
from voice.stt import Transcript, VoskRecognizer, VoskRecognizerFactory
from voice.wavfile import read_ulaw_wav

pytestmark = [pytest.mark.vosk, pytest.mark.language("ko")]

FIXTURES = Path(__file__).resolve().parents[2] / "audio_fixtures" / "ko"
AGENT = "상담원 연결해 주세요"
DIGITS = ("영", "일", "이", "삼", "사", "오", "육", "칠", "팔", "구")
SILENCE = bytes(PCM_FRAME_BYTES)


@pytest.fixture(scope="module")
def factory(korean_model_path: Path) -> VoskRecognizerFactory:
    return VoskRecognizerFactory(korean_model_path)


def caller(name: str, pause_ms: int = 400) -> bytes:
    """A recording as 8 kHz PCM16, with line silence after it (the VAD's end-of-speech window)."""
    return ulaw_to_pcm16(read_ulaw_wav(FIXTURES / f"{name}.wav")) + SILENCE * (pause_ms // 20)


def recognise(
    recognizer: VoskRecognizer, pcm: bytes, start_ms: int = 1000
) -> tuple[Transcript | None, list[Transcript]]:
    """Feed one utterance in 20 ms frames, as the call does; returns the final and the partials."""
    recognizer.start_utterance(start_ms)
    partials = [
        t for t in (recognizer.accept(pcm[i : i + PCM_FRAME_BYTES]) for i in range(0, len(pcm), PCM_FRAME_BYTES)) if t
    ]
    end_ms = start_ms + len(pcm) // 16
    return recognizer.finish_utterance(start_ms, end_ms), partials


def test_a_sentence_grammar_recognises_the_callers_sentence_exactly_every_time(factory: VoskRecognizerFactory) -> None:
    texts = []
    for run in range(3):
        recognizer = factory.new_recognizer(f"CA-grammar-{run}")
        recognizer.set_phrases((AGENT,))
        final, _ = recognise(recognizer, caller("agent"))
        recognizer.close()
        assert final is not None
        texts.append(final.text)
    assert texts == [AGENT] * 3


@pytest.mark.parametrize("batch_frames", [1, 5, 10, 200], ids=["20ms", "100ms", "200ms", "whole"])
def test_each_utterance_is_heard_whole_and_alone_on_a_reused_decoder_after_a_pause(
    factory: VoskRecognizerFactory, batch_frames: int
) -> None:
    """The call settles at a pause and finishes when the window closes; however the audio was batched (a busy
    worker gets it in larger pieces), no sentence loses its end to the next one."""
    said = ["login", "yes"] * 3  # two sentences without a word in common: the grammar keeps them apart
    words = {name: (FIXTURES / f"{name}.txt").read_text(encoding="utf-8").strip() for name in said}
    recognizer = factory.new_recognizer(f"CA-reused-{batch_frames}")
    recognizer.set_phrases(tuple(sorted(set(words.values()))))
    heard = []
    for n, name in enumerate(said):
        pcm = ulaw_to_pcm16(read_ulaw_wav(FIXTURES / f"{name}.wav")) + SILENCE * 10  # the pause's first 200 ms
        start_ms = 1000 + n * 5000
        recognizer.start_utterance(start_ms)
        step = PCM_FRAME_BYTES * batch_frames
        for i in range(0, len(pcm), step):
            recognizer.accept(pcm[i : i + step])
        recognizer.settle()  # 400 ms into the pause
        final = recognizer.finish_utterance(start_ms, start_ms + len(pcm) // 16)
        heard.append(final.text if final else None)
    recognizer.close()
    assert heard == [words[name] for name in said]


def test_a_final_has_a_confidence_in_range_and_word_times_in_order_within_the_utterance(
    factory: VoskRecognizerFactory,
) -> None:
    recognizer = factory.new_recognizer("CA-times")
    recognizer.set_phrases((AGENT, "네", "환불 해 주세요"))
    pcm = caller("agent")
    final, partials = recognise(recognizer, pcm, start_ms=4000)
    recognizer.close()
    assert final is not None and final.final and final.engine == "vosk"
    assert 0.0 < final.confidence <= 1.0
    end_ms = 4000 + len(pcm) // 16
    starts = [w.start_ms for w in final.words]
    assert starts == sorted(starts)
    assert all(4000 <= w.start_ms <= w.end_ms <= end_ms + 100 for w in final.words)
    assert partials and not any(p.final for p in partials)  # partials while the caller speaks


def test_a_digit_grammar_returns_only_digits(factory: VoskRecognizerFactory) -> None:
    recognizer = factory.new_recognizer("CA-digits")
    recognizer.set_phrases(DIGITS)
    final, _ = recognise(recognizer, caller("digits"))
    recognizer.close()
    assert final is not None and final.text
    assert set(final.text.split()) <= set(DIGITS)


def test_a_phrase_list_is_lifted_for_the_next_utterance(factory: VoskRecognizerFactory) -> None:
    recognizer = factory.new_recognizer("CA-lift")
    recognizer.set_phrases(DIGITS)
    narrowed, _ = recognise(recognizer, caller("refund"))
    recognizer.set_phrases(())
    free, _ = recognise(recognizer, caller("refund"), start_ms=9000)
    recognizer.close()
    assert narrowed is None or set(narrowed.text.split()) <= set(DIGITS)
    assert free is not None and not set(free.text.split()) <= set(DIGITS)  # words beyond the digit grammar


def test_a_non_ascii_grammar_reaches_vosk_as_words_it_knows(factory: VoskRecognizerFactory) -> None:
    grammar = json.loads(factory.grammar((AGENT, "네", "없는말입니다아아")))
    assert AGENT in grammar and "네" in grammar
    assert "없는말입니다아아" not in grammar  # a phrase with a word the model does not know is left out
    assert factory.grammar(("없는말입니다아아",)) == "[]"  # nothing known: recognise freely


def test_a_long_utterance_vosk_splits_itself_is_joined_back_with_times_in_order(factory: VoskRecognizerFactory) -> None:
    recognizer = factory.new_recognizer("CA-long")
    recognizer.set_phrases(("로그인 이 안 돼요", AGENT))
    # one utterance as the VAD saw it, with a second of silence inside, long enough for vosk's own endpointer
    pcm = caller("login", pause_ms=1200) + caller("agent")
    final, _ = recognise(recognizer, pcm, start_ms=2000)
    recognizer.close()
    assert final is not None
    assert "로그인" in final.text and "상담원" in final.text
    starts = [w.start_ms for w in final.words]
    assert starts == sorted(starts) and starts[0] >= 2000
    login_end = max(w.end_ms for w in final.words if w.text == "로그인")
    agent_start = min(w.start_ms for w in final.words if w.text == "상담원")
    assert agent_start - login_end > 1000  # the second sentence is placed after the pause, not on top of it


def test_free_form_decoders_are_lent_per_utterance_and_a_digit_question_never_touches_them(
    korean_model_path: Path,
) -> None:
    factory = VoskRecognizerFactory(korean_model_path)  # engines of its own, so the counts are this test's
    first, second = factory.new_recognizer("CA-warm-1"), factory.new_recognizer("CA-warm-2")
    recognise(first, caller("agent"))
    first.set_phrases(DIGITS)
    digits, _ = recognise(first, caller("digits"), start_ms=6000)
    first.set_phrases(())
    recognise(first, caller("login"), start_ms=9000)
    final, _ = recognise(second, caller("refund"), start_ms=500)  # another call, after the first one's turns
    first.close()
    second.close()
    # one free-form decoder served both calls' free speech (a warm one: no second cold start), and the digit
    # grammar got a decoder of its own, so the free-form one never had a grammar set on it or lifted
    assert factory.engines.made == 2
    assert factory.engines.idle_free_form == 1
    assert digits is not None and set(digits.text.split()) <= set(DIGITS)
    assert final is not None and not set(final.text.split()) <= set(DIGITS)
    assert all(w.start_ms >= 500 for w in final.words)  # the shared decoder's clock is mapped onto this call


ABORT = """
import json, sys, vosk
vosk.SetLogLevel(-1)
model = vosk.Model(sys.argv[1])
rec = vosk.KaldiRecognizer(model, 16000)
rec.AcceptWaveform(bytes(16000))            # mid-utterance: audio fed, no result taken
rec.SetGrammar(json.dumps(["네"], ensure_ascii=False))
print("survived")
"""

SAFE = """
import sys
from pathlib import Path
from voice.stt import VoskRecognizerFactory
rec = VoskRecognizerFactory(Path(sys.argv[1])).new_recognizer("CA")
rec.start_utterance(0)
for _ in range(50):
    rec.accept(bytes(640))
rec.set_phrases(("네",))                     # asked for mid-utterance, as a Listen can arrive
rec.finish_utterance(0, 1000)
print("survived")
"""


def test_vosk_aborts_the_process_on_a_mid_utterance_grammar_and_the_project_never_lets_it(
    korean_model_path: Path,
) -> None:
    raw = subprocess.run(
        [sys.executable, "-c", ABORT, str(korean_model_path)], capture_output=True, text=True, timeout=120
    )
    assert raw.returncode != 0 and "survived" not in raw.stdout  # SIGABRT: the whole process is gone
    assert "KaldiFatalError" in raw.stderr or raw.returncode < 0
    ours = subprocess.run(
        [sys.executable, "-c", SAFE, str(korean_model_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert ours.returncode == 0 and "survived" in ours.stdout, ours.stderr

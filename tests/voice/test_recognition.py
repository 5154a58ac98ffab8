"""LocalRecognition: a call's recogniser run in an executor thread, or on the event loop when `inline`."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from voice.oracle import OracleRecognizer, OracleRecognizerFactory, OracleUtterance
from voice.recognition import (
    Audio,
    FinishUtterance,
    Heard,
    ImmediateRecognition,
    LocalRecognition,
    RecognizerFailed,
    StartUtterance,
)
from voice.vad import SpeechEnded

CALL = "CA" + "1" * 32
SPEECH = bytes(16_000)  # one second of 8 kHz PCM16


class ThreadNoting(OracleRecognizerFactory):
    """Oracle ASR that notes the thread each recogniser is made and fed on."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: set[int] = set()

    def new_recognizer(self, call_sid: str) -> OracleRecognizer:
        self.threads.add(threading.get_ident())
        recognizer = super().new_recognizer(call_sid)
        accept = recognizer.accept

        def noted(pcm8k: bytes):  # type: ignore[no-untyped-def]
            self.threads.add(threading.get_ident())
            return accept(pcm8k)

        recognizer.accept = noted  # type: ignore[method-assign]
        return recognizer


def utterance() -> list[StartUtterance | Audio | FinishUtterance]:
    return [StartUtterance(0), Audio(bytearray(SPEECH)), FinishUtterance(SpeechEnded(0, 1600, 1000), 0.0)]


@pytest.mark.parametrize("inline", [True, False], ids=["inline", "executor"])
async def test_a_call_is_recognised_on_the_loop_when_inline_and_in_the_executor_otherwise(inline: bool) -> None:
    factory = ThreadNoting()
    factory.register(CALL, [OracleUtterance("where is my order", 0.9)])
    with ThreadPoolExecutor(max_workers=1) as executor:
        call = await LocalRecognition(factory, executor, inline=inline).open(CALL)
        results = await call.run(utterance())
        await call.close()
    heard = [r for r in results if isinstance(r, Heard)]
    assert [h.transcript.text for h in heard if h.transcript is not None] == ["where is my order"]
    on_the_loop = factory.threads == {threading.get_ident()}
    assert on_the_loop is inline


class Broken(OracleRecognizerFactory):
    """Oracle ASR whose recognisers raise on the first audio, as an engine that has gone."""

    def new_recognizer(self, call_sid: str) -> OracleRecognizer:
        recognizer = super().new_recognizer(call_sid)

        def accept(pcm8k: bytes) -> None:
            raise RuntimeError("engine gone")

        recognizer.accept = accept  # type: ignore[assignment, method-assign]
        return recognizer


async def test_an_inline_recogniser_that_raises_fails_the_call_s_recognition_not_the_loop() -> None:
    call = await LocalRecognition(Broken(), inline=True).open(CALL)
    with pytest.raises(RecognizerFailed, match="RuntimeError: engine gone"):
        await call.run(utterance())


@pytest.mark.parametrize("inline", [True, False], ids=["inline", "executor"])
async def test_only_an_inline_call_offers_to_run_in_place(inline: bool) -> None:
    factory = OracleRecognizerFactory()
    factory.register(CALL, [OracleUtterance("where is my order", 0.9)])
    with ThreadPoolExecutor(max_workers=1) as executor:
        call = await LocalRecognition(factory, executor, inline=inline).open(CALL)
        assert isinstance(call, ImmediateRecognition) is inline
        if isinstance(call, ImmediateRecognition):
            heard = [r for r in call.run_now(utterance()) if isinstance(r, Heard)]
            assert [h.transcript.text for h in heard if h.transcript is not None] == ["where is my order"]
        await call.close()


async def test_an_inline_recogniser_that_raises_in_place_raises_recognizer_failed() -> None:
    call = await LocalRecognition(Broken(), inline=True).open(CALL)
    assert isinstance(call, ImmediateRecognition)
    with pytest.raises(RecognizerFailed, match="RuntimeError: engine gone"):
        call.run_now(utterance())

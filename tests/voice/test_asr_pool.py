"""Recognition in worker processes, with the real Korean model: a worker that dies ends only the recognition of
the calls it served, those calls are told, the others go on, and a replacement worker is forked."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.voice.test_vosk_korean import AGENT, caller
from voice.asr_pool import PooledRecognition
from voice.errors import ModelNotFound
from voice.recognition import Audio, FinishUtterance, Heard, RecognitionOp, RecognizerFailed, SetPhrases, StartUtterance
from voice.vad import SpeechEnded

pytestmark = [pytest.mark.vosk, pytest.mark.language("ko")]


def utterance(pcm: bytes) -> list[RecognitionOp]:
    end_ms = len(pcm) // 16
    return [
        SetPhrases((AGENT, "네")),
        StartUtterance(0),
        Audio(bytearray(pcm)),
        FinishUtterance(SpeechEnded(0, end_ms, end_ms), 0.0),
    ]


def text_of(results: list[object]) -> str | None:
    finals = [r for r in results if isinstance(r, Heard)]
    return finals[-1].transcript.text if finals and finals[-1].transcript else None


@pytest.fixture
async def pool(korean_model_path: Path) -> PooledRecognition:
    pooled = PooledRecognition(korean_model_path, workers=2)
    await pooled.start()
    yield pooled  # type: ignore[misc]
    await pooled.aclose()


async def test_calls_are_spread_over_the_workers_and_recognised_there(pool: PooledRecognition) -> None:
    first, second = await pool.open("CA1"), await pool.open("CA2")
    assert {pool.worker_of("CA1"), pool.worker_of("CA2")} == {link.pid for link in pool.links}
    assert os.getpid() not in {pool.worker_of("CA1"), pool.worker_of("CA2")}  # never in the server's process
    assert text_of(await first.run(utterance(caller("agent")))) == AGENT
    assert text_of(await second.run(utterance(caller("agent")))) == AGENT
    await first.close()
    await second.close()
    assert pool.worker_of("CA1") is None


@pytest.mark.parametrize("how", [signal.SIGABRT, signal.SIGKILL], ids=["engine_abort", "killed"])
async def test_a_worker_that_dies_ends_only_its_own_calls_and_is_replaced(
    pool: PooledRecognition, how: signal.Signals
) -> None:
    doomed, other = await pool.open("CA-doomed"), await pool.open("CA-other")
    victim = pool.worker_of("CA-doomed")
    assert victim is not None and victim != pool.worker_of("CA-other")
    os.kill(victim, how)  # what a Kaldi fatal error does to the process it runs in
    with pytest.raises(RecognizerFailed):
        await doomed.run(utterance(caller("agent")))
    assert text_of(await other.run(utterance(caller("agent")))) == AGENT
    replacement = await pool.open("CA-later")
    assert pool.worker_of("CA-later") not in (None, victim)
    assert text_of(await replacement.run(utterance(caller("agent")))) == AGENT
    assert len([link for link in pool.links if link.alive]) == 2


async def test_a_model_vosk_cannot_load_stops_the_pool_with_model_not_found(tmp_path: Path) -> None:
    for name in ("am/final.mdl", "conf/model.conf", "conf/mfcc.conf", "graph/HCLG.fst"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("not kaldi\n")
    pooled = PooledRecognition(tmp_path, workers=1)
    with pytest.raises(ModelNotFound, match="vosk could not load the model"):
        await pooled.start()
    await pooled.aclose()


async def test_decoders_warmed_by_the_host_are_in_every_worker_before_the_first_call(korean_model_path: Path) -> None:
    pooled = PooledRecognition(korean_model_path, workers=2, prewarm=1)
    await pooled.start()
    try:
        before = await pooled.stats()
        call = await pooled.open("CA-first")
        heard = text_of(await call.run(utterance(caller("agent"))[1:]))  # free speech: no phrase list
        await call.close()
        after = {s.pid: s for s in await pooled.stats()}
    finally:
        await pooled.aclose()
    assert [(s.decoders_made, s.warm_idle) for s in before] == [(1, 1), (1, 1)]  # a copy of the host's each
    # the first call's speech went to the warm decoder its worker inherited: no decoder was made for it
    assert heard  # free-form espeak Korean is heard as words, if not the right ones (a grammar fixes that)
    assert [(s.decoders_made, s.warm_idle, s.calls) for s in after.values()] == [(1, 1, 0), (1, 1, 0)]


async def test_a_warm_up_recording_that_cannot_be_read_stops_the_pool_with_its_name(
    korean_model_path: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "warmup.wav"
    broken.write_bytes(b"not a wav")
    pooled = PooledRecognition(korean_model_path, workers=1, prewarm=1, warmup_audio=broken)
    with pytest.raises(ModelNotFound, match=r"warmup\.wav: not a RIFF/WAVE file"):
        await pooled.start()
    await pooled.aclose()
